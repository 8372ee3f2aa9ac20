"""Photos that carry colour profiles, and the two readings the colour tests
compare: the original read by a colour-managed viewer, a rendition read the
way a browser reads it. Both through LittleCMS directly (Pillow's ImageCms),
not through the service's code."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageFilter, ImageOps, ImageStat

from tests.support import icc, images

CMYK = icc.cmyk_profile()
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
# The green of the issue, which an Adobe RGB photo shows washed out when its
# profile is dropped, and other saturated patches.
PATCHES = [(30, 200, 60), (220, 40, 30), (40, 60, 210), (240, 200, 20), (20, 180, 190)]


def scene(width: int = 640, height: int = 480) -> Image.Image:
    """A photo-like RGB picture with large saturated patches, edges softened
    as a lens softens them (a hard edge one pixel off in a small square
    would outweigh the colours being measured)."""
    im = images.photo(width, height)
    draw = ImageDraw.Draw(im)
    step = width // len(PATCHES)
    for i, fill in enumerate(PATCHES):
        draw.rectangle((i * step, height // 2, (i + 1) * step - 1, height - 1), fill=fill)
    return im.filter(ImageFilter.GaussianBlur(3))


def jpeg(im: Image.Image, profile: bytes | None) -> bytes:
    params: dict[str, object] = {"quality": 95}
    if profile is not None:
        params["icc_profile"] = profile
    return images.encode(im, "JPEG", **params)


def png(im: Image.Image, profile: bytes | None) -> bytes:
    return images.encode(im, "PNG", **({"icc_profile": profile} if profile is not None else {}))


def webp(im: Image.Image, profile: bytes | None) -> bytes:
    params: dict[str, object] = {"quality": 95}
    if profile is not None:
        params["icc_profile"] = profile
    return images.encode(im, "WEBP", **params)


def tiff(im: Image.Image, profile: bytes | None) -> bytes:
    """A TIFF; a greyscale one is written with 16 bits a pixel."""
    if im.mode == "L":
        im = im.convert("I").point(lambda v: v * 257).convert("I;16")
    return images.encode(im, "TIFF", **({"icc_profile": profile} if profile is not None else {}))


def png16(im: Image.Image, profile: bytes | None) -> bytes:
    """A 16-bit PNG (48-bit RGB or 16-bit grey) with an iCCP chunk: written by
    hand, since Pillow writes neither 48-bit PNGs nor 16-bit ones with a
    profile it can check."""
    grey = im.mode == "L"
    rows = []
    for y in range(im.height):
        row = im.crop((0, y, im.width, y + 1)).tobytes()
        # 8 -> 16 bits: v * 257 maps 0..255 onto 0..65535 exactly.
        rows.append(b"\0" + b"".join(struct.pack(">H", v * 257) for v in row))
    header = struct.pack(">IIBBBBB", im.width, im.height, 16, 0 if grey else 2, 0, 0, 0)
    chunks = [(b"IHDR", header)]
    if profile is not None:
        chunks.append((b"iCCP", b"profile\0\0" + zlib.compress(profile)))
    chunks += [(b"IDAT", zlib.compress(b"".join(rows))), (b"IEND", b"")]
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in chunks:
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return out


def managed_reading(data: bytes) -> Image.Image:
    """The original as a colour-managed viewer shows it, in sRGB: its own
    profile applied (untagged is sRGB; untagged CMYK is read without colour
    management, as browsers read it), EXIF orientation applied."""
    im: Image.Image = Image.open(io.BytesIO(data))
    profile = im.info.get("icc_profile")
    im = ImageOps.exif_transpose(im)
    if im.mode.startswith("I;16"):
        im = im.convert("I").point(lambda v: v / 256).convert("L")
    if profile:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        return ImageCms.profileToProfile(im, source, SRGB, outputMode="RGB")  # type: ignore[return-value]
    return im.convert("RGB")


def browser_reading(data: bytes) -> Image.Image:
    """A rendition as a browser shows it: through its profile if it has one,
    as sRGB if it has none."""
    return managed_reading(data)


def mean_difference(made: Image.Image, reference: Image.Image) -> float:
    """The largest, over R, G and B, of the mean absolute difference (0-255)."""
    if reference.size != made.size:
        reference = reference.resize(made.size, Image.Resampling.LANCZOS)
    return max(ImageStat.Stat(ImageChops.difference(made.convert("RGB"), reference.convert("RGB"))).mean)
