"""JPEG thumbnails against the decoder's floor, EXIF-rotated against upright,
and the quality given up for the speed.

- floor: ``djpeg -scale 1/8`` CPU time on the same bytes (getrusage of the
  children), minus djpeg's own start-up (measured on an 8×8 JPEG in the same
  rounds), as nothing that reads the whole file can do less;
- ours: ``photos.imaging.fit_within(data, 320, 320)`` from bytes in memory to a
  JPEG at quality 85, CPU time of this process;
- PSNR of our pixels (before the JPEG encoder) against a reference made from a
  full decode, ``exif_transpose`` and a LANCZOS resize to the same size.

Samples are interleaved photo by photo, so a neighbour's load falls on all of
them alike; the floor goal is the median of per-photo ratios, the others
compare medians.
"""

from __future__ import annotations

import io
import math
import statistics
from functools import partial

from PIL import Image, ImageChops, ImageOps, ImageStat

from bench.corpus import Corpus
from bench.report import Report
from bench.timing import cpu_of, cpu_of_command, median_ms
from photos import imaging

BOX = 320
MAX_PIXELS = 100_000_000
DJPEG = ["djpeg", "-scale", "1/8"]


def psnr(a: Image.Image, b: Image.Image) -> float:
    stat = ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB")))
    mse = sum(rms * rms for rms in stat.rms) / len(stat.rms)
    return math.inf if mse == 0 else 10 * math.log10(255 * 255 / mse)


def reference(data: bytes, size: tuple[int, int]) -> Image.Image:
    """What most answers do: decode everything, rotate, LANCZOS."""
    with Image.open(io.BytesIO(data)) as im:
        upright = ImageOps.exif_transpose(im)
        return upright.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def ours(data: bytes) -> imaging.Encoded:
    return imaging.fit_within(data, BOX, BOX, max_pixels=MAX_PIXELS)


def our_pixels(data: bytes) -> Image.Image:
    # The step before the encoder, through imaging's own code path (private on
    # purpose: only the benchmark needs the pixels rather than the JPEG).
    with imaging._open(data, MAX_PIXELS) as source:
        return imaging._fit_within_pixels(source, BOX, BOX)


def pillow_decode_eighth(data: bytes) -> None:
    """Pillow's decode alone at 1/8 scale: the floor with our own libjpeg-turbo."""
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (im.width // 8, im.height // 8))
        im.load()


def run(report: Report, corpus: Corpus, rounds: int) -> None:
    report.section("JPEG thumbnails (12 MP, ~3 MB, quality 92 → fits 320×320, quality 85)")
    upright = [p.read_bytes() for p in corpus.jpeg_12mp]
    rotated = [p.read_bytes() for p in corpus.rotated_6 + corpus.rotated_8]
    tiny_buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (128, 128, 128)).save(tiny_buffer, "JPEG")
    tiny = tiny_buffer.getvalue()

    djpeg: list[float] = []
    startup: list[float] = []
    floor: list[float] = []
    pillow_floor: list[float] = []
    upright_cpu: list[float] = []
    rotated_cpu: list[float] = []
    for data in upright + rotated:  # warm-up: page cache, code paths
        ours(data)
        cpu_of_command(DJPEG, data)
    for _ in range(rounds):
        for i, data in enumerate(upright):
            full = cpu_of_command(DJPEG, data)
            empty = cpu_of_command(DJPEG, tiny)
            djpeg.append(full)
            startup.append(empty)
            floor.append(full - empty)
            pillow_floor.append(cpu_of(partial(pillow_decode_eighth, data)))
            upright_cpu.append(cpu_of(partial(ours, data)))
            for turned in (rotated[i], rotated[i + len(upright)]):
                rotated_cpu.append(cpu_of(partial(ours, turned)))

    report.figure("djpeg -scale 1/8, CPU per photo (libjpeg-turbo of Debian)", median_ms(djpeg), "ms")
    report.figure("djpeg start-up alone (8×8 JPEG), subtracted", median_ms(startup), "ms")
    report.figure("decode floor: djpeg 1/8 minus start-up", median_ms(floor), "ms")
    report.figure("Pillow decode alone at 1/8 (Pillow's libjpeg-turbo)", median_ms(pillow_floor), "ms")
    report.figure("ours, upright: fit_within → JPEG q85, CPU per photo", median_ms(upright_cpu), "ms")
    report.figure("ours, EXIF orientation 6 and 8, CPU per photo", median_ms(rotated_cpu), "ms")
    report.figure(
        "thumbnail time / decode floor, ratio of the medians (informative)",
        median_ms(upright_cpu) / median_ms(floor),
        digits=2,
    )
    # Each photo's two samples are taken back to back, so the median of their
    # ratios follows the machine's speed from moment to moment (a shared
    # virtual machine's changes by 10-30 % within a run).
    report.goal(
        "thumbnail time / decode floor (djpeg), median of paired ratios",
        statistics.median(o / f for o, f in zip(upright_cpu, floor, strict=True)),
        "≤",
        1.10,
    )
    report.figure(
        "thumbnail time / Pillow's own 1/8 decode (informative)",
        median_ms(upright_cpu) / median_ms(pillow_floor),
        digits=2,
    )
    report.goal("EXIF-rotated / upright time", median_ms(rotated_cpu) / median_ms(upright_cpu), "≤", 1.05)

    worst = math.inf
    delivered: list[float] = []
    encoded_reference: list[float] = []
    for data in upright + rotated:
        pixels = our_pixels(data)
        ref = reference(data, pixels.size)
        worst = min(worst, psnr(pixels, ref))
        with Image.open(io.BytesIO(ours(data).data)) as out:
            assert out.size == pixels.size
            delivered.append(psnr(out, ref))
        buffer = io.BytesIO()
        ref.save(buffer, "JPEG", quality=imaging.JPEG_QUALITY)
        with Image.open(buffer) as ref_out:
            encoded_reference.append(psnr(ref_out, ref))
    report.goal(
        "PSNR, our pixels vs full decode + LANCZOS (worst photo)", worst, "≥", 40.0, kind="", unit="dB"
    )
    report.figure(
        "PSNR after the q85 encoder: ours vs reference pixels (mean)",
        sum(delivered) / len(delivered),
        "dB",
    )
    report.figure(
        "PSNR after the q85 encoder: the reference itself (mean)",
        sum(encoded_reference) / len(encoded_reference),
        "dB",
    )
