"""The named recipes: which exist, what each makes, and the limits each keeps."""

from __future__ import annotations

import pytest

from photos import renditions
from photos.imaging import ImageTooLarge
from tests.support import images

PHOTO = images.jpeg(1600, 1000)
MAX_PIXELS = 50_000_000


def test_the_recipes_by_name() -> None:
    assert sorted(renditions.RECIPES) == sorted(
        ["fit-320", "fit-320-webp", "fit-320-avif", "square-64", "square-32", "mirror"]
    )
    assert renditions.DEFAULT is renditions.by_name("fit-320")


def test_an_unknown_name_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        renditions.by_name("fit-321")


@pytest.mark.parametrize(
    ("recipe", "size", "content_type"),
    [
        (renditions.DEFAULT, (320, 200), "image/jpeg"),
        (renditions.FIT_WEBP, (320, 200), "image/webp"),
        (renditions.FIT_AVIF, (320, 200), "image/avif"),
        (renditions.square(64), (64, 64), "image/jpeg"),
        (renditions.square(32), (32, 32), "image/jpeg"),
        (renditions.MIRROR, (1600, 1000), "image/jpeg"),
    ],
    ids=lambda value: getattr(value, "name", None),
)
def test_each_recipe_makes_an_image_of_its_size_and_type(
    recipe: renditions.Recipe, size: tuple[int, int], content_type: str
) -> None:
    made = recipe.make(PHOTO, MAX_PIXELS, False)
    assert made.thumbhash is None, "a ThumbHash only when asked for"
    assert ((made.width, made.height), made.content_type) == (size, content_type)
    decoded = images.decode(made.data)
    assert decoded.size == size, "the recorded size is the file's real size"


def test_a_box_that_is_not_square_names_both_sides() -> None:
    recipe = renditions.fit_within(800, 600)
    assert recipe.name == "fit-800x600"
    made = recipe.make(PHOTO, MAX_PIXELS, False)
    assert (made.width, made.height) == (800, 500)


def test_fitting_never_upscales() -> None:
    made = renditions.DEFAULT.make(images.jpeg(100, 50), MAX_PIXELS, False)
    assert (made.width, made.height) == (100, 50)


def test_a_png_is_mirrored_as_a_png() -> None:
    made = renditions.MIRROR.make(images.png(30, 20, mode="RGBA"), MAX_PIXELS, False)
    assert (made.extension, made.width, made.height) == ("png", 30, 20)


@pytest.mark.parametrize("name", sorted(renditions.RECIPES))
def test_every_recipe_keeps_the_pixel_limit(name: str) -> None:
    with pytest.raises(ImageTooLarge, match=r"1600x1000, more than the limit of 1000000 pixels"):
        renditions.by_name(name).make(PHOTO, 1_000_000, False)


@pytest.mark.parametrize("name", sorted(renditions.RECIPES))
def test_every_recipe_makes_the_thumbhash_of_its_pixels_when_asked(name: str) -> None:
    made = renditions.by_name(name).make(PHOTO, MAX_PIXELS, True)
    assert made.thumbhash


def test_the_placeholder_comes_from_a_fit_in_jpeg_first_then_another_fit_then_a_square() -> None:
    by_name = renditions.by_name
    pick = renditions.placeholder_source
    assert pick([by_name("mirror"), by_name("square-64"), by_name("fit-320")]) is renditions.DEFAULT
    assert pick([by_name("square-32"), by_name("fit-320-webp")]) is renditions.FIT_WEBP
    assert pick([by_name("mirror"), by_name("square-64")]) == by_name("square-64")
    assert pick([]) is None
