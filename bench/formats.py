"""PNG and WebP thumbnails: ours (Pillow) against pyvips on the same files.

pyvips ``thumbnail_buffer(data, 320, height=320)`` then ``jpegsave_buffer(Q=85)``
is the reference: libvips streams PNGs and lets libwebp shrink while it decodes,
where Pillow decodes every WebP pixel. The service used it for WebP until its
system library (libvips42) had to go; these figures are what that trade keeps
in view: time (both run in this process, timed by CPU time with libvips' worker
threads included, alternating file by file) and quality (PSNR against a full
decode resized with LANCZOS). pyvips comes with its own libvips
(``pyvips-binary``, a development requirement only), with the operation cache
off, or repeated calls on the same bytes would be answered from it.
"""

from __future__ import annotations

import functools
import io
import statistics
from collections.abc import Sequence
from functools import partial
from types import ModuleType

from PIL import Image

from bench.corpus import Corpus
from bench.report import Report
from bench.thumbnail import psnr
from bench.timing import cpu_of, median_ms
from photos import imaging

BOX = 320
MAX_PIXELS = 100_000_000


@functools.cache
def pyvips() -> ModuleType:
    import pyvips as module  # noqa: PLC0415

    module.cache_set_max(0)
    module.block_untrusted_set(True)  # the loaders the service would have run
    loaded: ModuleType = module
    return loaded


def vips_version() -> str:
    vips = pyvips()
    return f"{vips.version(0)}.{vips.version(1)}.{vips.version(2)} (pyvips {vips.__version__})"


def vips_jpeg(data: bytes) -> bytes:
    made: bytes = pyvips().Image.thumbnail_buffer(data, BOX, height=BOX).jpegsave_buffer(Q=85, strip=True)
    return made


def ours_jpeg(data: bytes) -> bytes:
    return imaging.fit_within(data, BOX, BOX, max_pixels=MAX_PIXELS).data


def run(report: Report, corpus: Corpus, rounds: int) -> None:
    report.section("PNG and WebP thumbnails (→ fits 320×320, JPEG quality 85), ours (Pillow) vs pyvips")
    for name, paths in (
        ("4 MP PNG", corpus.png_4mp),
        ("4 MP WebP", corpus.webp_4mp),
        ("12 MP WebP", corpus.webp_12mp),
    ):
        files = [p.read_bytes() for p in paths]
        ours_cpu, vips_cpu = _compare(files, rounds)
        report.figure(f"{name}: ours, CPU per photo", median_ms(ours_cpu), "ms")
        report.figure(f"{name}: pyvips, CPU per photo", median_ms(vips_cpu), "ms")
        # Each sample of ours over the pyvips sample taken next to it: a busy
        # moment on the machine cancels out of the ratio.
        paired = statistics.median(o / v for o, v in zip(ours_cpu, vips_cpu, strict=True))
        report.figure(f"{name}: ours / pyvips time (median of paired ratios)", paired, "×", digits=2)
        ours_db = statistics.mean(_psnr(ours_jpeg(d), d) for d in files)
        vips_db = statistics.mean(_psnr(vips_jpeg(d), d) for d in files)
        report.figure(f"{name}: pyvips PSNR against a full decode + LANCZOS", vips_db, "dB")
        report.goal(
            f"{name}: ours PSNR, at least pyvips' less 0.5 dB",
            ours_db,
            "≥",
            vips_db - 0.5,
            kind="",
            unit="dB",
        )


def _psnr(thumbnail: bytes, original: bytes) -> float:
    with Image.open(io.BytesIO(thumbnail)) as made, Image.open(io.BytesIO(original)) as im:
        return psnr(made, im.convert("RGB").resize(made.size, Image.Resampling.LANCZOS))


def _compare(files: Sequence[bytes], rounds: int) -> tuple[list[float], list[float]]:
    for data in files:  # warm-up: libvips loads its modules, Pillow its plugins
        ours_jpeg(data)
        vips_jpeg(data)
    ours_cpu: list[float] = []
    vips_cpu: list[float] = []
    for round_ in range(rounds):
        for data in files:
            # ABBA order: whatever the first call leaves behind (caches, freed
            # memory) falls on both sides alike.
            if round_ % 2:
                vips_cpu.append(cpu_of(partial(vips_jpeg, data)))
                ours_cpu.append(cpu_of(partial(ours_jpeg, data)))
            else:
                ours_cpu.append(cpu_of(partial(ours_jpeg, data)))
                vips_cpu.append(cpu_of(partial(vips_jpeg, data)))
    return ours_cpu, vips_cpu
