"""The benchmark corpus, generated into ``bench/.corpus/`` (gitignored).

Real-looking photos rather than flat test cards, because JPEG decode time grows
with the entropy of the file: smooth colour gradients for sky and light, soft
low-frequency texture, hard-edged shapes, and sensor-like noise, tuned so that a
12-megapixel JPEG at quality 92 weighs about 3 MB as a camera's does.

Files are made once and reused; a change to :data:`VERSION` (or to the recipe
below) makes them again.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

VERSION = 1
ROOT = Path(__file__).resolve().parent / ".corpus"
JPEG_QUALITY = 92
ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class Corpus:
    jpeg_12mp: list[Path]
    rotated_6: list[Path]
    rotated_8: list[Path]
    jpeg_24mp: Path
    png_4mp: list[Path]
    webp_4mp: list[Path]
    webp_12mp: list[Path]


def photo(width: int, height: int, seed: int) -> Image.Image:
    """An RGB picture with the statistics of a photo: gradients, texture, edges, noise."""
    rng = random.Random(seed)
    # Smooth light: a different gradient per channel, at angles of their own.
    channels = []
    for _ in range(3):
        gradient = Image.linear_gradient("L").rotate(rng.uniform(0, 360), resample=Image.Resampling.BICUBIC)
        gradient = gradient.crop((48, 48, 208, 208)).resize((width, height), Image.Resampling.BICUBIC)
        lo, hi = rng.randint(0, 90), rng.randint(150, 255)
        channels.append(gradient.point(lambda v, lo=lo, hi=hi: lo + v * (hi - lo) // 255))
    im = Image.merge("RGB", channels)
    # Soft texture (foliage, clouds, fabric): coarse noise blown up smoothly.
    for scale in (64, 16):
        coarse = Image.effect_noise((max(2, width // scale), max(2, height // scale)), 60)
        coarse = coarse.resize((width, height), Image.Resampling.BICUBIC).convert("RGB")
        im = Image.blend(im, coarse, 0.18)
    # Objects with edges: some sharp, some out of focus.
    shapes = Image.new("RGB", (width, height))
    mask = Image.new("L", (width, height), 0)
    draw, mask_draw = ImageDraw.Draw(shapes), ImageDraw.Draw(mask)
    for _ in range(40):
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randint(width // 40, width // 4), rng.randint(height // 40, height // 4)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        box = (x, y, x + w, y + h)
        kind = rng.randrange(3)
        if kind == 0:
            draw.ellipse(box, fill=colour)
            mask_draw.ellipse(box, fill=rng.randint(120, 255))
        elif kind == 1:
            draw.rectangle(box, fill=colour)
            mask_draw.rectangle(box, fill=rng.randint(120, 255))
        else:
            points = [(rng.randint(x, x + w), rng.randint(y, y + h)) for _ in range(5)]
            draw.polygon(points, fill=colour)
            mask_draw.polygon(points, fill=rng.randint(120, 255))
    # A little blur on the mask gives some edges a depth-of-field falloff.
    im = Image.composite(shapes, im, mask.filter(ImageFilter.GaussianBlur(1.5)))
    # Thin lines (branches, wires, text-like detail).
    draw = ImageDraw.Draw(im)
    for _ in range(120):
        x, y = rng.randrange(width), rng.randrange(height)
        end = (x + rng.randint(-width // 8, width // 8), y + rng.randint(-height // 8, height // 8))
        draw.line((x, y, *end), fill=(rng.randrange(256),) * 3, width=rng.randint(1, 4))
    # Sensor noise, per channel.
    noise = Image.merge("RGB", [Image.effect_noise((width, height), 46) for _ in range(3)])
    return Image.blend(im, noise, 0.12)


def rotated_for(im: Image.Image, orientation: int) -> Image.Image:
    """The pixels a camera stores for a scene ``im`` shot with that orientation tag."""
    return im.transpose({6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}[orientation])


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **params)
    return out.getvalue()


def _jpeg(im: Image.Image, orientation: int | None = None) -> bytes:
    params: dict[str, object] = {"quality": JPEG_QUALITY}
    if orientation is not None:
        exif = Image.Exif()
        exif[ORIENTATION_TAG] = orientation
        params["exif"] = exif.tobytes()
    return encode(im, "JPEG", **params)


def _make(path: Path, make: Callable[[], bytes]) -> Path:
    if not path.exists():
        data = make()
        partial = path.with_suffix(path.suffix + ".partial")
        partial.write_bytes(data)
        partial.replace(path)
    return path


def ensure(photos: int = 3, *, log: bool = True) -> Corpus:
    """Make whatever is missing; returns the paths."""
    directory = ROOT / f"v{VERSION}"
    directory.mkdir(parents=True, exist_ok=True)
    jpeg_12, rot_6, rot_8, png_4, webp_4, webp_12 = [], [], [], [], [], []
    for seed in range(photos):
        names = [f"12mp-{seed}.jpg", f"12mp-{seed}-exif6.jpg", f"12mp-{seed}-exif8.jpg", f"12mp-{seed}.webp"]
        if not all((directory / n).exists() for n in names):
            if log:
                print(f"corpus: making 12 MP photo {seed} ...", flush=True)
            im = photo(4000, 3000, seed)
            _make(directory / names[0], partial(_jpeg, im))
            _make(directory / names[1], partial(_jpeg, rotated_for(im, 6), 6))
            _make(directory / names[2], partial(_jpeg, rotated_for(im, 8), 8))
            _make(directory / names[3], partial(encode, im, "WEBP", quality=90))
        jpeg_12.append(directory / names[0])
        rot_6.append(directory / names[1])
        rot_8.append(directory / names[2])
        webp_12.append(directory / names[3])
        names = [f"4mp-{seed}.png", f"4mp-{seed}.webp"]
        if not all((directory / n).exists() for n in names):
            if log:
                print(f"corpus: making 4 MP photo {seed} ...", flush=True)
            im = photo(2448, 1632, 100 + seed)
            _make(directory / names[0], partial(encode, im, "PNG"))
            _make(directory / names[1], partial(encode, im, "WEBP", quality=90))
        png_4.append(directory / names[0])
        webp_4.append(directory / names[1])
    big = directory / "24mp.jpg"
    if not big.exists() and log:
        print("corpus: making 24 MP photo ...", flush=True)
    _make(big, lambda: _jpeg(photo(6000, 4000, 1000)))
    return Corpus(jpeg_12, rot_6, rot_8, big, png_4, webp_4, webp_12)


if __name__ == "__main__":
    corpus = ensure()
    for field_name, value in vars(corpus).items():
        for path in value if isinstance(value, list) else [value]:
            with Image.open(path) as im:
                print(
                    f"{field_name:10} {path.name:22} {im.size[0]}x{im.size[1]} {path.stat().st_size / 1e6:.2f} MB"
                )
