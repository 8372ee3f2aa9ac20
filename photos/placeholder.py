"""ThumbHash placeholders: some 20-25 bytes that a page turns into a blurred
picture of the photo while its thumbnail is on its way.

Computed from a rendition's pixels while they are in memory (the image about
to be encoded), never from a second decode of the photo. The encoder is
fast-thumbhash: Python bindings to the ``thumbhash`` Rust crate, the
reference implementation's author's own port, the same algorithm the page's
decoder (the ``thumbhash`` npm package, vendored in web/static/vendor) reads.
"""

from __future__ import annotations

from typing import cast

import fast_thumbhash
from PIL import Image

# ThumbHash encodes images of at most 100×100: beyond, it is slower for nothing.
MAX_SIDE = 100


def thumbhash(im: Image.Image) -> bytes:
    """The ThumbHash of ``im`` (any mode Pillow converts to RGBA; sRGB)."""
    small = im.copy()
    # BOX: every source pixel counts once, all a 100-pixel average needs.
    small.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BOX)
    rgba = small.convert("RGBA")
    encoded = cast(list[int], fast_thumbhash.rgba_to_thumb_hash(rgba.width, rgba.height, rgba.tobytes()))
    return bytes(encoded)
