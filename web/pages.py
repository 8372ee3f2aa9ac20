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
    """The page for people. It holds no data (its script fetches it, with
    the key), so it is public: it is where a person without a key is asked for one.
    ---
    get:
      tags: [pages]
      summary: The operator page
      responses:
        200:
          description: An HTML page.
          content:
            text/html:
              schema: {type: string}
        503: ServiceUnavailable
    """
    return render_template("index.html", access=auth.access())


@bp.get("/healthz")
@auth.public
def healthz() -> Response:
    """The process is alive and serves requests; touches no backend.
    ---
    get:
      tags: [health]
      summary: The web process lives
      responses:
        200:
          description: Alive.
          content:
            application/json:
              schema: Health
    """
    return jsonify(status="ok")


@bp.get("/readyz")
@auth.public
def readyz() -> tuple[Response, int]:
    """200 when every backend answers, else 503 naming those that do not;
    within the readiness timeout whatever the backends do.
    ---
    get:
      tags: [health]
      summary: Every backend answers
      responses:
        200:
          description: Ready.
          content:
            application/json:
              schema: Readiness
        503:
          description: Not ready; down names the backends that do not answer.
          content:
            application/json:
              schema: Readiness
    """
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
    """The sample photos the stack downloads from itself.
    ---
    get:
      tags: [pages]
      summary: A sample photo
      responses:
        200:
          description: The photo.
          content:
            image/jpeg: {schema: {type: string, format: binary}}
            image/png: {schema: {type: string, format: binary}}
        404: NotFound
    """
    # send_from_directory refuses paths that leave the directory.
    return send_from_directory(SAMPLES_DIR, name, max_age=3600)
