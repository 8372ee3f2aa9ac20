"""API keys at the door: every request needs a key while one is in force.

A request presents its key as ``Authorization: Bearer <key>``, as
``X-API-Key: <key>``, or in the cookie ``POST /session`` sets for the page.
Without a valid one it gets 401 JSON with ``WWW-Authenticate: Bearer``. Views
marked :func:`public` need no key: the health checks, and what the page needs
before it has one (its HTML, which holds no data, its script and style, and
``/session`` itself), and the sample photos the consumers download from the
app. With no key in force the service is open and says so.

``flask --app web keys create|list|revoke`` (:mod:`web.cli`) manages the keys.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, g, jsonify, redirect, request
from werkzeug import Response as WerkzeugResponse
from werkzeug.exceptions import BadRequest, Forbidden, UnsupportedMediaType

from photos import keys
from web import resources

log = logging.getLogger("web")
bp = Blueprint("auth", __name__)

COOKIE = "photo_processor_key"
F = TypeVar("F", bound=Callable[..., object])


def public(view: F) -> F:
    """Marks a view that answers without a key even while keys are in force."""
    view.is_public = True  # type: ignore[attr-defined]
    return view


def presented_key() -> str | None:
    """The key the request presents: the Authorization header, else
    X-API-Key, else the page's cookie."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.headers.get("X-API-Key") or request.cookies.get(COOKIE) or None


def access() -> keys.Access:
    """This request's verdict (asked once per request)."""
    if "access" not in g:
        g.access = keys.authenticate(resources.get().session_factory, presented_key())
    result: keys.Access = g.access
    return result


def unauthorized(verdict: keys.Verdict) -> tuple[Response, int, dict[str, str]]:
    if verdict is keys.Verdict.invalid:
        message = "the API key is not valid: it is unknown or was revoked"
        challenge = 'Bearer realm="photo-processor", error="invalid_token"'
    else:
        message = "an API key is required: send Authorization: Bearer <key> or X-API-Key: <key>"
        challenge = 'Bearer realm="photo-processor"'
    return jsonify(error=message), 401, {"WWW-Authenticate": challenge}


def is_public(endpoint: str | None, view: object) -> bool:
    """Whether the view answers without a key (Flask's static files do too)."""
    return endpoint == "static" or bool(getattr(view, "is_public", False))


def _require_key() -> tuple[Response, int, dict[str, str]] | None:
    if is_public(request.endpoint, current_app.view_functions.get(request.endpoint or "")):
        return None
    verdict = access().verdict
    if verdict in (keys.Verdict.open, keys.Verdict.allowed):
        return None
    return unauthorized(verdict)


@bp.post("/session")
@public
def sign_in() -> WerkzeugResponse | tuple[Response, int] | tuple[Response, int, dict[str, str]]:
    """Signs the page in: checks the key and keeps it in an HttpOnly,
    SameSite=Strict cookie.
    ---
    post:
      tags: [keys]
      summary: Sign the page in with an API key
      security: []
      requestBody:
        required: true
        content:
          application/json:
            schema: SessionRequest
          application/x-www-form-urlencoded:
            schema: SessionRequest
      responses:
        200:
          description: Signed in (JSON request); the cookie is set.
          content:
            application/json:
              schema: SessionAnswer
        303:
          description: Signed in (form request); back to the page, the cookie is set.
        400: BadRequest
        401: Unauthorized
        403:
          description: The request came from another site's page.
          content:
            application/json:
              schema: Error
        409:
          description: No key is in force; there is nothing to sign in to.
          content:
            application/json:
              schema: Error
        415: UnsupportedMediaType
        503: ServiceUnavailable
    """
    _same_origin()
    key = _key_field()
    result = keys.authenticate(resources.get().session_factory, key)
    if result.verdict is keys.Verdict.open:
        return jsonify(
            error="no API key is in force: the service is open, there is nothing to sign in to"
        ), 409
    if not result.granted:
        return unauthorized(result.verdict)
    # A script gets JSON; a plain form post goes back to the page.
    response = jsonify(signed_in=True, key=result.key_name) if request.is_json else redirect("/", code=303)
    response.set_cookie(COOKIE, key, httponly=True, samesite="Strict", secure=request.is_secure, path="/")
    log.info("signed in", extra={"key": result.key_name})
    return response


@bp.delete("/session")
@public
def sign_out() -> tuple[str, int, dict[str, str]] | Response:
    """Signs the page out: the cookie is removed.
    ---
    delete:
      tags: [keys]
      summary: Sign the page out
      security: []
      responses:
        204:
          description: Signed out; the cookie is removed.
        403:
          description: The request came from another site's page.
          content:
            application/json:
              schema: Error
    """
    _same_origin()
    response = Response(status=204)
    response.delete_cookie(COOKIE, httponly=True, samesite="Strict", secure=request.is_secure, path="/")
    return response


def _key_field() -> str:
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise BadRequest('send {"key": "<API key>"}')
        value = body.get("key")
    elif request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = request.form.get("key")
    else:
        raise UnsupportedMediaType('send JSON {"key": "<API key>"} or a form with the field "key"')
    if not isinstance(value, str) or not value.strip():
        raise BadRequest('"key" (the API key) is required')
    return value.strip()


def _same_origin() -> None:
    """Refuses a sign-in or sign-out posted by another site's page (a browser
    says where a request comes from in Origin)."""
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise Forbidden("the request came from another site")


def warn_if_open(app: Flask) -> None:
    """Logs, as the service starts, when no key is in force."""
    with app.app_context():
        try:
            in_force = keys.keys_in_force(resources.get().session_factory)
        except Exception as exc:
            log.warning("could not tell whether API keys are in force", extra={"error": str(exc)})
            return
    if not in_force:
        log.warning(
            "no API key is in force: anyone who can reach the service can use it; "
            "create one with `flask --app web keys create NAME`"
        )


def init_app(app: Flask) -> None:
    app.before_request(_require_key)
    app.register_blueprint(bp)
