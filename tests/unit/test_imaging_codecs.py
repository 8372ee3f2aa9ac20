"""A Pillow without one of its codecs (built from source without the library,
or whose library does not load): photos needing it fail with a reason naming
what is missing, never as a crash, the others are made as usual, and
``missing_codecs`` (what ``/readyz`` shows) lists it.

Each case runs in a child interpreter from which tests/support/pillow_without
takes the codec away before Pillow loads it; Pillow's wheel, installed by
``make install``, has them all, which the last test checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from photos import imaging
from tests.support import images
from tests.support.services import ROOT

CHILD = """
import json, sys
from tests.support.pillow_without import take_away
take_away(sys.argv[1].split(","))
from photos import imaging
result = {"missing": imaging.missing_codecs()}
try:
    made = imaging.fit_within(open(sys.argv[2], "rb").read(), 320, 320, max_pixels=10**8)
    result["made"] = [made.width, made.height]
except imaging.CodecUnavailable as exc:
    result["unavailable"] = exc.reason
try:
    imaging.check_codecs()
except imaging.CodecUnavailable as exc:
    result["check"] = exc.reason
print(json.dumps(result))
"""

WEBP = images.encode(images.photo(640, 480), "WEBP", quality=80)
JPEG = images.jpeg(640, 480)
PNG = images.png(640, 480)

NO_WEBP = "cannot read WebP images: Pillow's libwebp module did not load"
NO_JPEG_DECODER = "cannot read JPEG images: Pillow was built without libjpeg (no jpeg decoder)"
NO_JPEG_ENCODER = "cannot write JPEG images: Pillow was built without libjpeg (no jpeg encoder)"
NO_PNG_DECODER = "cannot read PNG images: Pillow was built without zlib (no zip decoder)"


def run_without(features: str, data: bytes, tmp_path: Path) -> dict[str, object]:
    source = tmp_path / "photo"
    source.write_bytes(data)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, features, str(source)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize(
    ("features", "data", "reason"),
    [
        ("webp", WEBP, NO_WEBP),
        ("jpeg_decoder", JPEG, NO_JPEG_DECODER),
        ("jpeg_encoder", PNG, NO_JPEG_ENCODER),
        ("zip_decoder", PNG, NO_PNG_DECODER),
    ],
    ids=["webp-module", "jpeg-decoder", "jpeg-encoder", "zlib-decoder"],
)
def test_a_photo_needing_a_missing_codec_fails_with_a_reason_naming_it(
    features: str, data: bytes, reason: str, tmp_path: Path
) -> None:
    result = run_without(features, data, tmp_path)
    assert "made" not in result
    unavailable = str(result["unavailable"])
    assert unavailable.startswith(reason)
    missing = result["missing"]
    assert isinstance(missing, list) and len(missing) == 1
    assert str(missing[0]).startswith(reason)
    assert result["check"] == missing[0]


@pytest.mark.parametrize(
    ("features", "data"),
    [("webp", JPEG), ("webp", PNG), ("jpeg_decoder", PNG), ("zip_decoder", JPEG)],
    ids=["jpeg-without-webp", "png-without-webp", "png-without-jpeg-decoder", "jpeg-without-zlib-decoder"],
)
def test_photos_that_do_not_need_the_missing_codec_are_made(
    features: str, data: bytes, tmp_path: Path
) -> None:
    result = run_without(features, data, tmp_path)
    assert result["made"] == [320, 240]
    assert result["missing"]  # and /readyz would still say what is missing


def test_the_webp_module_that_does_not_load_is_named_with_its_import_error(tmp_path: Path) -> None:
    result = run_without("webp", WEBP, tmp_path)
    assert "PIL._webp" in str(result["unavailable"])


def test_the_installed_pillow_has_every_codec() -> None:
    assert imaging.missing_codecs() == []
    imaging.check_codecs()
    made = imaging.fit_within(WEBP, 320, 320, max_pixels=10**8)
    assert (made.width, made.height) == (320, 240)
