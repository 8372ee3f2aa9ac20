"""How the web app is served: gunicorn calls :func:`create`, which also turns on
the JSON logs (tests build apps with ``create_app`` and keep pytest's logging)."""

from __future__ import annotations

import sys

from flask import Flask

from photos import logs
from web import auth, create_app


def create() -> Flask:
    logs.configure()
    app = create_app()
    auth.warn_if_open(app)
    return app


def gunicorn_command(bind: str, *, workers: int = 2, threads: int = 4) -> list[str]:
    """The gunicorn command line of ``make run``, the container and the e2e tests."""
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", bind,
        "--workers", str(workers),
        "--threads", str(threads),
        "--graceful-timeout", "10",
        "--access-logfile", "-",
        "--config", "python:gunicorn_conf",
        "web.wsgi:create()",
    ]  # fmt: skip
