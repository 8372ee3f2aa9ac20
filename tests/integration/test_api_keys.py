"""API keys against real Postgres: the keys commands, and the door every
request passes while a key is in force (header, X-API-Key, the page's cookie)."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from photos import keys, pipeline
from photos.config import Settings
from photos.db import SessionFactory, unit_of_work
from photos.models import ApiKey
from tests.support import images
from tests.support.services import ROOT, closed_port, service_env
from web import auth, create_app

KEY_SHAPE = re.compile(r"^pp_[A-Za-z0-9_-]{43}$")


def run_keys(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["keys", *args])


def create(app: Flask, name: str) -> str:
    result = run_keys(app, "create", name)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def stored(factory: SessionFactory, name: str) -> ApiKey:
    with unit_of_work(factory) as session:
        row = session.scalars(select(ApiKey).where(ApiKey.name == name)).one()
        session.expunge(row)
        return row


# --- the commands ---------------------------------------------------------------


def test_create_prints_a_new_key_once_and_stores_only_its_hash(
    app: Flask, session_factory: SessionFactory
) -> None:
    result = run_keys(app, "create", "ci")
    assert result.exit_code == 0
    key = result.stdout.strip()
    assert KEY_SHAPE.match(key), key  # 32 random bytes in URL-safe base64
    assert "shown this once" in result.stderr
    row = stored(session_factory, "ci")
    assert row.key_sha256 == hashlib.sha256(key.encode()).digest()
    assert row.revoked_at is None and row.last_used_at is None
    with unit_of_work(session_factory) as session:
        every_column = [str(v) for r in session.execute(select(ApiKey.__table__)).all() for v in r]
    assert not any(key in value or key[3:] in value for value in every_column)
    assert create(app, "other") != key


def test_a_taken_name_exits_non_zero_and_keeps_the_first_key(
    app: Flask, session_factory: SessionFactory
) -> None:
    create(app, "ci")
    first = stored(session_factory, "ci").key_sha256
    result = run_keys(app, "create", "ci")
    assert result.exit_code == 1
    assert "a key named 'ci' exists already" in result.output
    assert result.stdout == ""  # no key printed
    assert stored(session_factory, "ci").key_sha256 == first


@pytest.mark.parametrize("name", ["", "   ", "tab\there", "x" * 101])
def test_an_unusable_name_exits_non_zero(app: Flask, session_factory: SessionFactory, name: str) -> None:
    result = run_keys(app, "create", name)
    assert result.exit_code == 1
    assert "a key's name is 1 to 100 printable characters" in result.output
    assert keys.list_keys(session_factory) == []


def test_revoking_an_unknown_name_exits_non_zero(app: Flask) -> None:
    result = run_keys(app, "revoke", "nobody")
    assert result.exit_code == 1
    assert "no key named 'nobody'" in result.output


def test_list_shows_every_key_with_its_dates(app: Flask, client: FlaskClient) -> None:
    assert "No keys" in run_keys(app, "list").output
    ci = create(app, "ci")
    create(app, "laptop")
    assert client.get("/photos", headers={"X-API-Key": ci}).status_code == 200
    assert run_keys(app, "revoke", "laptop").exit_code == 0
    result = run_keys(app, "list")
    assert result.exit_code == 0
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["NAME", "CREATED", "LAST", "USED", "REVOKED"]
    ci_line, laptop_line = lines
    today = datetime.now(UTC).date().isoformat()
    assert ci_line.startswith("ci ") and ci_line.count(today) == 2 and ci_line.endswith("-")
    assert laptop_line.startswith("laptop ") and " - " in laptop_line and laptop_line.count(today) == 2


def test_revoking_twice_keeps_the_first_date(app: Flask, session_factory: SessionFactory) -> None:
    create(app, "ci")
    assert run_keys(app, "revoke", "ci").exit_code == 0
    first = stored(session_factory, "ci").revoked_at
    again = run_keys(app, "revoke", "ci")
    assert again.exit_code == 0
    assert stored(session_factory, "ci").revoked_at == first
    assert first is not None and first.isoformat(timespec="seconds") in again.output


@pytest.mark.parametrize("args", [["create", "ci"], ["list"], ["revoke", "ci"]])
def test_a_database_that_does_not_answer_is_a_message_and_exit_1(settings: Settings, args: list[str]) -> None:
    app = create_app(settings.with_(pg_uri=f"postgresql://postgres@127.0.0.1:{closed_port()}/photos"))
    try:
        result = run_keys(app, *args)
    finally:
        app.extensions["photos"].close()
    assert result.exit_code == 1
    assert "Error: the database does not answer" in result.output
    assert "Traceback" not in result.output


def test_the_real_flask_command_creates_and_revokes(
    settings: Settings, session_factory: SessionFactory
) -> None:
    env = service_env(settings)

    def flask(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "web", "keys", *args],
            check=False, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    created = flask("create", "from-the-shell")
    assert created.returncode == 0, created.stderr
    assert KEY_SHAPE.match(created.stdout.strip())
    taken = flask("create", "from-the-shell")
    assert taken.returncode != 0
    assert "exists already" in taken.stderr
    assert flask("revoke", "from-the-shell").returncode == 0
    unknown = flask("revoke", "nobody")
    assert unknown.returncode != 0
    assert "no key named 'nobody'" in unknown.stderr


# --- the door -------------------------------------------------------------------


def test_with_no_key_in_force_the_service_is_open_and_the_page_says_so(client: FlaskClient) -> None:
    assert client.get("/photos").status_code == 200
    page = client.get("/")
    assert page.status_code == 200
    assert b"anyone who can reach this page can use the service" in page.data
    assert b'id="key-form"' not in page.data


def test_a_revoked_last_key_opens_the_service_again(app: Flask, client: FlaskClient) -> None:
    create(app, "ci")
    assert client.get("/photos").status_code == 401
    run_keys(app, "revoke", "ci")
    assert client.get("/photos").status_code == 200


PROTECTED = [
    ("GET", "/photos"),
    ("GET", "/photos/pending"),
    ("POST", "/photos/process"),
    ("POST", "/photos"),
    ("GET", f"/photos/{uuid.UUID(int=1)}"),
    ("POST", "/tasks"),
    ("GET", f"/tasks/{uuid.UUID(int=1)}"),
    ("POST", "/query"),
    ("GET", "/thumbs/ab/anything.jpg"),
    ("GET", "/stats"),
    ("GET", "/photos/failures"),
    ("POST", "/photos/retry"),
    ("GET", "/no/such/route"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_without_a_key_every_request_gets_401_json(
    app: Flask, client: FlaskClient, method: str, path: str
) -> None:
    create(app, "ci")
    response = client.open(path, method=method, json=["not even looked at"])
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="photo-processor"'
    assert response.get_json() == {
        "error": "an API key is required: send Authorization: Bearer <key> or X-API-Key: <key>"
    }


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer pp_not-a-key"},
        {"X-API-Key": "pp_not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz", "X-API-Key": "wrong"},
    ],
)
def test_a_wrong_key_gets_401_invalid_token(app: Flask, client: FlaskClient, headers: dict[str, str]) -> None:
    create(app, "ci")
    response = client.get("/photos", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="photo-processor", error="invalid_token"'
    assert response.get_json() == {"error": "the API key is not valid: it is unknown or was revoked"}


@pytest.mark.parametrize("form", ["bearer", "BEARER", "x-api-key"])
def test_a_key_in_either_header_is_accepted(app: Flask, client: FlaskClient, form: str) -> None:
    key = create(app, "ci")
    headers = {"X-API-Key": key} if form == "x-api-key" else {"Authorization": f"{form} {key}"}
    assert client.get("/photos", headers=headers).status_code == 200


def test_a_revoke_takes_effect_on_the_next_request(app: Flask, client: FlaskClient) -> None:
    ci = create(app, "ci")
    create(app, "other")  # keys stay in force after the revoke
    headers = {"Authorization": f"Bearer {ci}"}
    assert client.get("/photos", headers=headers).status_code == 200
    assert run_keys(app, "revoke", "ci").exit_code == 0
    response = client.get("/photos", headers=headers)
    assert response.status_code == 401
    assert "invalid_token" in response.headers["WWW-Authenticate"]


def test_the_first_key_closes_an_open_service_at_the_next_request(app: Flask, client: FlaskClient) -> None:
    assert client.get("/photos/pending").status_code == 200
    create(app, "ci")
    assert client.get("/photos/pending").status_code == 401


def test_health_page_and_assets_stay_open(app: Flask, client: FlaskClient) -> None:
    create(app, "ci")
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    page = client.get("/")
    assert page.status_code == 200
    assert b'id="key-form"' in page.data
    assert b"anyone who can reach" not in page.data
    assert b'id="photos"' not in page.data  # no data, no script that would fetch it


def test_thumbs_need_a_key(app: Flask, client: FlaskClient, settings: Settings) -> None:
    (settings.thumbs_dir / "ab").mkdir()
    (settings.thumbs_dir / "ab" / "t.jpg").write_bytes(images.jpeg(10, 10))
    assert client.get("/thumbs/ab/t.jpg").status_code == 200
    key = create(app, "ci")
    assert client.get("/thumbs/ab/t.jpg").status_code == 401
    assert client.get("/thumbs/ab/t.jpg", headers={"X-API-Key": key}).status_code == 200


def test_last_used_is_written_at_most_once_a_minute(
    app: Flask, client: FlaskClient, session_factory: SessionFactory
) -> None:
    key = create(app, "ci")
    client.get("/photos", headers={"X-API-Key": key})
    first = stored(session_factory, "ci").last_used_at
    assert first is not None
    client.get("/photos", headers={"X-API-Key": key})
    assert stored(session_factory, "ci").last_used_at == first
    with unit_of_work(session_factory) as session:
        session.execute(
            update(ApiKey).where(ApiKey.name == "ci").values(last_used_at=first - timedelta(minutes=2))
        )
    client.get("/photos", headers={"X-API-Key": key})
    later = stored(session_factory, "ci").last_used_at
    assert later is not None and later >= first


# --- the page's session ---------------------------------------------------------


def test_signing_in_sets_an_httponly_strict_cookie_that_opens_the_data(
    app: Flask, client: FlaskClient, session_factory: SessionFactory
) -> None:
    key = create(app, "ci")
    pipeline.add_photos(session_factory, ["http://127.0.0.1/a.jpg"])
    response = client.post("/session", json={"key": key})
    assert response.status_code == 200
    assert response.get_json() == {"signed_in": True, "key": "ci"}
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{auth.COOKIE}={key};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    # The test client keeps the cookie, as a browser does.
    listed = client.get("/photos")
    assert listed.status_code == 200
    assert len(listed.get_json()["photos"]) == 1
    page = client.get("/")
    assert b'id="signed-in"' in page.data and b"ci" in page.data

    signed_out = client.delete("/session")
    assert signed_out.status_code == 204
    assert f"{auth.COOKIE}=;" in signed_out.headers["Set-Cookie"]
    assert client.get("/photos").status_code == 401


def test_a_form_sign_in_goes_back_to_the_page(app: Flask, client: FlaskClient) -> None:
    key = create(app, "ci")
    response = client.post("/session", data={"key": key})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert client.get("/photos").status_code == 200


def test_a_wrong_key_does_not_sign_in(app: Flask, client: FlaskClient) -> None:
    create(app, "ci")
    response = client.post("/session", json={"key": "pp_wrong"})
    assert response.status_code == 401
    assert "Set-Cookie" not in response.headers
    assert client.get("/photos").status_code == 401


def test_a_revoked_key_in_the_cookie_stops_working_and_the_page_asks_again(
    app: Flask, client: FlaskClient
) -> None:
    key = create(app, "ci")
    create(app, "other")
    assert client.post("/session", json={"key": key}).status_code == 200
    run_keys(app, "revoke", "ci")
    assert client.get("/photos").status_code == 401
    page = client.get("/")
    assert b'id="key-form"' in page.data and b"not valid any more" in page.data


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"json": {}}, 400, '"key" (the API key) is required'),
        ({"json": ["a"]}, 400, 'send {"key": "<API key>"}'),
        ({"data": {"key": "  "}}, 400, '"key" (the API key) is required'),
        ({"data": b"key", "content_type": "text/plain"}, 415, "send JSON"),
    ],
)
def test_a_malformed_sign_in_gets_a_clear_error(
    app: Flask, client: FlaskClient, kwargs: dict[str, object], status: int, error: str
) -> None:
    create(app, "ci")
    response = client.post("/session", **kwargs)
    assert response.status_code == status
    assert error in response.get_json()["error"]


def test_signing_in_to_an_open_service_is_a_conflict(client: FlaskClient) -> None:
    response = client.post("/session", json={"key": "pp_anything"})
    assert response.status_code == 409
    assert "the service is open" in response.get_json()["error"]


def test_another_site_cannot_sign_the_browser_in_or_out(app: Flask, client: FlaskClient) -> None:
    key = create(app, "ci")
    response = client.post("/session", data={"key": key}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert "Set-Cookie" not in response.headers
    assert client.delete("/session", headers={"Origin": "https://evil.example"}).status_code == 403
    same = client.post("/session", data={"key": key}, headers={"Origin": "http://localhost"})
    assert same.status_code == 303


# --- headers --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/photos", "/healthz", "/no/such/route", "/static/app.js"])
def test_every_answer_has_the_security_headers(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["frame-ancestors"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert "unsafe-inline" not in csp and "http" not in csp
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    ("name", "content_type", "attachment"),
    [
        ("photo.jpg", "image/jpeg", False),
        ("photo.PNG", "image/png", False),
        ("photo.webp", "image/webp", False),
        ("photo.avif", "image/avif", False),
        ("evil.html", "application/octet-stream", True),
        ("evil.svg", "application/octet-stream", True),
        ("evil.js", "application/octet-stream", True),
        ("no-extension", "application/octet-stream", True),
    ],
)
def test_stored_files_are_never_served_as_something_a_browser_runs(
    client: FlaskClient, settings: Settings, name: str, content_type: str, attachment: bool
) -> None:
    (settings.thumbs_dir / "ab").mkdir()
    (settings.thumbs_dir / "ab" / name).write_bytes(b"<script>alert(1)</script>")
    response = client.get(f"/thumbs/ab/{name}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert ("attachment" in response.headers.get("Content-Disposition", "")) is attachment
    csp = response.headers["Content-Security-Policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp


def test_an_uploaded_photo_is_served_as_its_image_type(client: FlaskClient) -> None:
    upload = client.post("/photos", data={"file": (io.BytesIO(images.png(20, 10)), "x.svg")})
    assert upload.status_code == 201, upload.get_json()
    served = client.get(upload.get_json()["original"])
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "image/png"
