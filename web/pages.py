"""The page for people at ``/``, the health and readiness checks, and the sample photos the
stack serves itself."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, Response, jsonify, render_template, send_from_directory

from web import auth, resources

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"

bp = Blueprint("pages", __name__)
log = logging.getLogger("web")


@bp.get("/")
@auth.public
def home() -> str:
    # The page holds no data (its script fetches it, with the key), so it is
    # public: it is where a person without a key is asked for one.
    return render_template("index.html", access=auth.access())


@bp.get("/healthz")
@auth.public
def healthz() -> Response:
    """The process is alive and serves requests; touches no backend."""
    return jsonify(status="ok")


@bp.get("/readyz")
@auth.public
def readyz() -> tuple[Response, int]:
    """200 when every backend answers, else 503 naming those that do not;
    within the readiness timeout whatever the backends do."""
    report = resources.get().readiness.run()
    checks = {name: error or "ok" for name, error in report.results.items()}
    if report.ready:
        return jsonify(status="ok", checks=checks), 200
    down = report.down
    log.warning("not ready", extra={"down": down, "checks": checks})
    return jsonify(
        status="unavailable", error=f"not ready: {', '.join(down)} down", down=down, checks=checks
    ), 503


@bp.get("/samples/<path:name>")
@auth.public
def sample(name: str) -> Response:
    # send_from_directory refuses paths that leave the directory.
    return send_from_directory(SAMPLES_DIR, name, max_age=3600)
