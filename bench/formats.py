"""PNG and WebP thumbnails: ours against pyvips on the same files.

pyvips ``thumbnail_buffer(data, 320, height=320)`` then ``jpegsave_buffer(Q=85)``
is the reference: libvips streams PNGs and lets libwebp shrink while it decodes.
Both run in this process and are timed by CPU time (libvips' worker threads
included), alternating file by file. libvips' operation cache is turned off, or
repeated calls on the same bytes would be answered from it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from bench.corpus import Corpus
from bench.report import Report
from bench.timing import cpu_of, median_ms
from photos import imaging

BOX = 320
MAX_PIXELS = 100_000_000


def run(report: Report, corpus: Corpus, rounds: int) -> None:
    # The service's own libvips set-up: operation cache off, untrusted loaders blocked.
    pyvips = imaging._pyvips()
    report.section("PNG and WebP thumbnails (4 MP → fits 320×320, JPEG quality 85), ours vs pyvips")

    def vips(data: bytes) -> None:
        pyvips.Image.thumbnail_buffer(data, BOX, height=BOX).jpegsave_buffer(Q=85)

    def ours(data: bytes) -> None:
        imaging.fit_within(data, BOX, BOX, max_pixels=MAX_PIXELS)

    for name, paths in (("PNG", corpus.png_4mp), ("WebP", corpus.webp_4mp)):
        ours_cpu, vips_cpu = _compare(paths, ours, vips, rounds)
        report.figure(f"{name}: ours, CPU per photo", median_ms(ours_cpu), "ms")
        report.figure(f"{name}: pyvips, CPU per photo", median_ms(vips_cpu), "ms")
        # Each sample of ours over the pyvips sample taken next to it: a busy
        # moment on the machine cancels out of the ratio.
        paired = statistics.median(o / v for o, v in zip(ours_cpu, vips_cpu, strict=True))
        report.goal(f"{name}: ours / pyvips time (median of paired ratios)", paired, "≤", 1.0)


def _compare(
    paths: Sequence[Path], ours: Callable[[bytes], None], vips: Callable[[bytes], None], rounds: int
) -> tuple[list[float], list[float]]:
    files = [p.read_bytes() for p in paths]
    for data in files:  # warm-up: libvips loads its modules, Pillow its plugins
        ours(data)
        vips(data)
    ours_cpu: list[float] = []
    vips_cpu: list[float] = []
    for round_ in range(rounds):
        for data in files:
            # ABBA order: whatever the first call leaves behind (caches, freed
            # memory) falls on both sides alike.
            if round_ % 2:
                vips_cpu.append(cpu_of(partial(vips, data)))
                ours_cpu.append(cpu_of(partial(ours, data)))
            else:
                ours_cpu.append(cpu_of(partial(ours, data)))
                vips_cpu.append(cpu_of(partial(vips, data)))
    return ours_cpu, vips_cpu
