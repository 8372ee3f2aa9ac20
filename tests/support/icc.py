"""Colour profiles for the tests: the two copied from Debian's icc-profiles-free
(tests/data/icc), and a CMYK one built here, since neither that package nor
Pillow's ImageCms.createProfile (sRGB, Lab, XYZ only) has one.

The CMYK profile is an ICC v2 input profile whose A2B0 table (lut16, Lab PCS)
describes a made-up press: inks that spread (mid-tones darker than their
numbers say) and a cyan that also takes some green. Read through it, a CMYK
photo looks clearly different from the naive ``255 - ink`` reading, which is
what makes a test of colour management able to fail.
"""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "icc"
ADOBE_RGB = (DATA / "compatibleWithAdobeRGB1998.icc").read_bytes()
GREY = (DATA / "Gray.icc").read_bytes()

_D50 = (0.9642, 1.0, 0.8249)
# sRGB's primaries adapted to D50 (the matrix of the usual sRGB ICC profiles).
_SRGB_TO_XYZ_D50 = (
    (0.4360747, 0.3850649, 0.1430804),
    (0.2225045, 0.7168786, 0.0606169),
    (0.0139322, 0.0971045, 0.7141733),
)
_GRID = 9


def cmyk_profile() -> bytes:
    header_and_tags = [
        (b"desc", _desc("Test press CMYK (made up)")),
        (b"cprt", _text("No copyright, use freely")),
        (b"wtpt", _xyz(*_D50)),
        (b"A2B0", _lut16()),
    ]
    return _profile(b"scnr", b"CMYK", b"Lab ", header_and_tags)


def _press(c: float, m: float, y: float, k: float) -> tuple[float, float, float]:
    """The made-up press: inks in 0..1 -> linear sRGB."""

    def spread(ink: float) -> float:
        return min(1.0, ink * 1.25)

    r = (1 - spread(c)) * (1 - spread(k))
    g = (1 - spread(m)) * (1 - spread(k)) * (1 - 0.2 * c)
    b = (1 - spread(y)) * (1 - spread(k))
    return r**2.2, g**2.2, b**2.2


def _lab(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    x, y, z = (sum(row[i] * rgb[i] for i in range(3)) for row in _SRGB_TO_XYZ_D50)

    def f(t: float) -> float:
        return t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29

    fx, fy, fz = f(x / _D50[0]), f(y / _D50[1]), f(z / _D50[2])
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def _lut16() -> bytes:
    """mft2: 4 inputs, 3 outputs, a 9-point grid, linear input and output
    curves; Lab in the v2 16-bit encoding (L 0..100 -> 0..0xFF00, a and b
    -128..127.99 -> 0..0xFFFF)."""
    out = b"mft2" + bytes(4) + struct.pack(">BBBB", 4, 3, _GRID, 0)
    identity = (1, 0, 0, 0, 1, 0, 0, 0, 1)
    out += b"".join(struct.pack(">i", v << 16) for v in identity)
    out += struct.pack(">HH", 2, 2)
    out += struct.pack(">HH", 0, 0xFFFF) * 4
    steps = [i / (_GRID - 1) for i in range(_GRID)]
    for c, m, y, k in itertools.product(steps, repeat=4):  # the first input varies slowest
        lightness, a, b = _lab(_press(c, m, y, k))
        out += struct.pack(
            ">HHH",
            round(max(0.0, min(100.0, lightness)) * 0xFF00 / 100),
            round(max(0.0, min(0xFFFF, (a + 128) * 256))),
            round(max(0.0, min(0xFFFF, (b + 128) * 256))),
        )
    out += struct.pack(">HH", 0, 0xFFFF) * 3
    return out


def _desc(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_text)) + ascii_text + bytes(4 + 4 + 2 + 1 + 67)


def _text(text: str) -> bytes:
    return b"text" + bytes(4) + text.encode("ascii") + b"\0"


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + b"".join(struct.pack(">i", round(v * 65536)) for v in (x, y, z))


def _profile(device_class: bytes, space: bytes, pcs: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table, body = struct.pack(">I", len(tags)), b""
    for signature, data in tags:
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data + bytes(-len(data) % 4)
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + bytes(4)  # preferred CMM
        + struct.pack(">I", 0x02100000)  # version 2.1
        + device_class
        + space
        + pcs
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
        + b"acsp"
        + bytes(4 + 4 + 4 + 4 + 8)  # platform, flags, manufacturer, model, attributes
        + struct.pack(">I", 0)  # perceptual
        + _xyz(*_D50)[8:]
        + bytes(4 + 16 + 28)  # creator, profile id, reserved
    )
    assert len(header) == 128
    return header + table + body
