"""Colour management: a rendition's pixels, read through the photo's own
colour profile, made sRGB.

Renditions are converted after the shrink (so the cost is that of the small
image) and written *without* a profile. Browsers read an untagged image as
sRGB (CSS Color 4, HTML), so sRGB pixels without a profile show the same
colours as with one, and the bytes of even a compact sRGB profile (some
500) stay out of every thumbnail, where they would be a noticeable share of a
320-pixel WebP or AVIF. It is what the seed's thumbnails were too: untagged.

A profile that cannot be read, or that does not fit the pixels (a greyscale
profile on colour pixels, say), never fails a photo: the pixels are taken as
sRGB, as if there were no profile, and the caller gets a warning to log.
Pure code: Pillow's ImageCms (LittleCMS), no I/O, nothing downloaded.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass

from PIL import Image, ImageCms

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
# The profile's colour space (ICC header) -> the Pillow mode it describes.
_MODES = {"RGB": "RGB", "GRAY": "L", "CMYK": "CMYK"}
# Transforms built per profile are kept: building one costs more than using it.
_CACHED_PROFILES = 32


@dataclass(frozen=True)
class InSrgb:
    image: Image.Image
    """Mode L, RGB or RGBA, sRGB."""
    warning: str | None = None
    """Why the profile was not used, when there was one and it was not."""


class _Unusable(Exception):
    """The profile cannot convert these pixels."""


def to_srgb(im: Image.Image, icc_profile: bytes | None) -> InSrgb:
    """``im`` (8 bits a channel: mode L, RGB, RGBA or CMYK) converted from the
    colour space ``icc_profile`` describes to sRGB. Without a profile the
    pixels are sRGB already, except CMYK, which is converted without colour
    management, as browsers do with an untagged CMYK JPEG. Alpha is kept."""
    alpha = im.getchannel("A") if im.mode == "RGBA" else None
    pixels = im.convert("RGB") if alpha is not None else im
    if not icc_profile:
        return InSrgb(_with_alpha(_untagged(pixels), alpha))
    try:
        converted = _convert(pixels, icc_profile)
    except _Unusable as exc:
        return InSrgb(_with_alpha(_untagged(pixels), alpha), f"colour profile not used, taken as sRGB: {exc}")
    return InSrgb(_with_alpha(converted, alpha))


def _untagged(im: Image.Image) -> Image.Image:
    return im.convert("RGB") if im.mode == "CMYK" else im


def _with_alpha(im: Image.Image, alpha: Image.Image | None) -> Image.Image:
    if alpha is None:
        return im
    im = im.convert("RGB")
    im.putalpha(alpha)
    return im


def _convert(im: Image.Image, icc_profile: bytes) -> Image.Image:
    space = _space(icc_profile)
    if space == "L" and im.mode == "RGB" and _is_grey(im):
        im = im.convert("L")  # greyscale that became RGB on the way (LA, say)
    if space != im.mode:
        raise _Unusable(f"a {space} profile on {im.mode} pixels")
    if space == "L":
        return im.point(_grey_curve(icc_profile))
    try:
        return _transform(icc_profile, space).apply(im)
    except (ImageCms.PyCMSError, ValueError, OSError) as exc:
        raise _Unusable(str(exc) or type(exc).__name__) from None


def _is_grey(im: Image.Image) -> bool:
    r, g, b = im.split()
    return r.tobytes() == g.tobytes() == b.tobytes()


@functools.lru_cache(maxsize=_CACHED_PROFILES)
def _space(icc_profile: bytes) -> str:
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
    except (ImageCms.PyCMSError, ValueError, OSError, TypeError) as exc:
        raise _Unusable(f"unreadable colour profile ({exc})") from None
    space = profile.profile.xcolor_space.strip()
    if space not in _MODES:
        raise _Unusable(f"a colour profile for {space or 'an unknown'} colour space")
    return _MODES[space]


@functools.lru_cache(maxsize=_CACHED_PROFILES)
def _transform(icc_profile: bytes, mode: str) -> ImageCms.ImageCmsTransform:
    """To sRGB. No pixel cache (NOCACHE): LittleCMS writes its one-pixel cache
    while converting, and consumers convert on several threads at once."""
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
    try:
        return ImageCms.ImageCmsTransform(
            profile, _SRGB, mode, "RGB", ImageCms.Intent.PERCEPTUAL, flags=ImageCms.Flags.NOCACHE
        )
    except (ImageCms.PyCMSError, ValueError, OSError) as exc:
        raise _Unusable(f"colour profile cannot convert to sRGB ({exc})") from None


@functools.lru_cache(maxsize=_CACHED_PROFILES)
def _grey_curve(icc_profile: bytes) -> list[int]:
    """A greyscale profile maps each of the 256 levels to a neutral sRGB grey:
    the conversion is a table of 256 entries, applied with Image.point."""
    ramp = Image.frombytes("L", (256, 1), bytes(range(256)))
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
    try:
        grey = ImageCms.ImageCmsTransform(profile, _SRGB, "L", "RGB", ImageCms.Intent.PERCEPTUAL)
        return list(grey.apply(ramp).getchannel("G").tobytes())
    except (ImageCms.PyCMSError, ValueError, OSError) as exc:
        raise _Unusable(f"colour profile cannot convert to sRGB ({exc})") from None
