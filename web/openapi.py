"""``GET /openapi.json``, generated from the routes, and ``GET /docs``.

The document is built by apispec from the app's URL map: each route's path
(``<uuid:photo_uuid>`` becomes ``{photo_uuid}``, a parameter of format
``uuid``) and the OpenAPI block of its view's docstring (below a ``---``
line), whose bodies name the marshmallow schemas of :mod:`web.schemas`. The
builder adds what every route shares, so no docstring repeats it: the path
parameters, the key a route needs (401) and the 503 of a backend that does not
answer, the 413 of a body over ``MAX_CONTENT_LENGTH``, and gunicorn's 414 for a
request line over its limit.

To document a route, give its view a docstring like this one::

    @bp.get("/photos/failures")
    def failures() -> Response:
        \"\"\"Failed photos grouped by reason.
        ---
        get:
          tags: [operations]
          summary: Failed photos grouped by reason, most frequent first
          responses:
            200:
              description: The groups.
              content:
                application/json:
                  schema:
                    type: array
                    items: FailureGroup
        \"\"\"

``tests/integration/test_openapi.py`` fails while a route (or one of its
methods) has no such block, and the schemathesis test checks that the running
app answers as documented.

``/docs`` is Swagger UI from the ``swagger-ui-bundle`` package, served by this
app (no CDN) with a start-up script of ours (no inline script, so the page's
Content-Security-Policy holds).
"""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec, BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec_webframeworks.flask import FlaskPlugin
from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, send_from_directory
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]  # no py.typed
from werkzeug.exceptions import NotFound
from werkzeug.routing import Rule

from web import auth, schemas

bp = Blueprint("docs", __name__)

TITLE = "Photo processor"
VERSION = "1.0.0"
OPENAPI_VERSION = "3.0.3"
METHODS = ("get", "put", "post", "delete", "patch")
# Swagger UI's files that /docs uses; nothing else of the package is served.
SWAGGER_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js"})
# Views that serve files, documented here rather than in a docstring: Flask's
# own static view has none, and this module's is one like it.
FILE_VIEWS = {
    "static": ("pages", "The page's script and style files."),
    "docs.asset": ("docs", "Swagger UI's files for /docs."),
}

# The sections of the document, in this order (a route's tag is its blueprint's name).
TAGS = {
    "photos": "Photos by URL: list, queue, and the files they produce.",
    "uploads": "Photos uploaded as bytes.",
    "tasks": "The image-resizer task API: square images made into 64×64 and 32×32.",
    "query": "A synchronous question to a consumer over RabbitMQ.",
    "operations": "The operator's view: failures, bulk retry, figures, metrics.",
    "keys": "Signing the page in and out with an API key.",
    "health": "Liveness and readiness; open even while keys are in force.",
    "docs": "This document and its rendering.",
    "pages": "The page for people and the files it uses.",
}
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": auth.COOKIE,
        "description": "the page's cookie, set by POST /session",
    },
}
# Any one of the keys; {} because with no key in force none is needed.
_NONE: list[str] = []
SECURITY: list[dict[str, list[str]]] = [{name: _NONE} for name in SECURITY_SCHEMES] + [{}]


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": "Error"}}}


ERROR_RESPONSES = {
    "BadRequest": _error("The request is malformed; the error says how."),
    "Unauthorized": {
        **_error("An API key is in force and the request presented none, or one unknown or revoked."),
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    },
    "NotFound": _error("There is nothing at this address."),
    "PayloadTooLarge": _error("The body is larger than MAX_CONTENT_LENGTH, or the image than its limit."),
    "UnsupportedMediaType": _error("The body's content type is not one this operation takes."),
    "ServiceUnavailable": _error(
        "Postgres, RabbitMQ or storage does not answer; nothing was done, try again."
    ),
    # gunicorn's own answer, before the app sees the request: HTML, not JSON.
    "URITooLong": {
        "description": "The request line is longer than gunicorn's limit (4094 bytes).",
        "content": {"text/html": {"schema": {"type": "string"}}},
    },
}
FILE_OPERATION: dict[str, Any] = {
    "responses": {
        "200": {
            "description": "The file.",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        },
        "404": "NotFound",
    }
}
_CONVERTERS = {"UUIDConverter": {"type": "string", "format": "uuid"}, "IntegerConverter": {"type": "integer"}}
_RULE_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


