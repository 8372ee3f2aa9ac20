"""Photo-like test images, made on the fly (nothing is downloaded)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def photo(width: int, height: int, *, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A gradient with shapes and noise, and a red mark in the top-left corner
    so that orientation can be checked on the result."""
    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(base)
    for i in range(6):
        x, y = (seed * 37 + i * 101) % width, (seed * 53 + i * 67) % height
        draw.ellipse((x, y, x + width // 5, y + height // 5), fill=(40 * i % 255, 90, 200 - 20 * i))
    mark_w, mark_h = max(2, width // 5), max(2, height // 5)
    draw.rectangle((0, 0, mark_w, mark_h), fill=(255, 0, 0))
    noise = Image.effect_noise((width, height), 12).convert("RGB")
    im = Image.blend(base, noise, 0.05)
    return im if mode == "RGB" else im.convert(mode)


def encode(im: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **params)
    return out.getvalue()


def jpeg(width: int, height: int, *, orientation: int | None = None, quality: int = 90) -> bytes:
    """A JPEG whose *displayed* size is width x height: with an orientation of
    5 to 8 the stored pixels are transposed accordingly, as a camera does."""
    im = photo(width, height)
    if orientation is None or orientation == 1:
        return encode(im, "JPEG", quality=quality)
    inverse = {
        2: [Image.Transpose.FLIP_LEFT_RIGHT],
        3: [Image.Transpose.ROTATE_180],
        4: [Image.Transpose.FLIP_TOP_BOTTOM],
        5: [Image.Transpose.TRANSPOSE],
        6: [Image.Transpose.ROTATE_90],
        7: [Image.Transpose.TRANSVERSE],
        8: [Image.Transpose.ROTATE_270],
    }[orientation]
    for method in inverse:
        im = im.transpose(method)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(im, "JPEG", quality=quality, exif=exif)


def png(width: int, height: int, *, mode: str = "RGB") -> bytes:
    return encode(photo(width, height, mode=mode), "PNG")


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def is_red(pixel: tuple[int, ...]) -> bool:
    r, g, b = pixel[:3]
    return r > 180 and g < 90 and b < 90
