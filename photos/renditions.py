"""Named recipes: what a rendition is, and how to make it from a photo's bytes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from photos import imaging
from photos.imaging import Encoded


@dataclass(frozen=True)
class Recipe:
    name: str
    # (photo bytes, max pixels, with the ThumbHash of its pixels) -> image
    make: Callable[[bytes, int, bool], Encoded]
    # Which recipe's pixels make a photo's placeholder: the lowest rank among
    # those a photo asks for. A fit shows the whole photo at the aspect ratio
    # the page shows it, a square only its middle.
    placeholder_rank: int


def fit_within(width: int, height: int, fmt: imaging.Format = imaging.JPEG) -> Recipe:
    """``fit-320`` (JPEG), ``fit-320-webp``, ``fit-320-avif``, ``fit-800x600``..."""
    name = f"fit-{width}" if width == height else f"fit-{width}x{height}"
    if fmt != imaging.JPEG:
        name = f"{name}-{fmt.extension}"
    return Recipe(
        name,
        lambda data, max_pixels, placeholder: imaging.fit_within(
            data, width, height, max_pixels=max_pixels, fmt=fmt, placeholder=placeholder
        ),
        placeholder_rank=0 if fmt == imaging.JPEG else 1,
    )


def square(size: int) -> Recipe:
    return Recipe(
        f"square-{size}",
        lambda data, max_pixels, placeholder: imaging.square(
            data, size, max_pixels=max_pixels, placeholder=placeholder
        ),
        placeholder_rank=2,
    )


MIRROR = Recipe(
    "mirror",
    lambda data, max_pixels, placeholder: imaging.mirror(
        data, max_pixels=max_pixels, placeholder=placeholder
    ),
    placeholder_rank=3,
)
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


def placeholder_source(recipes: Sequence[Recipe]) -> Recipe | None:
    """The recipe, among a photo's, whose pixels make its ThumbHash (the
    first of the lowest rank); None for no recipes."""
    return min(recipes, key=lambda r: r.placeholder_rank, default=None)
