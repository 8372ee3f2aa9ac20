"""Named recipes: what a rendition is, and how to make it from a photo's bytes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from photos import imaging
from photos.imaging import Encoded


@dataclass(frozen=True)
class Recipe:
    name: str
    make: Callable[[bytes, int], Encoded]  # (photo bytes, max pixels) -> image


def fit_within(width: int, height: int, fmt: imaging.Format = imaging.JPEG) -> Recipe:
    """``fit-320`` (JPEG), ``fit-320-webp``, ``fit-320-avif``, ``fit-800x600``..."""
    name = f"fit-{width}" if width == height else f"fit-{width}x{height}"
    if fmt != imaging.JPEG:
        name = f"{name}-{fmt.extension}"
    return Recipe(
        name, lambda data, max_pixels: imaging.fit_within(data, width, height, max_pixels=max_pixels, fmt=fmt)
    )


def square(size: int) -> Recipe:
    return Recipe(
        f"square-{size}", lambda data, max_pixels: imaging.square(data, size, max_pixels=max_pixels)
    )


MIRROR = Recipe("mirror", lambda data, max_pixels: imaging.mirror(data, max_pixels=max_pixels))
DEFAULT = fit_within(320, 320)

# The same thumbnail lighter to send, for browsers that read these formats (the
# page offers them through <picture>, the JPEG staying the fallback).
FIT_WEBP = fit_within(320, 320, imaging.WEBP)
FIT_AVIF = fit_within(320, 320, imaging.AVIF)

RECIPES: dict[str, Recipe] = {
    r.name: r for r in (DEFAULT, FIT_WEBP, FIT_AVIF, square(64), square(32), MIRROR)
}


def by_name(name: str) -> Recipe:
    """Raises KeyError for a name that is not a recipe."""
    return RECIPES[name]
