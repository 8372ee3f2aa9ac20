"""fit-320 in three formats: the seed's JPEG (the default), WebP and AVIF."""

from __future__ import annotations

import io

import pytest
from PIL import Image, features

from photos import imaging, renditions
from tests.support import colours, icc, images

MAX_PIXELS = 50_000_000
FORMATS = {
    "fit-320": ("JPEG", "image/jpeg", "jpg"),
    "fit-320-webp": ("WEBP", "image/webp", "webp"),
    "fit-320-avif": ("AVIF", "image/avif", "avif"),
}


def test_this_pillow_writes_and_reads_webp_and_avif() -> None:
    assert features.check("webp")
    assert features.check("avif")


def test_the_default_rendition_stays_the_jpeg() -> None:
    assert renditions.DEFAULT.name == "fit-320"
    assert renditions.DEFAULT.make(images.jpeg(640, 480), MAX_PIXELS, False).content_type == "image/jpeg"


@pytest.mark.parametrize("source", ["jpeg", "png-with-alpha", "webp"])
@pytest.mark.parametrize("name", FORMATS)
def test_each_recipe_writes_its_format_at_the_right_size(name: str, source: str) -> None:
    data = {
        "jpeg": images.jpeg(1600, 1200, orientation=6),
        "png-with-alpha": images.png(1600, 1200, mode="RGBA"),
        "webp": images.encode(images.photo(1600, 1200), "WEBP"),
    }[source]
    made = renditions.by_name(name).make(data, MAX_PIXELS, False)
    fmt, content_type, extension = FORMATS[name]
    assert (made.content_type, made.extension) == (content_type, extension)
    with Image.open(io.BytesIO(made.data)) as im:
        assert im.format == fmt
        assert im.size == (made.width, made.height) == (320, 240)
        im.load()
        assert images.is_red(im.convert("RGB").getpixel((3, 3)))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_shows_a_tagged_photos_colours_and_carries_no_metadata(name: str) -> None:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    data = images.encode(colours.scene(), "JPEG", quality=95, icc_profile=icc.ADOBE_RGB, exif=exif)
    made = renditions.by_name(name).make(data, MAX_PIXELS, False)
    with Image.open(io.BytesIO(made.data)) as im:
        im.load()
        assert not im.getexif()
        assert not {"icc_profile", "exif", "xmp"} & {k for k, v in im.info.items() if v}
    assert b"SecretCam" not in made.data
    difference = colours.mean_difference(colours.browser_reading(made.data), colours.managed_reading(data))
    assert difference <= 3.0, difference


def test_webp_and_avif_are_lighter_than_the_jpeg_of_the_same_photo() -> None:
    data = images.encode(colours.scene(1600, 1200), "PNG")
    sizes = {name: len(renditions.by_name(name).make(data, MAX_PIXELS, False).data) for name in FORMATS}
    assert sizes["fit-320-webp"] < sizes["fit-320"]
    assert sizes["fit-320-avif"] < sizes["fit-320"]


def test_a_format_pillow_cannot_write_is_an_image_error() -> None:
    nowhere = imaging.Format("NOSUCHFORMAT", "image/x-none", "none", {})
    with pytest.raises(imaging.ImageError, match="could not encode"):
        imaging.fit_within(images.jpeg(64, 48), 32, 32, max_pixels=MAX_PIXELS, fmt=nowhere)
