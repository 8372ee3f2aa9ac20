"""The image-resizer task API: square uploads made into 64×64 and 32×32.

A task is an uploaded photo whose renditions are ``square-64`` and
``square-32``; its id is the photo's uuid. Statuses map from the photo's:

==============  ============
photo status    task status
==============  ============
``pending``     ``WAITING`` (also while waiting for a retry)
``processing``  ``IN_PROGRESS``
``completed``   ``DONE``
``failed``      ``FAILED``, with ``reason``
==============  ============

An id that is not a UUID is answered like an unknown one: 404.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import BadRequest

from photos import uploads
from photos.models import Photo, PhotoStatus
from web import resources
from web.photos import thumbhash_text
from web.uploads import base64_image, json_object, register

bp = Blueprint("tasks", __name__)

TASK_STATUS = {
    PhotoStatus.pending: "WAITING",
    PhotoStatus.processing: "IN_PROGRESS",
    PhotoStatus.completed: "DONE",
    PhotoStatus.failed: "FAILED",
}
SIZES = {"original": uploads.ORIGINAL, "64": "square-64", "32": "square-32"}


def task_record(photo: Photo) -> dict[str, Any]:
    record: dict[str, Any] = {"id": str(photo.uuid), "status": TASK_STATUS[photo.status]}
    if photo.thumbhash is not None:  # done: its placeholder, beside the image-resizer's two fields
        record["thumbhash"] = thumbhash_text(photo.thumbhash)
    if photo.status == PhotoStatus.failed:
        record["reason"] = photo.failure_reason
    return record


def _task_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise uploads.UnknownPhoto(f"no task {raw!r}: task ids are UUIDs") from None


@bp.post("/tasks")
def create() -> tuple[Response, int, dict[str, str]]:
    data = base64_image(json_object())
    photo = register(data, renditions_wanted=uploads.TASK_RENDITIONS, square_only=True, process=True)
    return jsonify(task_record(photo)), 201, {"Location": f"/tasks/{photo.uuid}"}


@bp.get("/tasks/<task_id>")
def show(task_id: str) -> Response:
    return jsonify(task_record(uploads.find_upload(resources.session(), _task_id(task_id))))


@bp.get("/tasks/<task_id>/image")
def image(task_id: str) -> Response:
    given = request.args.getlist("size")
    size = given[0] if len(given) == 1 else ",".join(given)
    if size not in SIZES:
        raise BadRequest(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    photo_uuid = _task_id(task_id)
    stored = uploads.read_image(resources.session(), resources.get().storage, photo_uuid, SIZES[size])
    return jsonify(
        id=str(photo_uuid),
        size=size,
        content_type=stored.content_type,
        data=base64.b64encode(stored.data).decode("ascii"),
    )
