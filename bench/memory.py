"""Peak memory of a thumbnail of the 24 MP JPEG, as a consumer makes it.

Each figure is the peak RSS of a fresh Python process. A process's peak
includes what it inherited when it was forked (Linux keeps the high-water mark
across exec), so a probe forked from this benchmark, which holds the corpus and
libvips, would start at this benchmark's size. Each probe is therefore started
by a small launcher process that runs it alone and prints
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` once it has exited.

The thumbnail's cost is the peak of a probe that imports ``photos.imaging``,
reads the photo into memory (as a download does) and makes the thumbnail,
minus the peak of a probe that only imports. The probes alternate.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench.corpus import Corpus
from bench.report import Report

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "import photos.imaging"
OURS = (
    "import sys, photos.imaging\n"
    "data = open(sys.argv[1], 'rb').read()\n"
    "photos.imaging.fit_within(data, 320, 320, max_pixels=100_000_000)\n"
)
FULL_DECODE = (
    "import io, sys, photos.imaging\n"
    "from PIL import Image, ImageOps\n"
    "data = open(sys.argv[1], 'rb').read()\n"
    "im = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))\n"
    "im.thumbnail((320, 320), Image.Resampling.LANCZOS, reducing_gap=None)\n"
)


LAUNCHER = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], check=True)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def peak_rss_mb(code: str, *args: str) -> float:
    """Peak resident set size of ``python -c code args``, in MB."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", LAUNCHER, sys.executable, "-c", code, *args],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return int(result.stdout.split()[-1]) / 1024  # kB on Linux


def run(report: Report, corpus: Corpus, rounds: int) -> None:
    report.section("Memory: thumbnail of the 24 MP JPEG (6 MB) in a fresh process")
    photo = str(corpus.jpeg_24mp)
    baseline, ours, full = [], [], []
    for _ in range(max(3, rounds // 5)):
        baseline.append(peak_rss_mb(BASELINE))
        ours.append(peak_rss_mb(OURS, photo))
        full.append(peak_rss_mb(FULL_DECODE, photo))
    base = statistics.median(baseline)
    report.figure("peak RSS, python importing photos.imaging only", base, "MB")
    report.figure("peak RSS, + reading the photo and fit_within", statistics.median(ours), "MB")
    report.figure(
        "peak RSS, + full decode + exif_transpose + LANCZOS instead (informative)",
        statistics.median(full),
        "MB",
    )
    report.goal(
        "thumbnail memory above the import baseline",
        statistics.median(ours) - base,
        "≤",
        60.0,
        kind="",
        unit="MB",
    )
