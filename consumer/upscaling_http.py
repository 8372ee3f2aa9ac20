"""The outside services of the upscaling processor, over HTTP: the upscaler
(``POST {access_token, new_height, new_width, base64_image}`` →
``{"base64_image"}``) and the image service (the PNG posted as the body).

Each call either returns or raises :class:`~photos.errors.TransientError`
(timeouts, connection errors, HTTP 408, 429 and 5xx: worth retrying) or
:class:`~photos.errors.PermanentError` (any other answer, or an answer that is
not what the contract says). :mod:`photos.upscaling` decides what to do.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import requests

from photos.errors import PermanentError, TransientError
from photos.upscaling import InvalidMessage, decode_png

RETRYABLE_STATUS = frozenset({408, 429})


def _post(
    session: requests.Session,
    what: str,
    url: str,
    timeout: tuple[float, float],
    *,
    json_body: dict[str, object] | None = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    try:
        response = session.post(url, timeout=timeout, json=json_body, data=data, headers=headers)
    except requests.Timeout:
        raise TransientError(f"the {what} did not answer within {timeout[1]:g} seconds") from None
    except requests.ConnectionError as exc:
        raise TransientError(f"cannot reach the {what}: {_cause(exc)}") from None
    except requests.RequestException as exc:
        raise TransientError(f"the {what} request failed: {type(exc).__name__}") from None
    code = response.status_code
    if code == 200:
        return response
    detail = f"the {what} answered HTTP {code}"
    if code >= 500 or code in RETRYABLE_STATUS:
        raise TransientError(detail)
    raise PermanentError(f"{detail}: {response.text[:200]}" if response.text else detail)


def _cause(exc: requests.ConnectionError) -> str:
    text = str(exc.args[0] if exc.args else exc)
    for known in ("Connection refused", "Name or service not known", "Connection reset", "timed out"):
        if known in text:
            return known.lower()
    return type(exc).__name__


@dataclass
class HttpUpscaler:
    url: str
    token: str
    connect_timeout: float
    read_timeout: float
    max_pixels: int
    session: requests.Session

    def upscale(self, png: bytes, width: int, height: int) -> bytes:
        response = _post(
            self.session,
            "upscaler",
            self.url,
            (self.connect_timeout, self.read_timeout),
            json_body={
                "access_token": self.token,
                "new_height": height,
                "new_width": width,
                "base64_image": base64.b64encode(png).decode(),
            },
        )
        try:
            answer = response.json()
        except ValueError:
            raise PermanentError("the upscaler's answer is not JSON") from None
        if not isinstance(answer, dict) or "base64_image" not in answer:
            raise PermanentError("the upscaler's answer has no base64_image")
        try:
            return decode_png(
                answer["base64_image"], "the upscaler's base64_image", max_pixels=self.max_pixels
            )
        except InvalidMessage as exc:
            raise PermanentError(exc.reason) from None


@dataclass
class HttpImageService:
    url: str
    connect_timeout: float
    read_timeout: float
    session: requests.Session

    def post_image(self, png: bytes, key: str) -> None:
        _post(
            self.session,
            "image service",
            self.url,
            (self.connect_timeout, self.read_timeout),
            data=png,
            # The same request redelivered carries the same key, for a service
            # that deduplicates; ours cannot know whether a lost answer was a 200.
            headers={"Content-Type": "image/png", "Idempotency-Key": key},
        )