class RoutePlugin(BasePlugin):
    """What every documented operation shares, added to what its docstring says."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        rule: Rule = kwargs["rule"]
        public = auth.is_public(rule.endpoint, kwargs["view"])
        for method, operation in (operations or {}).items():
            operation.setdefault("operationId", f"{rule.endpoint}.{method}")
            operation.setdefault("tags", [rule.endpoint.split(".")[0]])
            declared = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"}
            operation.setdefault("parameters", []).extend(
                {"name": name, "in": "path", "required": True, "schema": _path_schema(rule, name)}
                for name in _RULE_ARGUMENT.findall(rule.rule)
                if name not in declared
            )
            responses = operation.setdefault("responses", {})
            responses.setdefault(414, "URITooLong")
            if public:
                operation.setdefault("security", [])
            else:
                responses.setdefault(401, "Unauthorized")
                responses.setdefault(503, "ServiceUnavailable")
            if "requestBody" in operation:
                responses.setdefault(413, "PayloadTooLarge")


def _path_schema(rule: Rule, name: str) -> dict[str, Any]:
    converter = type(rule._converters[name]).__name__
    return dict(_CONVERTERS.get(converter, {"type": "string"}))


def build(app: Flask) -> dict[str, Any]:
    """The app's OpenAPI document, from its URL map and its views' docstrings."""
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[FlaskPlugin(), RoutePlugin(), MarshmallowPlugin()],
        info={
            "description": "Photos in by URL or upload, renditions out; the operator's endpoints. "
            "While an API key is in force every operation except the health checks and the page "
            "needs one (401 without it)."
        },
        security=SECURITY,
    )
    for tag, description in TAGS.items():
        spec.tag({"name": tag, "description": description})
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    # In the order they are defined, nested shapes before those that hold them.
    for name, cls in vars(schemas).items():
        if isinstance(cls, type) and cls.__module__ == schemas.__name__ and name.endswith("Schema"):
            spec.components.schema(name.removesuffix("Schema"), schema=cls)
    for name, response in ERROR_RESPONSES.items():
        spec.components.response(name, response)
    seen: set[str] = set()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint in seen:
            continue
        seen.add(rule.endpoint)
        view = app.view_functions[rule.endpoint]
        operations: dict[str, Any] = {}
        if rule.endpoint in FILE_VIEWS:
            tag, summary = FILE_VIEWS[rule.endpoint]
            operations = {"get": {**FILE_OPERATION, "tags": [tag], "summary": summary}}
        spec.path(view=view, app=app, rule=rule, operations=operations)
    return spec.to_dict()


def document() -> dict[str, Any]:
    """This app's document, built once (the routes do not change while it runs)."""
    built: dict[str, Any] | None = current_app.extensions.get("openapi")
    if built is None:
        built = current_app.extensions["openapi"] = build(current_app)
    return built


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """This document.
    ---
    get:
      tags: [docs]
      summary: The OpenAPI document of this API
      responses:
        200:
          description: An OpenAPI 3 document.
          content:
            application/json:
              schema:
                type: object
    """
    return jsonify(document())


@bp.get("/docs")
def docs() -> str:
    """Swagger UI on this document.
    ---
    get:
      tags: [docs]
      summary: The API documentation, rendered by Swagger UI
      responses:
        200:
          description: An HTML page.
          content:
            text/html:
              schema:
                type: string
    """
    return render_template("docs.html")


@bp.get("/docs/assets/<name>")
def asset(name: str) -> Response:
    if name not in SWAGGER_FILES:
        raise NotFound()
    return send_from_directory(swagger_ui_path, name, max_age=86400)
