"""Colour management: what it costs per photo, and how true the colours are.

Cost: :func:`photos.colour.to_srgb` on a 320×320 result (the size fit-320
converts, after the shrink), per kind of profile, CPU time, median of
interleaved samples; the transforms are built once per profile and cached, as
in a consumer. Truth: photos of the corpus's kind tagged with each profile,
through ``fit_within``, against a colour-managed reading of the original
(LittleCMS directly), as the issue measures: the largest per-channel mean
absolute difference (0-255).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from PIL import Image

from bench import corpus
from bench.report import Report
from bench.timing import cpu_of, median_ms
from photos import colour, imaging
from tests.support import colours, icc

MAX_PIXELS = 100_000_000
SIDE = 320


def run(report: Report, rounds: int) -> None:
    report.section("Colour management: sRGB conversion after the shrink, per 320×320 result")
    scene = corpus.photo(SIDE, SIDE, seed=7)
    cases: dict[str, tuple[Image.Image, bytes | None]] = {
        "untagged RGB (nothing to do)": (scene, None),
        "Adobe RGB (1998) RGB": (scene, icc.ADOBE_RGB),
        "greyscale profile": (scene.convert("L"), icc.GREY),
        "CMYK with a profile (lut, 9-point grid)": (scene.convert("CMYK"), colours.CMYK),
        "broken profile (read as sRGB)": (scene, b"not a profile" * 30),
    }
    actions: dict[str, Callable[[], object]] = {
        name: partial(colour.to_srgb, im, profile) for name, (im, profile) in cases.items()
    }
    samples: dict[str, list[float]] = {name: [] for name in actions}
    for action in actions.values():
        action()  # builds and caches the transform, as a consumer's first photo does
    for _ in range(rounds * 4):
        for name, action in actions.items():
            samples[name].append(cpu_of(action))
    for name, taken in samples.items():
        if name.startswith("Adobe"):
            report.goal(f"{name}: CPU per photo", median_ms(taken), "≤", 1.0, kind="", unit="ms")
        else:
            report.figure(f"{name}: CPU per photo", median_ms(taken), "ms", digits=2)

    # The colour tests' scene (saturated patches, soft edges): the corpus's
    # photos carry so much sensor noise that JPEG alone puts their untagged
    # thumbnails above 3.
    big = colours.scene(1600, 1200)
    tagged = {
        "Adobe RGB JPEG": colours.jpeg(big, icc.ADOBE_RGB),
        "Adobe RGB PNG": colours.png(big, icc.ADOBE_RGB),
        "Adobe RGB 16-bit PNG": colours.png16(big, icc.ADOBE_RGB),
        "greyscale-profile JPEG": colours.jpeg(big.convert("L"), icc.GREY),
        "CMYK JPEG with a profile": colours.jpeg(big.convert("CMYK"), colours.CMYK),
        "CMYK JPEG without a profile": colours.jpeg(big.convert("CMYK"), None),
        "sRGB-tagged JPEG": colours.jpeg(big, colours.SRGB.tobytes()),
        "untagged JPEG": colours.jpeg(big, None),
    }
    worst = 0.0
    for name, data in tagged.items():
        made = imaging.fit_within(data, SIDE, SIDE, max_pixels=MAX_PIXELS)
        difference = colours.mean_difference(
            colours.browser_reading(made.data), colours.managed_reading(data)
        )
        report.figure(
            f"fit-320 of a 1600×1200 {name}: mean abs difference, worst channel", difference, digits=2
        )
        worst = max(worst, difference)
    report.goal("worst mean abs difference over these photos", worst, "≤", 3.0, kind="", unit="/255")
