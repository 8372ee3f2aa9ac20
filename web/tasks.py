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
from web.bodies import json_object
from web.photos import thumbhash_text
from web.uploads import base64_image, register

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
    """A task: a square image made into 64×64 and 32×32.
    ---
    post:
      tags: [tasks]
      summary: Create a resize task from a square image
      requestBody:
        required: true
        content:
          application/json:
            schema: TaskRequest
      responses:
        201:
          description: The task, queued; Location names it.
          headers:
            Location: {schema: {type: string}, description: /tasks/<id>}
          content:
            application/json:
              schema: Task
        400: BadRequest
        415: UnsupportedMediaType
    """
    data = base64_image(json_object())
    photo = register(data, renditions_wanted=uploads.TASK_RENDITIONS, square_only=True, process=True)
    return jsonify(task_record(photo)), 201, {"Location": f"/tasks/{photo.uuid}"}


@bp.get("/tasks/<task_id>")
def show(task_id: str) -> Response:
    """A task's status.
    ---
    get:
      tags: [tasks]
      summary: A task's status
      responses:
        200:
          description: The task.
          content:
            application/json:
              schema: Task
        404: NotFound
    """
    return jsonify(task_record(uploads.find_upload(resources.session(), _task_id(task_id))))


@bp.get("/tasks/<task_id>/image")
def image(task_id: str) -> Response:
    """A task's image at one size, base64.
    ---
    get:
      tags: [tasks]
      summary: A task's image (original, 64 or 32), base64
      parameters:
        - name: size
          in: query
          required: true
          schema: {type: string, enum: [original, "64", "32"]}
      responses:
        200:
          description: The image.
          content:
            application/json:
              schema: TaskImage
        400: BadRequest
        404:
          description: No such task, or its image of that size is not made yet.
          content:
            application/json:
              schema: Error
    """
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
