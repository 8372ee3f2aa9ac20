"""Pure image code: bytes in, encoded image bytes and their size out.

Pillow does all of it, with the codecs its wheel bundles (libjpeg-turbo, zlib,
libwebp, libtiff), so ``pip install`` brings everything and no system library
is loaded. Colours are made sRGB from the photo's profile once the image is
small (photos/colour.py). No I/O, no database. Every failure to read an image is raised as
:class:`ImageError` with a reason a person understands; nothing else escapes
(the fuzz tests hold us to that). A Pillow built without one of those codecs
(from source, or a distribution's) raises :class:`CodecUnavailable`, which
names what is missing, and :func:`missing_codecs` lists them for ``/readyz``.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Mapping
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError, _imaging

from photos import colour
from photos.errors import PermanentError
from photos.placeholder import thumbhash

# Formats we open. EPS and PDF (Ghostscript), and every other plugin, are refused
# before any of their code runs on untrusted bytes.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
# What every front door (a URL, an upload, a task, a query) accepts: the format
# as opened -> (file extension, content type) of the original when it is kept.
# MPO is how Pillow's JPEG reader names a multi-picture JPEG (some cameras
# write them); its first picture is the photo.
ACCEPTED_FORMATS = {
    "JPEG": ("jpg", "image/jpeg"),
    "MPO": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
    "GIF": ("gif", "image/gif"),
    "BMP": ("bmp", "image/bmp"),
    "TIFF": ("tiff", "image/tiff"),
}
JPEG_QUALITY = 85
# Pillow's JPEG draft mode decodes at 1/2, 1/4 or 1/8 scale; a gap of 1.0 picks
# the smallest scale that still covers the target box. bench/thumbnail.py
# measures what that costs in quality against a full decode + LANCZOS.
REDUCING_GAP = 1.0

# The pixel ceiling is ours, per call (max_pixels), checked on the header before
# any decoding; Pillow's process-wide warning/error threshold would only disagree.
Image.MAX_IMAGE_PIXELS = None

_EXIF_ORIENTATION = 0x0112
_TRANSPOSE = {
    2: [Image.Transpose.FLIP_LEFT_RIGHT],
    3: [Image.Transpose.ROTATE_180],
    4: [Image.Transpose.FLIP_TOP_BOTTOM],
    5: [Image.Transpose.TRANSPOSE],
    6: [Image.Transpose.ROTATE_270],
    7: [Image.Transpose.TRANSVERSE],
    8: [Image.Transpose.ROTATE_90],
}


class ImageError(PermanentError):
    """The bytes are not an image we can turn into a rendition."""


class NotAnImage(ImageError):
    """The bytes are not an image in a format we accept, or not a readable one."""


class ImageTooLarge(ImageError):
    """More pixels than the limit, found from the header before decoding."""


class CodecUnavailable(ImageError):
    """This installation of Pillow cannot read or write the format: a codec it
    was built without, or whose library did not load. The reason names it;
    the same words appear on ``/readyz``."""


@dataclass(frozen=True)
class Encoded:
    data: bytes
    width: int
    height: int
    content_type: str
    extension: str
    warning: str | None = None
    """Something the caller should log: the photo was made, but not quite as
    asked (its colour profile could not be used, say)."""
    thumbhash: bytes | None = None
    """The ThumbHash of these pixels, when asked for (``placeholder=True``)."""


@dataclass(frozen=True)
class Format:
    """How a rendition is encoded: Pillow's format name and save options."""

    name: str
    content_type: str
    extension: str
    options: Mapping[str, object]


# The seed's JPEG. No exif= or xmp= argument: EXIF (and with it GPS) never
# reaches an output; comment=b"" because Pillow would copy a comment from the
# source (a JPEG COM marker, or a PNG text chunk too long for a marker).
JPEG = Format("JPEG", "image/jpeg", "jpg", {"quality": JPEG_QUALITY, "comment": b""})
# WebP and AVIF: the cheapest settings whose SSIM on bench's corpus is at least
# the JPEG's (python -m bench --only encoders prints bytes, SSIM and time of
# each next to the JPEG). WebP: libwebp's default method (4); quality 75, its
# default, falls below the JPEG's SSIM. AVIF (libavif through Pillow): speed 8
# encodes much faster than Pillow's default 6 for the same bytes at the same
# SSIM on 320-pixel images. icc_profile=None: Pillow's AVIF writer
# would otherwise copy the source's profile.
WEBP = Format("WEBP", "image/webp", "webp", {"quality": 80, "method": 4})
AVIF = Format("AVIF", "image/avif", "avif", {"quality": 60, "speed": 8, "icc_profile": None})


