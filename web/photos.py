"""Photo endpoints: list, queue for processing, and the files they produce."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import BadRequest, NotFound

from photos import operations, pipeline
from photos.models import Photo
from photos.storage import InvalidKey, MissingObject
from web import bodies, headers, resources

bp = Blueprint("photos", __name__)

MAX_UUIDS_PER_REQUEST = 10_000
MAX_PAGE = 10_000


class InvalidUUIDs(BadRequest):
    def __init__(self, invalid: list[object]) -> None:
        super().__init__("malformed UUIDs")
        self.details = {"invalid": invalid}


def parse_uuids(payload: object) -> list[uuid.UUID]:
    """A bare JSON array of UUID strings, or ``{"uuids": [...]}``; duplicates
    collapsed, order kept. Raises BadRequest naming what is wrong."""
    if isinstance(payload, dict):
        if set(payload) != {"uuids"}:
            raise BadRequest('expected a JSON array of UUIDs or {"uuids": [...]}')
        payload = payload["uuids"]
    if not isinstance(payload, list):
        raise BadRequest('expected a JSON array of UUIDs or {"uuids": [...]}')
    if not payload:
        raise BadRequest("no UUIDs given")
    if len(payload) > MAX_UUIDS_PER_REQUEST:
        raise BadRequest(f"at most {MAX_UUIDS_PER_REQUEST} UUIDs per request, got {len(payload)}")
    parsed: list[uuid.UUID] = []
    invalid: list[object] = []
    for item in payload:
        try:
            if not isinstance(item, str):
                raise ValueError
            parsed.append(uuid.UUID(item))
        except ValueError:
            invalid.append(item)
    if invalid:
        raise InvalidUUIDs(invalid)
    return list(dict.fromkeys(parsed))


def photo_record(photo: Photo, *, with_thumbnails: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {
        "uuid": str(photo.uuid),
        "url": photo.url,
        "status": photo.status.value,
        "created_at": _iso(photo.created_at),
        "updated_at": _iso(photo.updated_at),
        "attempts": photo.attempts,
        "failure_reason": photo.failure_reason,
        "thumbhash": thumbhash_text(photo.thumbhash),
    }
    if with_thumbnails:
        record["thumbnails"] = [
            {
                "rendition": t.rendition,
                "width": t.width,
                "height": t.height,
                "path": t.key,
                "url": f"/thumbs/{t.key}",
            }
            for t in photo.thumbnails
        ]
    return record


def thumbhash_text(thumbhash: bytes | None) -> str | None:
    """A ThumbHash as JSON carries it: base64 (as the thumbhash package's
    examples write it), null until the photo is completed."""
    return base64.b64encode(thumbhash).decode("ascii") if thumbhash is not None else None


def _limit_arg(default: int, most: int) -> int:
    raw = request.args.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise BadRequest(f"limit must be a whole number from 1 to {most}")
    return int(raw)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@bp.get("/photos/pending")
def pending() -> Response:
    """Pending photos, oldest first, a page at a time.
    ---
    get:
      tags: [photos]
      summary: Pending photos, oldest first
      parameters:
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 10000, default: 1000}}
        - name: after
          in: query
          description: the UUID of the last photo of the previous page
          schema: {type: string, format: uuid}
      responses:
        200:
          description: The page; a Link header (rel="next") when there may be more.
          headers:
            Link: {schema: {type: string}, description: the next page}
          content:
            application/json:
              schema: {type: array, items: Photo}
        400: BadRequest
    """
    limit = _limit_arg(default=1000, most=MAX_PAGE)
    after_raw = request.args.get("after")
    after = None
    if after_raw:
        try:
            after = uuid.UUID(after_raw)
        except ValueError:
            raise BadRequest("after must be the UUID of the last photo of the previous page") from None
    photos = pipeline.list_pending(resources.session(), limit=limit, after=after)
    response = jsonify([photo_record(p) for p in photos])
    if len(photos) == limit:
        response.headers["Link"] = f'</photos/pending?limit={limit}&after={photos[-1].uuid}>; rel="next"'
    return response


@bp.post("/photos/process")
def process() -> tuple[Response, int]:
    """Queues pending and failed photos: one message each on the work queue.
    ---
    post:
      tags: [photos]
      summary: Queue photos for processing
      requestBody:
        required: true
        content:
          application/json:
            schema:
              oneOf:
                - type: array
                  items: {type: string, format: uuid}
                  minItems: 1
                  maxItems: 10000
                - type: object
                  required: [uuids]
                  additionalProperties: false
                  properties:
                    uuids:
                      type: array
                      items: {type: string, format: uuid}
                      minItems: 1
                      maxItems: 10000
      responses:
        200:
          description: Nothing was queued; the answer says why, per UUID.
          content:
            application/json:
              schema: ProcessAnswer
        202:
          description: Queued (confirmed by RabbitMQ); the answer says what happened to each UUID.
          content:
            application/json:
              schema: ProcessAnswer
        400:
          description: Not an array of UUIDs or {"uuids"}, empty, too long, or with malformed UUIDs (listed).
          content:
            application/json:
              schema: InvalidUUIDsError
        415: UnsupportedMediaType
    """
    uuids = parse_uuids(bodies.json_body())
    services = resources.get()
    result = pipeline.queue_photos(services.session_factory, services.publisher(), uuids)
    body = {
        "queued": [str(u) for u in result.queued],
        "not_found": [str(u) for u in result.not_found],
        "not_eligible": [{"uuid": str(u), "status": s.value} for u, s in result.not_eligible.items()],
    }
    return jsonify(body), 202 if result.queued else 200


MAX_URLS_PER_REQUEST = 1000


class InvalidURLs(BadRequest):
    def __init__(self, exc: pipeline.InvalidURLs) -> None:
        super().__init__(str(exc))
        self.details = {"invalid": exc.invalid}


@bp.post("/photos/urls")
def add_urls() -> tuple[Response, int]:
    """Adds a pending photo for each URL (queue them with POST /photos/process).
    ---
    post:
      tags: [photos]
      summary: Add photos by URL (pending; POST /photos/process queues them)
      requestBody:
        required: true
        content:
          application/json:
            schema: AddURLsRequest
      responses:
        201:
          description: Added, pending; their UUIDs in the order of the URLs.
          content:
            application/json:
              schema: AddedPhotos
        400:
          description: Not {"urls"}, empty, too long, or with URLs that are not http(s) URLs (listed).
          content:
            application/json:
              schema: InvalidURLsError
        415: UnsupportedMediaType
    """
    body = bodies.json_body()
    if not isinstance(body, dict) or set(body) != {"urls"} or not isinstance(body["urls"], list):
        raise BadRequest('expected {"urls": ["http://...", ...]}')
    urls = body["urls"]
    if not urls:
        raise BadRequest("no URLs given")
    if len(urls) > MAX_URLS_PER_REQUEST:
        raise BadRequest(f"at most {MAX_URLS_PER_REQUEST} URLs per request, got {len(urls)}")
    try:
        added = pipeline.add_photos(resources.get().session_factory, urls)
    except pipeline.InvalidURLs as exc:
        raise InvalidURLs(exc) from None
    return jsonify(uuids=[str(u) for u in added]), 201


@bp.get("/photos")
def index() -> Response:
    """The newest photos with their thumbnails, and counts by status (for the page).
    ---
    get:
      tags: [photos]
      summary: The newest photos with their thumbnails, and counts by status
      parameters:
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 1000, default: 200}}
      responses:
        200:
          description: Counts by status and the newest photos.
          content:
            application/json:
              schema: PhotoIndex
        400: BadRequest
    """
    limit = _limit_arg(default=200, most=1000)
    photos = pipeline.newest_photos(resources.session(), limit)
    counts = operations.status_counts(resources.get().session_factory)
    return jsonify(
        counts={status.value: n for status, n in counts.items()},
        photos=[photo_record(p, with_thumbnails=True) for p in photos],
    )


@bp.get("/photos/<uuid:photo_uuid>")
def show(photo_uuid: uuid.UUID) -> Response:
    """One photo with its thumbnails.
    ---
    get:
      tags: [photos]
      summary: One photo with its thumbnails
      responses:
        200:
          description: The photo.
          content:
            application/json:
              schema: PhotoWithThumbnails
        404: NotFound
    """
    photo = pipeline.find_photo(resources.session(), photo_uuid)
    if photo is None:
        raise NotFound(f"no photo {photo_uuid}")
    return jsonify(photo_record(photo, with_thumbnails=True))


# Write-once names (the S3 backend's renditions) never change: cached for a
# year without asking again. Every other name may be rewritten when its photo
# is processed again: cached, but revalidated (ETag) on every use.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@bp.get("/thumbs/<path:key>")
def thumbnail(key: str) -> Response:
    """A stored object (a rendition, an uploaded original or a query's mirror)
    from either backend, with ETag, Last-Modified and a Cache-Control true to
    its name; If-None-Match answers 304.
    ---
    get:
      tags: [photos]
      summary: A stored file (rendition, upload, query mirror)
      description: >-
        Served only as an image type a browser shows (by extension), under a sandboxing
        Content-Security-Policy; any other file as an application/octet-stream attachment.
        ETag and Last-Modified on every answer, If-None-Match answered 304; Cache-Control
        is immutable for write-once names (the S3 backend's renditions), no-cache otherwise.
      responses:
        200:
          description: The file.
          content:
            image/jpeg: {schema: {type: string, format: binary}}
            image/png: {schema: {type: string, format: binary}}
            image/webp: {schema: {type: string, format: binary}}
            image/avif: {schema: {type: string, format: binary}}
            image/gif: {schema: {type: string, format: binary}}
            application/octet-stream: {schema: {type: string, format: binary}}
        304:
          description: Not modified (If-None-Match matched the ETag).
        404: NotFound
        503: ServiceUnavailable
    """
    storage = resources.get().storage
    try:
        if request.if_none_match:
            info = storage.stat(key)
            if request.if_none_match.contains_weak(info.etag.strip('"')):
                return _object_response(
                    Response(status=304), info.etag, info.last_modified, storage.is_write_once(key)
                )
        stored = storage.fetch(key)
    except (InvalidKey, MissingObject):
        raise NotFound("no such object") from None
    # Only as an image type a browser shows and never runs; anything else as a download.
    mimetype = headers.image_type(key)
    response = Response(stored.data, mimetype=mimetype or headers.DOWNLOAD_TYPE)
    if mimetype is None:
        response.headers.set("Content-Disposition", "attachment", filename=key.rsplit("/", 1)[-1])
    return _object_response(response, stored.info.etag, stored.info.last_modified, storage.is_write_once(key))


def _object_response(response: Response, etag: str, last_modified: datetime, write_once: bool) -> Response:
    response.set_etag(etag.strip('"'))
    response.last_modified = last_modified
    response.headers["Cache-Control"] = IMMUTABLE if write_once else REVALIDATE
    response.headers["Content-Security-Policy"] = headers.FILE_CONTENT_SECURITY_POLICY
    return response
