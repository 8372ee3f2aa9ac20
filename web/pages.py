"""The page for people at ``/``, and the sample photos the stack serves itself."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, render_template, send_from_directory

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"

bp = Blueprint("pages", __name__)


@bp.get("/")
def home() -> str:
    return render_template("index.html")


@bp.get("/samples/<path:name>")
def sample(name: str) -> Response:
    # send_from_directory refuses paths that leave the directory.
    return send_from_directory(SAMPLES_DIR, name, max_age=3600)