@dataclass(frozen=True)
class Probe:
    format: str
    width: int
    height: int


def probe(data: bytes, max_pixels: int) -> Probe:
    """Format and displayed size (EXIF orientation applied) from the header
    only: the one rule of what is accepted, the same that making a rendition
    applies first. Raises NotAnImage, ImageTooLarge or CodecUnavailable."""
    with _open(data, max_pixels) as im:
        width, height = im.size
        if _orientation(im) >= 5:
            width, height = height, width
        return Probe(format=str(im.format), width=width, height=height)


def fit_within(
    data: bytes, width: int, height: int, *, max_pixels: int, fmt: Format = JPEG, placeholder: bool = False
) -> Encoded:
    """An image (JPEG unless ``fmt`` says otherwise) that fits in
    ``width``×``height`` with the aspect ratio kept, the EXIF orientation
    applied, the colours in sRGB and all metadata dropped. Never upscales.
    With ``placeholder``, also the ThumbHash of the same pixels."""
    with _open(data, max_pixels) as source:
        icc = _icc_profile(source)
        return _encode(colour.to_srgb(_fit_within_pixels(source, width, height), icc), fmt, placeholder)


def _fit_within_pixels(source: Image.Image, width: int, height: int) -> Image.Image:
    """What fit_within encodes (bench/thumbnail.py compares it with a reference).

    JPEGs are decoded at the smallest DCT scale (1/2, 1/4, 1/8) that still
    covers the box, which makes the decode nearly all of the cost, and the
    rest of the way is LANCZOS. Decoding at the next larger scale costs more
    time for no visible gain, and a cheaper filter (BILINEAR) loses visibly
    (bench/thumbnail.py prints the figures)."""
    orientation = _orientation(source)
    # Rotations by 90° swap the box, so shrink against the stored axes and
    # rotate the small result: rotating first would force a full decode.
    box = (height, width) if orientation >= 5 else (width, height)
    im = _decoded(_prepare_mode(source), box)
    if im.width > box[0] or im.height > box[1]:
        im.thumbnail(box, Image.Resampling.LANCZOS, reducing_gap=2.0)
    return _apply_orientation(im, orientation)


def square(data: bytes, size: int, *, max_pixels: int, placeholder: bool = False) -> Encoded:
    """A ``size``×``size`` JPEG: centre-cropped to a square, then resized."""
    with _open(data, max_pixels) as source:
        orientation = _orientation(source)
        icc = _icc_profile(source)
        im = _decoded(_prepare_mode(source), (size, size), cover=True)
        im = _apply_orientation(im, orientation)
        im = ImageOps.fit(im, (size, size), Image.Resampling.LANCZOS)
        return _encode(colour.to_srgb(im, icc), JPEG, placeholder)


