"""The shapes of the JSON bodies the API takes and gives, for its OpenAPI
document (``GET /openapi.json``).

They describe; the routes build their answers themselves, so documenting a
route changes nothing it does. A route names these schemas by class name (
without ``Schema``) in the OpenAPI block of its docstring; the schemathesis
test checks every answer the running app gives against them.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from photos.models import PhotoStatus

STATUSES = [s.value for s in PhotoStatus]


class Shape(Schema):
    """An answer's shape: fields may be added later, so others are allowed."""

    class Meta:
        unknown = EXCLUDE
        ordered = True


class Strict(Schema):
    """A request body that may hold only these fields (others are a 400)."""

    class Meta:
        unknown = RAISE
        ordered = True


class ErrorSchema(Shape):
    error = fields.String(required=True, metadata={"description": "what went wrong, for a person"})


class InvalidUUIDsErrorSchema(ErrorSchema):
    invalid = fields.List(fields.Raw(), metadata={"description": "the items that are not UUIDs"})


class PhotoSchema(Shape):
    uuid = fields.UUID(required=True)
    url = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True, allow_none=True)
    attempts = fields.Integer(required=True)
    failure_reason = fields.String(required=True, allow_none=True)
    thumbhash = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "the ThumbHash placeholder, base64; null until completed"},
    )


class ThumbnailSchema(Shape):
    rendition = fields.String(required=True, metadata={"example": "fit-320"})
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    path = fields.String(required=True, metadata={"description": "relative to the thumbs directory"})
    url = fields.String(required=True, metadata={"description": "where GET serves it: /thumbs/<path>"})


class PhotoWithThumbnailsSchema(PhotoSchema):
    thumbnails = fields.List(fields.Nested(ThumbnailSchema), required=True)


class PhotoIndexSchema(Shape):
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    photos = fields.List(fields.Nested(PhotoWithThumbnailsSchema), required=True)


class NotEligibleSchema(Shape):
    uuid = fields.UUID(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))


class InvalidURLsErrorSchema(ErrorSchema):
    invalid = fields.List(fields.Raw(), metadata={"description": "the items that are not http(s) URLs"})


class AddURLsRequestSchema(Strict):
    urls = fields.List(
        fields.String(validate=validate.Length(min=1, max=2048)),
        required=True,
        validate=validate.Length(min=1, max=1000),
        metadata={"description": "http(s) URLs of photos"},
    )


class AddedPhotosSchema(Shape):
    uuids = fields.List(fields.UUID(), required=True)


class ProcessAnswerSchema(Shape):
    queued = fields.List(fields.UUID(), required=True)
    not_found = fields.List(fields.UUID(), required=True)
    not_eligible = fields.List(fields.Nested(NotEligibleSchema), required=True)


class UploadSchema(PhotoSchema):
    source = fields.String(required=True, metadata={"example": "upload"})
    renditions = fields.List(fields.String(), required=True)
    original = fields.String(required=True, metadata={"description": "where GET serves the uploaded file"})


class UploadJSONSchema(Shape):
    data = fields.String(required=True, metadata={"description": "the image, base64"})
    process = fields.Raw(metadata={"description": "queue it at once: true/false (or 1/0, yes/no, on/off)"})
    renditions = fields.Raw(
        metadata={"description": "rendition names: an array, or one comma-separated string"}
    )


class UploadFormSchema(Shape):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})
    process = fields.String(metadata={"description": "true/false (or 1/0, yes/no, on/off)"})
    renditions = fields.String(metadata={"description": "comma-separated rendition names"})


class TaskRequestSchema(Shape):
    data = fields.String(required=True, metadata={"description": "a square image, base64"})


class TaskSchema(Shape):
    id = fields.UUID(required=True)
    status = fields.String(
        required=True, validate=validate.OneOf(["WAITING", "IN_PROGRESS", "DONE", "FAILED"])
    )
    reason = fields.String(allow_none=True, metadata={"description": "why it failed (FAILED only)"})
    thumbhash = fields.String(metadata={"description": "the ThumbHash placeholder, base64 (DONE only)"})


class TaskImageSchema(Shape):
    id = fields.UUID(required=True)
    size = fields.String(required=True, validate=validate.OneOf(["original", "64", "32"]))
    content_type = fields.String(required=True, metadata={"example": "image/png"})
    data = fields.String(required=True, metadata={"description": "the image, base64"})


class QueryFormSchema(Shape):
    image = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class QueryAnswerSchema(Shape):
    status = fields.String(required=True, validate=validate.OneOf(["SUCCESS"]))
    size = fields.String(required=True, metadata={"example": "82kb"})
    size_bytes = fields.Integer(required=True)
    id = fields.UUID(required=True)
    mirrored = fields.String(required=True)
    mirrored_url = fields.String(required=True)
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    consumer = fields.String(required=True)


class FailureGroupSchema(Shape):
    reason = fields.String(required=True)
    count = fields.Integer(required=True)
    last_at = fields.DateTime(required=True)


class RetryRequestSchema(Strict):
    reason = fields.String(
        validate=validate.Length(min=1),
        metadata={"description": "one reason as GET /photos/failures lists it; absent: every failed photo"},
    )


class QueuedCountSchema(Shape):
    queued = fields.Integer(required=True)


class QueueStateSchema(Shape):
    role = fields.String(required=True, metadata={"example": "work"})
    queue = fields.String(required=True)
    messages = fields.Integer(required=True)
    consumers = fields.Integer(required=True)


class MinuteSchema(Shape):
    minute = fields.DateTime(required=True)
    completed = fields.Integer(required=True)
    failed = fields.Integer(required=True)


class StatsSchema(Shape):
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    queues = fields.List(fields.Nested(QueueStateSchema), required=True, allow_none=True)
    consumers = fields.Integer(required=True, allow_none=True)
    broker_error = fields.String(required=True, allow_none=True)
    throughput = fields.List(fields.Nested(MinuteSchema), required=True)


class HealthSchema(Shape):
    status = fields.String(required=True, validate=validate.OneOf(["ok"]))


class ReadinessSchema(Shape):
    status = fields.String(required=True, validate=validate.OneOf(["ok", "unavailable"]))
    checks = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": '"ok", or why the backend is down'},
    )
    error = fields.String()
    down = fields.List(fields.String())


class SessionRequestSchema(Shape):
    key = fields.String(required=True, metadata={"description": "an API key"})


class SessionAnswerSchema(Shape):
    signed_in = fields.Boolean(required=True)
    key = fields.String(required=True, metadata={"description": "the key's name"})
