"""Image code on hostile and unusual input: it either makes a correct thumbnail
or raises ImageError with a reason, and nothing else ever escapes."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

from photos import imaging
from photos.imaging import Encoded, ImageError
from tests.support import images

MAX_PIXELS = 100_000_000
BOX = 320


def fit(data: bytes, *, max_pixels: int = MAX_PIXELS) -> Encoded:
    return imaging.fit_within(data, BOX, BOX, max_pixels=max_pixels)


def assert_valid(result: Encoded, box: tuple[int, int] = (BOX, BOX)) -> Image.Image:
    """A decodable image of the size it claims, inside the box."""
    im = images.decode(result.data)
    assert im.size == (result.width, result.height)
    assert 1 <= result.width <= box[0]
    assert 1 <= result.height <= box[1]
    assert im.format == {"jpg": "JPEG", "png": "PNG"}[result.extension]
    return im


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, rows: list[bytes]) -> bytes:
    """A PNG written by hand, for what Pillow will not write (16-bit RGB) or
    should not be able to (a header that lies about the size)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\0" + row for row in rows))
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b"")
    )


# --- sizes and orientation -----------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1600, 1200), (320, 240)), ((900, 1600), (180, 320)), ((4000, 40), (320, 3)), ((200, 100), (200, 100))],
)
def test_fits_the_box_keeping_the_aspect_ratio_and_never_upscales(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    result = fit(images.jpeg(*size))
    assert_valid(result)
    assert (result.width, result.height) == expected


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied(orientation: int) -> None:
    """The photo is displayed 400x300 with a red mark at its top-left corner,
    whatever the orientation its pixels are stored in."""
    data = images.jpeg(400, 300, orientation=orientation)
    assert imaging.probe(data, MAX_PIXELS).width == 400
    im = assert_valid(fit(data)).convert("RGB")
    assert im.size == (320, 240)
    assert images.is_red(im.getpixel((6, 6)))  # type: ignore[arg-type]
    for corner in ((313, 6), (6, 233), (313, 233)):
        assert not images.is_red(im.getpixel(corner))  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
def test_a_broken_exif_block_is_ignored_and_the_photo_still_made() -> None:
    """An EXIF block cut off inside its first entry: Pillow warns and reads no
    orientation, the thumbnail is made upright and carries no EXIF."""
    broken = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12"
    data = images.encode(images.decode(images.jpeg(400, 300)), "JPEG", exif=broken)
    with pytest.warns(UserWarning, match="Corrupt EXIF data"):
        images.decode(data).getexif().get(0x0112)
    im = assert_valid(fit(data))
    assert im.size == (320, 240)
    assert not im.getexif()


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_webp_orientation_is_applied_too(orientation: int) -> None:
    jpeg = images.decode(images.jpeg(400, 300, orientation=orientation))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = images.encode(jpeg, "WEBP", quality=90, exif=exif)
    im = assert_valid(fit(data)).convert("RGB")
    assert im.size == (320, 240)
    assert images.is_red(im.getpixel((6, 6)))  # type: ignore[arg-type]
    assert not images.is_red(im.getpixel((313, 233)))  # type: ignore[arg-type]


@pytest.mark.parametrize("orientation", [1, 6])
def test_square_and_mirror_apply_the_orientation(orientation: int) -> None:
    data = images.jpeg(400, 300, orientation=orientation)
    sq = images.decode(imaging.square(data, 64, max_pixels=MAX_PIXELS).data).convert("RGB")
    assert sq.size == (64, 64)
    mirrored = images.decode(imaging.mirror(data, max_pixels=MAX_PIXELS).data).convert("RGB")
    assert mirrored.size == (400, 300)
    assert images.is_red(mirrored.getpixel((393, 6)))  # type: ignore[arg-type]
    assert not images.is_red(mirrored.getpixel((6, 6)))  # type: ignore[arg-type]


# --- metadata ------------------------------------------------------------------


def photo_with_metadata(fmt: str) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0131] = "secret-software"  # Software
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 29.0)
    gps[3] = "E"
    gps[4] = (2.0, 17.0, 40.0)
    im = images.photo(640, 480)
    if fmt == "JPEG":
        return images.encode(
            im, "JPEG", exif=exif, comment=b"secret comment", xmp=b"<x:xmpmeta>secret</x:xmpmeta>"
        )
    if fmt == "PNG":
        text = PngInfo()
        text.add_text("comment", "secret comment")
        text.add_text("Author", "secret author", zip=True)
        return images.encode(im, "PNG", exif=exif, pnginfo=text)
    return images.encode(im, fmt, exif=exif)