def mirror(data: bytes, *, max_pixels: int, placeholder: bool = False) -> Encoded:
    """The image flipped left to right, in its own format where that is PNG,
    otherwise as JPEG."""
    with _open(data, max_pixels) as source:
        fmt = source.format
        icc = _icc_profile(source)
        im = _apply_orientation(_decoded(_prepare_mode(source), None), _orientation(source))
        flipped = colour.to_srgb(ImageOps.mirror(im), icc)
        if fmt == "PNG":
            return _encode_png(flipped, placeholder)
        return _encode(flipped, JPEG, placeholder)


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a WebP's first chunk (RIFF container, then VP8X,
    VP8 or VP8L), or None when it is not one of those."""
    chunk, body = data[12:16], data[20:30]
    if chunk == b"VP8X" and len(body) >= 10:
        return 1 + int.from_bytes(body[4:7], "little"), 1 + int.from_bytes(body[7:10], "little")
    if chunk == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        return int.from_bytes(body[6:8], "little") & 0x3FFF, int.from_bytes(body[8:10], "little") & 0x3FFF
    if chunk == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        bits = int.from_bytes(body[1:5], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


def _open(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise NotAnImage("the download was empty (0 bytes)")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        # Pillow's WebP reader allocates the whole canvas when it opens the
        # file, so the ceiling is checked on the header before that.
        size = _webp_size(data)
        if size is None:
            raise NotAnImage("unreadable image header: not a valid WebP header")
        check_pixels(*size, max_pixels)
        _require_module("WEBP")
    try:
        im = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except UnidentifiedImageError:
        raise NotAnImage("not an image in a supported format (JPEG, PNG, WebP, GIF, BMP, TIFF)") from None
    except Exception as exc:  # Pillow's plugins raise many types on bad headers
        raise NotAnImage(f"unreadable image header: {exc}") from None
    try:
        if im.format not in ACCEPTED_FORMATS:
            raise NotAnImage(f"unsupported image format {im.format}")
        check_pixels(*im.size, max_pixels)
        _require_decoders(im)
    except ImageError:
        im.close()
        raise
    return im


def _icc_profile(im: Image.Image) -> bytes | None:
    icc = im.info.get("icc_profile")
    return icc if isinstance(icc, bytes) and icc else None


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    """The pixel limit, the one place it is checked: NotAnImage for no pixels,
    ImageTooLarge for more than ``max_pixels``."""
    if width <= 0 or height <= 0:
        raise NotAnImage(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLarge(f"image is {width}x{height}, more than the limit of {max_pixels} pixels")


# --- codecs -------------------------------------------------------------------
#
# What Pillow needs beyond its own code for each format we read or write: a
# codec compiled into its core (its name + "_decoder"/"_encoder" in
# PIL._imaging), or, for WebP, a module of its own. Pillow's wheels have them
# all; a Pillow built without a library has not, and says so only when a photo
# needs it ("decoder jpeg not available"), which would read as a crash.
_LIBRARIES = {"jpeg": "libjpeg", "zip": "zlib", "libtiff": "libtiff"}
_FORMAT_CODECS = {"JPEG": "jpeg", "PNG": "zip", "TIFF": "libtiff"}
# Format -> (Pillow's module, its library, what we do with the format).
_FORMAT_MODULES = {"WEBP": ("PIL._webp", "libwebp", "read"), "AVIF": ("PIL._avif", "libavif", "write")}
_FORMAT_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "TIFF": "TIFF", "AVIF": "AVIF"}


def missing_codecs() -> list[str]:
    """What this process cannot read or write among the formats we handle, one
    line each, naming the library; empty when everything is there."""
    missing = []
    for fmt, codec in _FORMAT_CODECS.items():
        for direction in ("decoder", "encoder") if fmt in ("JPEG", "PNG") else ("decoder",):
            if not hasattr(_imaging, f"{codec}_{direction}"):
                missing.append(_no_codec(fmt, codec, direction))
    for fmt in _FORMAT_MODULES:
        problem = _module_problem(fmt)
        if problem is not None:
            missing.append(problem)
    return missing


def check_codecs() -> None:
    """Returns when every codec is there; raises CodecUnavailable naming those
    that are not (the imaging check of ``/readyz``)."""
    missing = missing_codecs()
    if missing:
        raise CodecUnavailable("; ".join(missing))


def _no_codec(fmt: str, codec: str, direction: str) -> str:
    verb = "read" if direction == "decoder" else "write"
    library = _LIBRARIES.get(codec, codec)
    return f"cannot {verb} {_FORMAT_NAMES.get(fmt, fmt)} images: Pillow was built without {library} (no {codec} {direction})"


def _module_problem(fmt: str) -> str | None:
    module, library, verb = _FORMAT_MODULES[fmt]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return f"cannot {verb} {_FORMAT_NAMES[fmt]} images: Pillow's {library} module did not load ({exc})"
    return None


def _require_module(fmt: str) -> None:
    problem = _module_problem(fmt)
    if problem is not None:
        raise CodecUnavailable(problem)


def _require_decoders(im: Image.Image) -> None:
    """Raise CodecUnavailable where load() would fail for want of a decoder."""
    tiles = im.tile if isinstance(im, ImageFile.ImageFile) else []
    for tile in tiles:
        name = tile.codec_name
        if name not in Image.DECODERS and not hasattr(_imaging, f"{name}_decoder"):
            raise CodecUnavailable(_no_codec(str(im.format), name, "decoder"))


def _require_encoder(fmt: str) -> None:
    codec = _FORMAT_CODECS[fmt]
    if not hasattr(_imaging, f"{codec}_encoder"):
        raise CodecUnavailable(_no_codec(fmt, codec, "encoder"))


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a broken EXIF block is no reason to refuse the photo
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _prepare_mode(im: Image.Image) -> Image.Image:
    """Modes that resize poorly or not at all are turned into L/RGB/RGBA first.
    JPEG modes are left alone so that draft decoding still applies."""
    if im.mode in ("RGB", "L", "RGBA", "CMYK", "YCbCr"):
        return im
    try:
        # Bilevel too: converted to RGB it would keep its tRNS colour as a
        # number, which Pillow's PNG writer refuses for RGB.
        if im.mode in ("P", "PA", "LA", "La", "RGBa", "1"):
            has_alpha = "A" in im.mode or "a" in im.mode or "transparency" in im.info
            return im.convert("RGBA" if has_alpha else "RGB")
        if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
            # 16- and 32-bit greyscale: scale into 8 bits.
            scale = 1 / 256 if im.mode.startswith("I;16") else 1.0
            return im.convert("I").point(lambda v: v * scale).convert("L")
        return im.convert("RGB")
    except Exception as exc:
        raise NotAnImage(f"image data is corrupt or truncated: {exc}") from None


def _decoded(im: Image.Image, box: tuple[int, int] | None, cover: bool = False) -> Image.Image:
    """Decode the pixels, at reduced scale where the format allows (JPEG).
    CMYK stays CMYK: its profile converts it once it is small."""
    try:
        if box is not None and im.format == "JPEG":
            if cover:
                # The short side must still cover the box after scaling.
                side = max(box)
                ratio = max(side / im.width, side / im.height)
                target = (max(1, round(im.width * ratio)), max(1, round(im.height * ratio)))
            else:
                target = box
            im.draft(None, (int(target[0] * REDUCING_GAP), int(target[1] * REDUCING_GAP)))
        im.load()
        if im.mode == "YCbCr":
            im = im.convert("RGB")
    except ImageError:
        raise
    except Exception as exc:
        raise NotAnImage(f"image data is corrupt or truncated: {exc}") from None
    return im


def _apply_orientation(im: Image.Image, orientation: int) -> Image.Image:
    for method in _TRANSPOSE.get(orientation, []):
        im = im.transpose(method)
    return im


def _flatten(im: Image.Image) -> Image.Image:
    if im.mode == "RGBA":
        background = Image.new("RGB", im.size, (255, 255, 255))
        background.paste(im, mask=im.getchannel("A"))
        return background
    if im.mode not in ("RGB", "L"):
        return im.convert("RGB")
    return im


def _encode(pixels: colour.InSrgb, fmt: Format, placeholder: bool = False) -> Encoded:
    if fmt.name in _FORMAT_CODECS:
        _require_encoder(fmt.name)
    elif fmt.name in _FORMAT_MODULES:
        _require_module(fmt.name)
    im = _flatten(pixels.image)
    out = io.BytesIO()
    try:
        im.save(out, fmt.name, **fmt.options)
    except (KeyError, OSError, ValueError) as exc:  # a format this Pillow cannot write
        raise ImageError(f"could not encode the {fmt.name} rendition: {exc}") from None
    return Encoded(
        out.getvalue(),
        im.width,
        im.height,
        fmt.content_type,
        fmt.extension,
        pixels.warning,
        thumbhash(im) if placeholder else None,
    )


def _encode_png(pixels: colour.InSrgb, placeholder: bool = False) -> Encoded:
    _require_encoder("PNG")
    im = pixels.image
    if im.mode not in ("RGB", "RGBA", "L", "LA"):
        im = im.convert("RGBA")
    out = io.BytesIO()
    # Pillow's PNG writer would copy the source's profile from im.info.
    im.save(out, "PNG", icc_profile=None)
    return Encoded(
        out.getvalue(),
        im.width,
        im.height,
        "image/png",
        "png",
        pixels.warning,
        thumbhash(im) if placeholder else None,
    )
