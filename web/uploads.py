"""POST /photos: register a photo from its bytes (and, on request, queue it).

Also what the upload endpoints share: reading the request's JSON object and
the base64 image in it, the upload limits from the settings, registering the
upload with this app's resources, and the status code of each upload error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from photos import renditions, uploads
from photos.models import Photo
from web import bodies, resources
from web.photos import photo_record

bp = Blueprint("uploads", __name__)

ERROR_STATUS: dict[type[uploads.UploadError], int] = {
    uploads.InvalidUpload: 400,
    uploads.UploadTooLarge: 413,
    uploads.UnknownPhoto: 404,
    uploads.ImageNotReady: 404,
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def upload_error(exc: uploads.UploadError) -> tuple[Response, int]:
    status = next((code for cls, code in ERROR_STATUS.items() if isinstance(exc, cls)), 400)
    return jsonify(error=exc.reason), status


def limits() -> uploads.Limits:
    settings = resources.get().settings
    return uploads.Limits(max_bytes=settings.upload_max_bytes, max_pixels=settings.max_image_pixels)


def base64_image(body: dict[str, Any]) -> bytes:
    """The image in the JSON body's ``data`` field."""
    if "data" not in body:
        raise BadRequest('"data" (the image in base64) is required')
    return uploads.decode_base64(body["data"], limits())


def register(
    data: bytes, *, renditions_wanted: Sequence[str], process: bool, square_only: bool = False
) -> Photo:
    """:func:`photos.uploads.register_upload` with this app's resources and limits."""
    services = resources.get()
    return uploads.register_upload(
        services.session_factory,
        services.storage,
        services.publisher(),
        data,
        limits=limits(),
        renditions_wanted=renditions_wanted,
        square_only=square_only,
        process=process,
    )


def upload_record(photo: Photo) -> dict[str, Any]:
    return {
        **photo_record(photo),
        "source": photo.source,
        "renditions": list(photo.renditions),
        "original": f"/thumbs/{photo.original_path}",
    }


def _flag(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise BadRequest(f"{name} must be true or false (1 or 0)")


def _names(value: object) -> list[str]:
    """A JSON array of recipe names, or one comma-separated string."""
    if isinstance(value, str):
        return [n.strip() for n in value.split(",") if n.strip()]
    if isinstance(value, list) and all(isinstance(n, str) for n in value):
        return value
    raise BadRequest("renditions must be an array of rendition names or a comma-separated string")


@bp.post("/photos")
def upload() -> tuple[Response, int, dict[str, str]]:
    """Registers a photo from its bytes: multipart field ``file``, or JSON
    ``{"data": "<base64>"}``; options ``process`` (query string, form field or
    JSON) and ``renditions``.
    ---
    post:
      tags: [uploads]
      summary: Upload a photo (and queue it on request)
      parameters:
        - name: process
          in: query
          description: queue it at once (true/false, 1/0, yes/no, on/off)
          schema: {type: string}
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema: UploadForm
          application/json:
            schema: UploadJSON
      responses:
        201:
          description: Registered (and queued when asked); Location names the photo.
          headers:
            Location: {schema: {type: string}, description: /photos/<uuid>}
          content:
            application/json:
              schema: Upload
        400: BadRequest
        415: UnsupportedMediaType
    """
    options: dict[str, Any]
    if request.mimetype == "multipart/form-data":
        file = request.files.get("file")
        if file is None:
            raise BadRequest('send the image in the multipart field "file"')
        # Bounded by MAX_CONTENT_LENGTH already; one byte more tells "too large".
        data = file.stream.read(limits().max_bytes + 1)
        options = {k: request.form.get(k) for k in ("process", "renditions") if k in request.form}
    elif request.is_json:
        body = bodies.json_object()
        data = base64_image(body)
        options = {k: body[k] for k in ("process", "renditions") if k in body}
    else:
        raise UnsupportedMediaType(
            'send multipart/form-data with a "file" field, or JSON {"data": "<base64>"}'
        )
    if "process" in request.args:
        options["process"] = request.args["process"]
    wanted = _names(options["renditions"]) if "renditions" in options else [renditions.DEFAULT.name]
    photo = register(data, renditions_wanted=wanted, process=_flag(options.get("process", False), "process"))
    return jsonify(upload_record(photo)), 201, {"Location": f"/photos/{photo.uuid}"}
