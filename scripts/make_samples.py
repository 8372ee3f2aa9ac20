"""Generate the sample photos in samples/ (committed; rerun only to change them).

They are synthetic but photo-like (sky gradient, hills, sun, sensor noise) so that
JPEG behaves as it does on real photos, and small enough to keep in git.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

OUT = Path(__file__).resolve().parent.parent / "samples"


def scene(width: int, height: int, seed: int) -> Image.Image:
    rng = random.Random(seed)
    sky_top = (rng.randint(20, 80), rng.randint(80, 140), rng.randint(170, 230))
    sky_bottom = (rng.randint(200, 250), rng.randint(170, 220), rng.randint(140, 200))
    im = Image.linear_gradient("L").resize((width, height))
    im = Image.composite(
        Image.new("RGB", (width, height), sky_bottom), Image.new("RGB", (width, height), sky_top), im
    )
    draw = ImageDraw.Draw(im)
    r = min(width, height) // 10
    cx, cy = rng.randint(r, width - r), rng.randint(r, height // 3)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 236, 170))
    for layer in range(4):
        base = height * (0.45 + 0.13 * layer)
        shade = 40 + 30 * layer
        color = (shade // 2, shade + rng.randint(0, 40), shade // 3)
        points: list[tuple[float, float]] = [(0, height)]
        for x in range(0, width + 40, 40):
            points.append((x, base + rng.uniform(-0.06, 0.06) * height))
        points.append((width, height))
        draw.polygon(points, fill=color)
    im = im.filter(ImageFilter.GaussianBlur(1.2))
    noise = Image.effect_noise((width, height), 18).convert("RGB")
    return Image.blend(im, noise, 0.06)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    scene(1600, 1067, 1).save(OUT / "landscape.jpg", quality=88)
    scene(1067, 1600, 2).save(OUT / "portrait.jpg", quality=88)
    # Stored sideways (1600x1200) with EXIF orientation 6: displayed 1200x1600.
    upright = scene(1200, 1600, 3)
    draw = ImageDraw.Draw(upright)
    draw.rectangle((0, 0, 1199, 120), fill=(200, 30, 30))  # a red band marks the top
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.transpose(Image.Transpose.ROTATE_90).save(OUT / "rotated-exif6.jpg", quality=88, exif=exif)
    png = scene(900, 600, 4).convert("RGBA")
    png.putalpha(Image.linear_gradient("L").rotate(90).resize((900, 600)).point(lambda v: 255 - v // 3))
    png.save(OUT / "sunset.png", optimize=True)
    scene(1024, 1024, 5).save(OUT / "square.jpg", quality=88)
    print(f"wrote samples to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
