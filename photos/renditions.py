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


def fit_within(width: int, height: int) -> Recipe:
    return Recipe(
        f"fit-{width}" if width == height else f"fit-{width}x{height}",
        lambda data, max_pixels: imaging.fit_within(data, width, height, max_pixels=max_pixels),
    )


def square(size: int) -> Recipe:
    return Recipe(
        f"square-{size}", lambda data, max_pixels: imaging.square(data, size, max_pixels=max_pixels)
    )


MIRROR = Recipe("mirror", lambda data, max_pixels: imaging.mirror(data, max_pixels=max_pixels))
DEFAULT = fit_within(320, 320)

RECIPES: dict[str, Recipe] = {r.name: r for r in (DEFAULT, square(64), square(32), MIRROR)}


def by_name(name: str) -> Recipe:
    """Raises KeyError for a name that is not a recipe."""
    return RECIPES[name]
