"""Security headers on every answer.

The page runs only its own script and style files (no inline script or style,
no other origin), no page may frame ours, and no URL of ours leaks in a
Referer. Files that came from outside (uploads, renditions, query mirrors)
are served only as the image types a browser displays and never runs; see
:func:`image_type`.
"""

from __future__ import annotations

from flask import Flask, Response

from photos.storage import CONTENT_TYPES

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        # data: for the favicon and the icons in Swagger UI's stylesheet.
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
# For stored files: nothing in them may run, even opened on their own.
FILE_CONTENT_SECURITY_POLICY = "default-src 'none'; sandbox; frame-ancestors 'none'"
# Extensions of the files under the thumbs directory a browser may be given,
# with the only type each is served as; anything else goes out as a download.
IMAGE_TYPES = {
    ext: kind for ext, kind in CONTENT_TYPES.items() if ext in {"jpg", "jpeg", "png", "webp", "avif", "gif"}
}
DOWNLOAD_TYPE = "application/octet-stream"


def image_type(name: str) -> str | None:
    """The content type a stored file is served as, or None for a file to be
    served only as a download (never text/html, image/svg+xml or anything
    else a browser would run)."""
    _, dot, extension = name.rpartition(".")
    return IMAGE_TYPES.get(extension.lower()) if dot else None


def _add_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    return response


def init_app(app: Flask) -> None:
    app.after_request(_add_headers)
