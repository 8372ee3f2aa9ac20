"""Renditions show the original's colours: each profile case through each of
imaging's front doors (fit, square, mirror), measured as the issue does: the
largest per-channel mean absolute difference between the rendition read as a
browser reads it and the original read by a colour-managed viewer, at most 3."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from PIL import Image, ImageCms, ImageOps

from photos import colour, imaging
from photos.imaging import Encoded
from tests.support import colours, icc, images

MAX_PIXELS = 50_000_000
GOAL = 3.0


@dataclass(frozen=True)
class Door:
    make: Callable[[bytes], Encoded]
    # The original's managed reading -> what the rendition should look like.
    expected: Callable[[Image.Image], Image.Image]


DOORS = {
    "fit-320": Door(
        lambda d: imaging.fit_within(d, 320, 320, max_pixels=MAX_PIXELS),
        lambda im: im.resize((320, 240), Image.Resampling.LANCZOS),
    ),
    # A 64-pixel JPEG of saturated patches is 3-4 off its own pixels (chroma
    # subsampling), whatever its colours: the expected square is encoded the
    # same way (quality 85, by Pillow directly), so that colour is what differs.
    "square-64": Door(
        lambda d: imaging.square(d, 64, max_pixels=MAX_PIXELS),
        lambda im: images.decode(
            images.encode(ImageOps.fit(im, (64, 64), Image.Resampling.LANCZOS), "JPEG", quality=85)
        ),
    ),
    "mirror": Door(lambda d: imaging.mirror(d, max_pixels=MAX_PIXELS), ImageOps.mirror),
}


def _cmyk(im: Image.Image) -> Image.Image:
    return im.convert("CMYK")


def _grey(im: Image.Image) -> Image.Image:
    return im.convert("L")


def _rgb(im: Image.Image) -> Image.Image:
    return im


# name -> (pixels of the scene in the photo's mode, writer, profile)
CASES: dict[str, tuple[Callable[[Image.Image], Image.Image], Callable[..., bytes], bytes | None]] = {
    "adobe-rgb-jpeg": (_rgb, colours.jpeg, icc.ADOBE_RGB),
    "adobe-rgb-png": (_rgb, colours.png, icc.ADOBE_RGB),
    "adobe-rgb-webp": (_rgb, colours.webp, icc.ADOBE_RGB),
    "adobe-rgb-16-bit-png": (_rgb, colours.png16, icc.ADOBE_RGB),
    "grey-profile-jpeg": (_grey, colours.jpeg, icc.GREY),
    "grey-profile-16-bit-png": (_grey, colours.png16, icc.GREY),
    "grey-profile-16-bit-tiff": (_grey, colours.tiff, icc.GREY),
    "adobe-rgb-tiff": (_rgb, colours.tiff, icc.ADOBE_RGB),
    "cmyk-jpeg-with-profile": (_cmyk, colours.jpeg, colours.CMYK),
    "cmyk-jpeg-without-profile": (_cmyk, colours.jpeg, None),
    "srgb-tagged-jpeg": (_rgb, colours.jpeg, colours.SRGB.tobytes()),
    "untagged-jpeg": (_rgb, colours.jpeg, None),
    "untagged-16-bit-png": (_rgb, colours.png16, None),
}


def photo(case: str) -> bytes:
    pixels, write, profile = CASES[case]
    return write(pixels(colours.scene()), profile)


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("case", CASES)
def test_every_rendition_shows_the_originals_colours(case: str, door: str) -> None:
    data = photo(case)
    made = DOORS[door].make(data)
    assert made.warning is None
    expected = DOORS[door].expected(colours.managed_reading(data))
    difference = colours.mean_difference(colours.browser_reading(made.data), expected)
    assert difference <= GOAL, f"{case} through {door}: {difference:.2f}"


@pytest.mark.parametrize(
    "case",
    [
        "adobe-rgb-jpeg",
        "adobe-rgb-png",
        "adobe-rgb-16-bit-png",
        "adobe-rgb-tiff",
        "grey-profile-jpeg",
        "grey-profile-16-bit-tiff",
        "cmyk-jpeg-with-profile",
    ],
)
def test_the_profile_matters_for_these_photos(case: str) -> None:
    """Reading these photos without their profile is visibly wrong, so the
    test above could fail for them: it is not JPEG noise that it measures."""
    data = photo(case)
    unmanaged = images.decode(data)
    if unmanaged.mode.startswith("I;16"):
        unmanaged = unmanaged.convert("I").point(lambda v: v / 256).convert("L")
    assert colours.mean_difference(unmanaged.convert("RGB"), colours.managed_reading(data)) > 2 * GOAL


def test_the_washed_out_green_of_the_issue_is_green_again() -> None:
    data = colours.jpeg(Image.new("RGB", (400, 300), (30, 200, 60)), icc.ADOBE_RGB)
    made = images.decode(imaging.fit_within(data, 320, 320, max_pixels=MAX_PIXELS).data)
    expected = colours.managed_reading(data).getpixel((10, 10))
    got = made.getpixel((10, 10))
    assert isinstance(got, tuple) and isinstance(expected, tuple)
    assert all(abs(a - b) <= 3 for a, b in zip(got, expected, strict=True)), (got, expected)
    assert got[0] < 20, got  # read as sRGB, this green was (115, 199, 75) after the shrink


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize(
    "case", ["adobe-rgb-jpeg", "adobe-rgb-png", "cmyk-jpeg-with-profile", "grey-profile-16-bit-png"]
)
def test_renditions_carry_no_profile(case: str, door: str) -> None:
    made = DOORS[door].make(photo(case))
    assert "icc_profile" not in images.decode(made.data).info


BROKEN = {
    "garbage": b"not a colour profile at all" * 20,
    "truncated": icc.ADOBE_RGB[:300],
    "header-only": icc.ADOBE_RGB[:128],
    "grey-profile-on-rgb": icc.GREY,
    "cmyk-profile-on-rgb": colours.CMYK,
}


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
@pytest.mark.parametrize("broken", BROKEN)
def test_a_broken_profile_never_fails_a_photo_it_is_read_as_srgb(broken: str, fmt: str, door: str) -> None:
    scene = colours.scene()
    write = {"jpeg": colours.jpeg, "png": colours.png, "webp": colours.webp}[fmt]
    data = write(scene, BROKEN[broken])
    made = DOORS[door].make(data)
    assert made.warning is not None and made.warning.startswith("colour profile not used, taken as sRGB")
    untagged = DOORS[door].make(write(scene, None))
    difference = colours.mean_difference(images.decode(made.data), images.decode(untagged.data))
    assert difference < 1.0


def test_a_grey_photo_that_became_rgb_keeps_its_grey_profile() -> None:
    grey = colours.scene().convert("L")
    as_rgb = colour.to_srgb(grey.convert("RGB"), icc.GREY)
    assert as_rgb.warning is None
    assert as_rgb.image.tobytes() == colour.to_srgb(grey, icc.GREY).image.tobytes()


def test_alpha_is_kept_through_the_conversion() -> None:
    im = colours.scene().convert("RGBA")
    im.putalpha(Image.linear_gradient("L").resize(im.size))
    converted = colour.to_srgb(im, icc.ADOBE_RGB)
    assert converted.image.mode == "RGBA"
    assert converted.image.getchannel("A").tobytes() == im.getchannel("A").tobytes()
    assert converted.image.convert("RGB").tobytes() != im.convert("RGB").tobytes()


def test_profiles_used_here_are_what_they_say() -> None:
    for profile, space in ((icc.ADOBE_RGB, "RGB"), (icc.GREY, "GRAY"), (colours.CMYK, "CMYK")):
        assert ImageCms.ImageCmsProfile(io.BytesIO(profile)).profile.xcolor_space.strip() == space
