"""ThumbHash placeholders: made from a rendition's own pixels, some 25 bytes,
and decoding (by the reference algorithm) to a small picture of the photo."""

from __future__ import annotations

import fast_thumbhash
import pytest
from PIL import Image, ImageStat

from photos import imaging, renditions
from photos.placeholder import thumbhash
from tests.support import colours, icc, images

MAX_PIXELS = 50_000_000


def decoded(hash_: bytes) -> Image.Image:
    width, height, rgba = fast_thumbhash.thumb_hash_to_rgba(hash_)
    return Image.frombytes("RGBA", (width, height), bytes(rgba)).convert("RGB")


def mean_rgb(im: Image.Image) -> list[float]:
    return ImageStat.Stat(im.convert("RGB")).mean


@pytest.mark.parametrize(
    "make",
    [
        lambda d: imaging.fit_within(d, 320, 320, max_pixels=MAX_PIXELS, placeholder=True),
        lambda d: imaging.fit_within(d, 320, 320, max_pixels=MAX_PIXELS, fmt=imaging.AVIF, placeholder=True),
        lambda d: imaging.square(d, 64, max_pixels=MAX_PIXELS, placeholder=True),
        lambda d: imaging.mirror(d, max_pixels=MAX_PIXELS, placeholder=True),
    ],
    ids=["fit-320", "fit-320-avif", "square-64", "mirror"],
)
def test_a_rendition_asked_for_a_placeholder_brings_its_thumbhash(make: object) -> None:
    data = images.jpeg(1600, 1000)
    made = make(data)  # type: ignore[operator]
    assert made.thumbhash is not None
    assert 15 <= len(made.thumbhash) <= 30
    picture = decoded(made.thumbhash)
    # Its colours are the rendition's, on average, and so is its shape.
    shown = images.decode(made.data)
    assert all(abs(a - b) <= 8 for a, b in zip(mean_rgb(picture), mean_rgb(shown), strict=True))
    ratio = fast_thumbhash.thumb_hash_to_approximate_aspect_ratio(made.thumbhash)
    assert abs(ratio - made.width / made.height) < 0.15


def test_no_placeholder_unless_asked() -> None:
    assert imaging.fit_within(images.jpeg(640, 480), 320, 320, max_pixels=MAX_PIXELS).thumbhash is None


def test_the_thumbhash_is_that_of_the_pixels_the_rendition_holds() -> None:
    """Same pixels, same hash: the rendition's pixels before encoding (after
    the sRGB conversion), not the original's and not the encoded file's."""
    data = colours.jpeg(colours.scene(), icc.ADOBE_RGB)
    made = imaging.fit_within(data, 320, 320, max_pixels=MAX_PIXELS, placeholder=True)
    with imaging._open(data, MAX_PIXELS) as source:
        pixels = imaging._fit_within_pixels(source, 320, 320)
    from_original_colours = thumbhash(pixels)
    assert made.thumbhash != from_original_colours
    green = Image.new("RGB", (300, 200), (30, 200, 60))
    managed = colours.managed_reading(colours.jpeg(green, icc.ADOBE_RGB)).getpixel((5, 5))
    hashed = imaging.fit_within(
        colours.jpeg(green, icc.ADOBE_RGB), 320, 320, max_pixels=MAX_PIXELS, placeholder=True
    ).thumbhash
    assert hashed is not None and isinstance(managed, tuple)
    average = fast_thumbhash.thumb_hash_to_average_rgba(hashed)
    assert all(abs(a * 255 - b) <= 4 for a, b in zip(average[:3], managed, strict=True)), (average, managed)


def test_the_placeholder_comes_from_the_fit_when_a_photo_has_one() -> None:
    pick = renditions.placeholder_source
    by_name = renditions.by_name
    assert pick([by_name("square-64"), by_name("fit-320-webp"), by_name("fit-320")]) == by_name("fit-320")
    assert pick([by_name("square-64"), by_name("fit-320-avif")]) == by_name("fit-320-avif")
    assert pick([by_name("square-64"), by_name("square-32")]) == by_name("square-64")
    assert pick([by_name("mirror")]) == by_name("mirror")
    assert pick([]) is None
