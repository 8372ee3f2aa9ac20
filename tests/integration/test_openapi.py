"""GET /openapi.json and GET /docs: the document is valid OpenAPI 3, covers
every route of the app with its answers and errors, and /docs renders it from
files the app serves itself. (tests/e2e/test_openapi_conformance.py checks
the running service's answers against it.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from web import auth, openapi

IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    return body


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in openapi.METHODS
    }


def test_the_document_is_valid_openapi_3(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Photo processor"


def test_every_route_and_method_of_the_app_is_documented(app: Flask, document: dict[str, Any]) -> None:
    documented = operations(document)
    routes = {
        (method, re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - IGNORED_METHODS
    }
    assert routes, "the app has routes"
    missing = sorted(routes - set(documented))
    assert missing == [], f"routes without an OpenAPI block in their view's docstring: {missing}"
    assert sorted(set(documented) - routes) == []


def test_every_operation_documents_its_answers_and_errors(app: Flask, document: dict[str, Any]) -> None:
    views = {
        re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule): (
            rule.endpoint,
            app.view_functions[rule.endpoint],
        )
        for rule in app.url_map.iter_rules()
    }
    for (method, path), operation in operations(document).items():
        codes = set(operation["responses"])
        assert any(c.startswith(("2", "3")) for c in codes), (method, path)
        assert operation.get("summary"), (method, path)
        public = auth.is_public(*views[path])
        if public:
            assert operation["security"] == [], (method, path)
        else:
            assert {"401", "503"} <= codes, (method, path)
        if "requestBody" in operation:
            assert "413" in codes, (method, path)
            assert codes & {"400", "415"} or method == "DELETE", (method, path)
        if "{" in path:
            names = set(re.findall(r"{([^}]+)}", path))
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert names == declared, (method, path)
            assert any(c in codes for c in ("404", "400")), (method, path)


def test_bodies_and_answers_name_the_schemas_of_the_code(document: dict[str, Any]) -> None:
    ops = operations(document)
    schemas = document["components"]["schemas"]
    process = ops[("POST", "/photos/process")]
    assert process["responses"]["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ProcessAnswer"
    }
    assert set(schemas["ProcessAnswer"]["required"]) == {"queued", "not_found", "not_eligible"}
    upload = ops[("POST", "/photos")]["requestBody"]["content"]
    assert set(upload) == {"multipart/form-data", "application/json"}
    assert schemas["Photo"]["properties"]["status"]["enum"] == [
        "pending",
        "completed",
        "processing",
        "failed",
    ]
    assert schemas["Photo"]["properties"]["failure_reason"]["nullable"] is True
    assert ops[("GET", "/photos/{photo_uuid}")]["parameters"] == [
        {"name": "photo_uuid", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    ]
    assert set(document["components"]["securitySchemes"]) == {"bearer", "apiKey", "session"}
    assert {} in document["security"]  # no key needed while none is in force


def test_the_document_needs_a_key_while_one_is_in_force(app: Flask, client: FlaskClient) -> None:
    key = app.test_cli_runner().invoke(args=["keys", "create", "docs"]).stdout.strip()
    assert client.get("/openapi.json").status_code == 401
    assert client.get("/docs").status_code == 401
    assert client.get("/openapi.json", headers={"X-API-Key": key}).status_code == 200


def test_docs_render_swagger_ui_from_files_the_app_serves(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/docs/assets/swagger-ui-bundle.js" in sources
    assert "/docs/assets/swagger-ui.css" in sources
    assert "/static/docs.js" in sources
    assert not [s for s in sources if s.startswith(("http:", "https:", "//"))]
    assert "<script>" not in html and "<style" not in html and " style=" not in html
    script = client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert script.mimetype == "text/javascript"
    assert b"SwaggerUIBundle" in script.data
    assert client.get("/docs/assets/swagger-ui.css").mimetype == "text/css"
    # Only the two files the page uses; not the package's index.html with its inline script.
    assert client.get("/docs/assets/index.html").status_code == 404
    assert client.get("/docs/assets/..%2F__init__.py").status_code == 404
