"""The page for people at ``/``, the health check, and the sample photos the
stack serves itself."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, Response, jsonify, render_template, send_from_directory
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from web import resources

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"

bp = Blueprint("pages", __name__)
log = logging.getLogger("web")


@bp.get("/")
def home() -> str:
    return render_template("index.html")


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 when the database answers a query, 503 otherwise: what Docker's and
    the tests' readiness checks poll."""
    try:
        resources.session().execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("health check failed", extra={"error": str(exc).splitlines()[0]})
        return jsonify(status="unavailable", error="the database does not answer"), 503
    return jsonify(status="ok"), 200


@bp.get("/samples/<path:name>")
def sample(name: str) -> Response:
    # send_from_directory refuses paths that leave the directory.
    return send_from_directory(SAMPLES_DIR, name, max_age=3600)
