"""schemathesis against the running service (gunicorn and a consumer, on real
Postgres and RabbitMQ): for every operation of GET /openapi.json it generates
requests, valid and invalid, from the document, and checks that none gets a
5xx, that every answer (status, content type, headers, body) is one the
document describes, and that a method a route does not take gets a 405 with
Allow. Open, and with a key in force."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from photos import keys, pipeline
from photos.db import SessionFactory
from tests.e2e.conftest import RunningService
from tests.support import images
from tests.support.photo_host import PhotoHost, serve_bytes
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        # A method a route does not take: 405 with Allow.
        "unsupported_method",
        "missing_required_header",
    )
)


def schemathesis(
    service: RunningService, *args: str, examples: int, cwd: Path
) -> subprocess.CompletedProcess[str]:
    # It keeps a cache of the failures it found in its working directory: the test's own.
    return subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "run", service.url("/openapi.json"),
            "--checks", CHECKS,
            "--max-examples", str(examples),
            "--workers", "1",
            "--request-timeout", "30",
            "--no-color",
            *args,
        ],
        capture_output=True, text=True, timeout=900, check=False, cwd=cwd,
    )  # fmt: skip


def some_photos(service: RunningService, factory: SessionFactory, host: PhotoHost) -> None:
    """A completed and a failed photo, so that the listings, the failures and
    the retry have something to show."""
    good = host.add("good.jpg", serve_bytes(images.jpeg(640, 480)))
    pipeline.add_photos(factory, [good, host.url("missing.jpg")])
    pending = service.url("/photos/pending")
    uuids = [p["uuid"] for p in requests.get(pending, timeout=10).json()]
    assert requests.post(service.url("/photos/process"), json=uuids, timeout=30).status_code == 202
    wait_for(
        lambda: requests.get(service.url("/stats"), timeout=10).json()["counts"]["pending"] == 0,
        60,
        what="both photos to be processed",
    )


def assert_passed(result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert " passed" in output and "failed" not in output.split("SUMMARY")[-1].lower(), output


def test_every_answer_of_the_open_service_matches_the_document(
    running_service: RunningService, session_factory: SessionFactory, photo_host: PhotoHost, tmp_path: Path
) -> None:
    some_photos(running_service, session_factory, photo_host)
    assert_passed(schemathesis(running_service, examples=20, cwd=tmp_path))


def test_every_answer_with_a_key_in_force_matches_the_document(
    running_service: RunningService, session_factory: SessionFactory, photo_host: PhotoHost, tmp_path: Path
) -> None:
    some_photos(running_service, session_factory, photo_host)
    key = keys.create_key(session_factory, "schemathesis")
    keys.create_key(session_factory, "another")
    assert_passed(
        schemathesis(running_service, "--header", f"Authorization: Bearer {key}", examples=10, cwd=tmp_path)
    )
