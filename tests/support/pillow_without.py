"""Run a module as if Pillow had been built without some of its codecs:
``python -m tests.support.pillow_without webp,jpeg_decoder consumer [args...]``.

What is taken away is Pillow's, never ours, and it is taken away the way a
build without the library lacks it: ``webp`` makes ``PIL._webp`` fail to
import (as it does when libwebp is missing or does not load); any other name
(``jpeg_decoder``, ``jpeg_encoder``, ``zip_decoder``, ...) is removed from
Pillow's compiled core, where a build without that library has no such entry.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Iterable

WEBP = "webp"


def take_away(features: Iterable[str]) -> None:
    """Before anything of Pillow's WebP support is imported."""
    for feature in features:
        if feature == WEBP:
            # None in sys.modules makes ``from . import _webp`` raise ImportError.
            sys.modules["PIL._webp"] = None  # type: ignore[assignment]
        else:
            from PIL import _imaging  # noqa: PLC0415

            delattr(_imaging, feature)


def main() -> None:
    features, module, *args = sys.argv[1:]
    take_away(features.split(","))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
