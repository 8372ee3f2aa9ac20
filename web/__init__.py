"""The Flask app: ``create_app(settings)`` builds it; nothing happens at import."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from photos.config import Settings
from photos.db import is_unavailable
from photos.imaging import ImageError, ImageTooLarge
from photos.messages import BrokerUnavailable
from photos.storage import StorageUnavailable
from photos.uploads import UploadError
from web import (
    auth,
    cli,
    headers,
    metrics,
    openapi,
    operations,
    pages,
    photos,
    query,
    resources,
    tasks,
    uploads,
)

log = logging.getLogger("web")


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    app.json.sort_keys = False  # type: ignore[attr-defined]
    resources.init_app(app, settings)
    # First, so that requests refused for want of a key are counted too.
    metrics.init_app(app, resources.of(app), settings.metrics_multiprocess_dir)
    auth.init_app(app)
    headers.init_app(app)
    app.register_blueprint(photos.bp)
    app.register_blueprint(operations.bp)
    app.register_blueprint(query.bp)
    app.register_blueprint(uploads.bp)
    app.register_blueprint(tasks.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(openapi.bp)
    _register_errors(app)
    cli.init_app(app)

    return app


def _register_errors(app: Flask) -> None:
    app.register_error_handler(UploadError, uploads.upload_error)

    @app.errorhandler(ImageError)
    def image_refused(exc: ImageError) -> tuple[Response, int]:
        """An image refused by the one acceptance rule, whichever door it came in by."""
        return jsonify(error=exc.reason), 413 if isinstance(exc, ImageTooLarge) else 415

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int, list[tuple[str, str]]]:
        code = exc.code or 500
        details = getattr(exc, "details", {})
        # The exception's own headers (a 405's Allow) stay; its HTML content type does not.
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return jsonify(error=exc.description or exc.name, **details), code, headers

    @app.errorhandler(BrokerUnavailable)
    def broker_down(exc: BrokerUnavailable) -> tuple[Response, int]:
        log.warning("broker unavailable", extra={"error": str(exc)})
        return jsonify(error="the message broker is unavailable; nothing was queued, try again"), 503

    @app.errorhandler(StorageUnavailable)
    def storage_down(exc: StorageUnavailable) -> tuple[Response, int]:
        log.warning("storage unavailable", extra={"error": exc.reason})
        return jsonify(error=f"storage is unavailable, try again: {exc.reason}"), 503

    @app.errorhandler(SQLAlchemyError)
    def database_error(exc: SQLAlchemyError) -> tuple[Response, int]:
        if is_unavailable(exc):
            log.warning("database unavailable", extra={"error": str(exc).splitlines()[0]})
            return jsonify(error="the database is unavailable, try again"), 503
        log.exception("database error")
        return jsonify(error="internal error"), 500

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception) -> tuple[Response, int]:
        # A bug or a broken disk: logged with its traceback, answered as JSON
        # like every other error, never as Flask's HTML page.
        log.exception("unexpected error", extra={"error": repr(exc)})
        return jsonify(error="internal error"), 500