def test_a_png_comment_too_long_for_a_jpeg_marker_is_dropped_not_fatal() -> None:
    text = PngInfo()
    text.add_text("comment", "x" * 70_000)
    out = fit(images.encode(images.photo(640, 480), "PNG", pnginfo=text))
    assert_valid(out)
    assert b"xxxxxxxx" not in out.data


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize(
    "make",
    [
        fit,
        lambda d: imaging.square(d, 64, max_pixels=MAX_PIXELS),
        lambda d: imaging.mirror(d, max_pixels=MAX_PIXELS),
    ],
    ids=["fit", "square", "mirror"],
)
def test_no_metadata_reaches_an_output(fmt: str, make: Callable[[bytes], Encoded]) -> None:
    source = photo_with_metadata(fmt)
    assert b"secret" in source
    out = make(source)
    im = images.decode(out.data)
    assert not im.getexif()
    assert not {"exif", "comment", "xmp", "XML:com.adobe.xmp"} & set(im.info)
    assert b"secret" not in out.data
    assert b"SecretCam" not in out.data
    assert b"Exif" not in out.data


# --- formats and modes that need care ------------------------------------------


def test_cmyk_jpeg_becomes_a_correct_rgb_thumbnail() -> None:
    data = images.encode(images.photo(640, 480).convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    im = assert_valid(fit(data))
    assert im.mode == "RGB"
    assert images.is_red(im.getpixel((6, 6)))  # type: ignore[arg-type]


def test_16_bit_greyscale_png_keeps_its_tones() -> None:
    gradient = Image.linear_gradient("L").resize((512, 256)).convert("I").point(lambda v: v * 257)
    data = images.encode(gradient.convert("I;16"), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    im = assert_valid(fit(data)).convert("L")
    top, bottom = im.getpixel((160, 2)), im.getpixel((160, im.height - 3))
    assert isinstance(top, int) and isinstance(bottom, int)
    assert top < 30 and bottom > 225, (top, bottom)


def test_16_bit_rgb_png_is_read() -> None:
    red = struct.pack(">HHH", 65535, 0, 0)
    blue = struct.pack(">HHH", 0, 0, 65535)
    rows = [(red if y < 200 else blue) * 640 for y in range(400)]
    im = assert_valid(fit(raw_png(640, 400, 16, 2, rows))).convert("RGB")
    assert im.size == (320, 200)
    assert images.is_red(im.getpixel((10, 10)))  # type: ignore[arg-type]
    r, _g, b = im.getpixel((10, 190))  # type: ignore[misc]
    assert b > 200 and r < 60


def test_palette_png_with_transparency_is_flattened_on_white() -> None:
    im = Image.new("P", (400, 400), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    ImageDraw.Draw(im).rectangle((0, 0, 199, 399), fill=1)
    data = images.encode(im, "PNG", transparency=0)
    out = assert_valid(fit(data)).convert("RGB")
    assert images.is_red(out.getpixel((10, 160)))  # type: ignore[arg-type]
    assert out.getpixel((300, 160)) >= (245, 245, 245)  # type: ignore[operator]


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (300, 200), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert getattr(Image.open(io.BytesIO(out.getvalue())), "n_frames", 1) == 3
    im = assert_valid(fit(out.getvalue())).convert("RGB")
    assert im.size == (300, 200)
    assert images.is_red(im.getpixel((150, 100)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [
        images.encode(images.photo(500, 300), "BMP"),
        images.encode(images.photo(500, 300), "TIFF", compression="tiff_lzw"),
        images.encode(images.photo(500, 300, mode="LA"), "PNG"),
        images.encode(images.photo(500, 300, mode="1"), "PNG"),
        images.encode(images.photo(500, 300, mode="RGBA"), "WEBP", lossless=True),
        images.encode(images.photo(500, 300), "JPEG", progressive=True),
    ],
    ids=["bmp", "tiff-lzw", "png-la", "png-bilevel", "webp-rgba", "progressive-jpeg"],
)
def test_other_allowed_formats_and_modes_make_thumbnails(data: bytes) -> None:
    result = fit(data)
    assert (result.width, result.height) == (320, 192)
    assert_valid(result)


# --- refused input -------------------------------------------------------------


def gif_header(width: int, height: int) -> bytes:
    """A GIF whose screen and only frame claim ``width``x``height``; one pixel of data."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return screen + frame + b"\x3b"


def eps() -> bytes:
    return images.encode(images.photo(64, 64), "EPS")


def pdf() -> bytes:
    return images.encode(images.photo(64, 64), "PDF")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"<!doctype html><html><body>Not found</body></html>", "not an image in a supported format"),
        (eps(), "not an image in a supported format"),
        (pdf(), "not an image in a supported format"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 100, "not an image"),
        (images.jpeg(800, 600)[:3000], "truncated"),
        (images.png(800, 600)[:5000], "truncated"),
        (raw_png(30000, 30000, 8, 2, [b"\0\0\0"]), "30000x30000, more than the limit of 100000000 pixels"),
        (gif_header(20000, 20000), "20000x20000, more than the limit"),
    ],
    ids=[
        "empty",
        "html",
        "eps",
        "pdf",
        "jpeg-header-only",
        "truncated-jpeg",
        "truncated-png",
        "png-30000",
        "gif-bomb",
    ],
)
def test_bad_input_is_an_image_error_with_a_reason(data: bytes, reason: str) -> None:
    for make in (
        fit,
        lambda d: imaging.square(d, 32, max_pixels=MAX_PIXELS),
        lambda d: imaging.mirror(d, max_pixels=MAX_PIXELS),
    ):
        with pytest.raises(ImageError, match=reason) as raised:
            make(data)
        assert raised.value.reason


def test_the_pixel_limit_is_checked_on_the_header_for_every_format() -> None:
    data = images.jpeg(1000, 1000)
    with pytest.raises(ImageError, match="1000x1000, more than the limit of 999999 pixels"):
        fit(data, max_pixels=999_999)
    assert fit(data, max_pixels=1_000_000).width == 320


# --- fuzzing -------------------------------------------------------------------

VALID = [
    images.jpeg(120, 90, orientation=6),
    images.encode(images.photo(120, 90), "JPEG", progressive=True),
    images.png(120, 90),
    images.encode(images.photo(120, 90, mode="P"), "PNG", transparency=3),
    images.encode(images.photo(120, 90), "GIF"),
    images.encode(images.photo(120, 90), "BMP"),
    images.encode(images.photo(120, 90), "TIFF", compression="tiff_deflate"),
    images.encode(images.photo(120, 90), "WEBP"),
]
FUZZ_MAX_PIXELS = 4_000_000


def outcome_is_clear(data: bytes) -> None:
    makers: list[Callable[[bytes], Encoded]] = [
        lambda d: imaging.fit_within(d, 64, 64, max_pixels=FUZZ_MAX_PIXELS),
        lambda d: imaging.square(d, 32, max_pixels=FUZZ_MAX_PIXELS),
    ]
    for make in makers:
        try:
            result = make(data)
        except ImageError as exc:
            assert exc.reason
        else:
            assert_valid(result, (64, 64))


fuzz = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
# Pillow warns about the broken or cut-off EXIF blocks and TIFF tags these inputs
# are full of; the photo is still made (test_a_broken_exif_block_is_ignored_and_the_photo_still_made),
# so the warnings are expected here.
expected_exif_warnings = pytest.mark.filterwarnings(
    "ignore:Corrupt EXIF data:UserWarning",
    "ignore:Truncated File Read:UserWarning",
    "ignore:Tag data larger than file:UserWarning",
)


@fuzz
@given(st.binary(max_size=2048))
def test_random_bytes_never_crash_the_image_code(data: bytes) -> None:
    outcome_is_clear(data)


@expected_exif_warnings
@fuzz
@given(st.sampled_from(VALID), st.integers(min_value=0, max_value=2**31))
def test_random_truncations_of_valid_images_never_crash_the_image_code(source: bytes, cut: int) -> None:
    outcome_is_clear(source[: cut % (len(source) + 1)])


@expected_exif_warnings
@fuzz
@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_random_corruptions_of_valid_images_never_crash_the_image_code(
    source: bytes, changes: list[tuple[int, int]]
) -> None:
    data = bytearray(source)
    for position, value in changes:
        data[position % len(data)] = value
    outcome_is_clear(bytes(data))
