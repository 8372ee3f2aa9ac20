"""fit-320 as JPEG, WebP and AVIF: bytes, SSIM and encode time, side by side,
and what the ThumbHash placeholder costs.

Every format encodes the same pixels: each corpus photo's fit-320 (imaging's
own path up to the encoder, colours made sRGB), with the options of
``photos.imaging.JPEG``, ``WEBP`` and ``AVIF``. SSIM is scikit-image's
``structural_similarity`` of the decoded file against those pixels (RGB,
data range 255); bytes are summed over the photos; time is CPU time (the AVIF
encoder's threads included), median over interleaved rounds. The goal, from
the issue: at equal or better SSIM than the JPEG, WebP at most 80 % and AVIF
at most 60 % of its bytes.
"""

from __future__ import annotations

import io
import statistics
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

from bench.corpus import Corpus
from bench.report import Report
from bench.timing import cpu_of, median_ms
from photos import colour, imaging, placeholder

BOX = 320
MAX_PIXELS = 100_000_000
FORMATS = {"JPEG": imaging.JPEG, "WebP": imaging.WEBP, "AVIF": imaging.AVIF}
GOALS = {"WebP": 0.80, "AVIF": 0.60}
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def pixels_of(data: bytes) -> Image.Image:
    """What fit-320 hands its encoder (through imaging's private steps, as
    bench/thumbnail.py does)."""
    with imaging._open(data, MAX_PIXELS) as source:
        icc = imaging._icc_profile(source)
        return imaging._flatten(colour.to_srgb(imaging._fit_within_pixels(source, BOX, BOX), icc).image)


def encode(im: Image.Image, fmt: imaging.Format) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt.name, **fmt.options)
    return out.getvalue()


def ssim(reference: Image.Image, data: bytes) -> float:
    with Image.open(io.BytesIO(data)) as decoded:
        shown = np.asarray(decoded.convert("RGB"))
    expected = np.asarray(reference.convert("RGB"))
    # scikit-image's metrics are not annotated.
    score = structural_similarity(expected, shown, channel_axis=2, data_range=255)  # type: ignore[no-untyped-call]
    return float(score)


def run(report: Report, corpus: Corpus, rounds: int) -> None:
    sources = [*corpus.jpeg_12mp, *corpus.png_4mp, *sorted(SAMPLES.glob("*.*"))]
    report.section(
        f"fit-320 as JPEG, WebP and AVIF on {len(sources)} photos "
        "(bench corpus: 12 MP JPEGs, 4 MP PNGs; and samples/)"
    )
    pixels = [pixels_of(path.read_bytes()) for path in sources]
    sizes = {name: [len(encode(im, fmt)) for im in pixels] for name, fmt in FORMATS.items()}
    scores = {
        name: statistics.fmean(ssim(im, encode(im, fmt)) for im in pixels) for name, fmt in FORMATS.items()
    }
    times: dict[str, list[float]] = {name: [] for name in FORMATS}
    for _ in range(max(1, rounds // 3)):
        for im in pixels:
            for name, fmt in FORMATS.items():
                times[name].append(cpu_of(partial(encode, im, fmt)))
    for name, fmt in FORMATS.items():
        options = ", ".join(f"{k}={v!r}" for k, v in fmt.options.items() if v not in (None, b""))
        report.say(
            f"{name} ({options}): {statistics.fmean(sizes[name]) / 1000:.1f} kB a photo on average "
            f"({min(sizes[name]) / 1000:.1f}-{max(sizes[name]) / 1000:.1f}), SSIM {scores[name]:.4f}, "
            f"encode {median_ms(times[name]):.1f} ms CPU a photo"
        )
    jpeg_bytes, jpeg_ssim = sum(sizes["JPEG"]), scores["JPEG"]
    for name, most in GOALS.items():
        report.figure(f"{name}: SSIM - JPEG's SSIM", scores[name] - jpeg_ssim, digits=4)
        report.goal(f"{name}: SSIM at least the JPEG's", scores[name] - jpeg_ssim, "≥", 0.0, kind="")
        report.goal(f"{name} bytes / JPEG bytes", sum(sizes[name]) / jpeg_bytes, "≤", most)

    report.section("ThumbHash placeholder, from the fit-320 pixels in memory")
    hashes = [placeholder.thumbhash(im) for im in pixels]
    report.figure("ThumbHash size, average", statistics.fmean(len(h) for h in hashes), "bytes")
    hash_cpu: list[float] = []
    fit_cpu: list[float] = []
    datas = [path.read_bytes() for path in corpus.jpeg_12mp]
    for _ in range(max(1, rounds // 3)):
        for im in pixels:
            hash_cpu.append(cpu_of(partial(placeholder.thumbhash, im)))
        for data in datas:
            fit_cpu.append(cpu_of(partial(imaging.fit_within, data, BOX, BOX, max_pixels=MAX_PIXELS)))
    report.figure("ThumbHash of a fit-320, CPU per photo", median_ms(hash_cpu), "ms", digits=2)
    report.figure(
        "the same, as a share of a 12 MP JPEG's whole fit-320 (informative)",
        median_ms(hash_cpu) / median_ms(fit_cpu),
        digits=3,
    )
