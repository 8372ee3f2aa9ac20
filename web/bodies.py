"""Reading a request's JSON body, the same way for every endpoint that takes one:
415 when it is not sent as JSON, 400 when it does not parse or has the wrong shape."""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType


def json_body() -> object:
    """The parsed JSON body, whatever its shape."""
    if not request.is_json:
        raise UnsupportedMediaType("send a JSON body with Content-Type: application/json")
    payload = request.get_json(silent=True)
    if payload is None:
        raise BadRequest("the body is not valid JSON")
    return payload


def json_object() -> dict[str, Any]:
    """The JSON body, which must be an object."""
    payload = json_body()
    if not isinstance(payload, dict):
        raise BadRequest("the body must be a JSON object")
    return payload
