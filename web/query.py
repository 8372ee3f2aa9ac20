"""POST /query: an image goes over RabbitMQ to a consumer, which answers with
its size and the image mirrored; the mirrored image is kept on disk.

Statuses: 200 answered; 400 no ``image`` field or an empty one; 413 more than
QUERY_MAX_BYTES bytes or MAX_IMAGE_PIXELS pixels; 415 not an image; 502 the
consumer failed; 503 RabbitMQ unreachable; 504 no answer within QUERY_TIMEOUT.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from photos import uploads
from photos.query import ConsumerError
from photos.rpc import QueryTimeout
from web import resources

bp = Blueprint("query", __name__)


@bp.post("/query")
def ask() -> Response:
    """Sends the image to a consumer over RabbitMQ and answers with what it says.
    ---
    post:
      tags: [query]
      summary: Ask a consumer for an image's size (and keep its mirror)
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema: QueryForm
      responses:
        200:
          description: The consumer's answer; the mirrored image is kept.
          content:
            application/json:
              schema: QueryAnswer
        400: BadRequest
        413: PayloadTooLarge
        415:
          description: Not an image.
          content:
            application/json:
              schema: Error
        502:
          description: The consumer failed.
          content:
            application/json:
              schema: Error
        504:
          description: No consumer answered within QUERY_TIMEOUT.
          content:
            application/json:
              schema: Error
    """
    services = resources.get()
    image = _image_field(services.settings.query_max_bytes)
    recorded = uploads.ask_query(services.query_client(), services.session_factory, services.storage, image)
    answer = recorded.answer
    return jsonify(
        status="SUCCESS",
        size=f"{answer.size_kb}kb",
        size_bytes=answer.size_bytes,
        id=str(recorded.id),
        mirrored=recorded.path,
        mirrored_url=f"/thumbs/{recorded.path}",
        width=answer.mirrored.width,
        height=answer.mirrored.height,
        consumer=answer.consumer,
    )


def _image_field(max_bytes: int) -> bytes:
    upload = request.files.get("image")
    if upload is None:
        raise BadRequest('send the image as a multipart/form-data file field named "image"')
    data = upload.stream.read(max_bytes + 1)
    if not data:
        raise BadRequest("the image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise RequestEntityTooLarge(f"the image is larger than the limit of {max_bytes} bytes")
    return data


@bp.errorhandler(ConsumerError)
def consumer_failed(exc: ConsumerError) -> tuple[Response, int]:
    # What the image is refused for is answered as for an upload (web/__init__.py).
    return jsonify(error=exc.reason), 502


@bp.errorhandler(QueryTimeout)
def timed_out(exc: QueryTimeout) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 504
