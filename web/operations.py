"""The operator's endpoints: failures by reason, bulk retry, and the figures
of the operator page (``GET /stats``)."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import BadRequest

from photos import operations
from photos.messages import BrokerUnavailable
from web import resources

bp = Blueprint("operations", __name__)

RETRY_BODY = 'expected {} (every failed photo) or {"reason": "<a reason as GET /photos/failures lists it>"}'


@bp.get("/photos/failures")
def failures() -> Response:
    """Failed photos grouped by reason, most frequent first.
    ---
    get:
      tags: [operations]
      summary: Failed photos grouped by reason, most frequent first
      responses:
        200:
          description: The groups, with the latest failure of each.
          content:
            application/json:
              schema: {type: array, items: FailureGroup}
    """
    groups = operations.failures(resources.get().session_factory)
    return jsonify([{"reason": g.reason, "count": g.count, "last_at": _iso(g.last_at)} for g in groups])


def parse_retry(payload: object) -> str | None:
    """The reason to retry, None for every failed photo; BadRequest for any
    other shape."""
    if not isinstance(payload, dict) or not set(payload) <= {"reason"}:
        raise BadRequest(RETRY_BODY)
    if "reason" not in payload:
        return None
    reason = payload["reason"]
    # Postgres text never holds a NUL, so no listed reason has one; the
    # database would refuse the string outright rather than match nothing.
    if not isinstance(reason, str) or not reason or "\x00" in reason:
        raise BadRequest(RETRY_BODY)
    return reason


@bp.post("/photos/retry")
def retry() -> tuple[Response, int]:
    """Queues failed photos again: ``{}`` every one, ``{"reason": ...}`` one group.
    ---
    post:
      tags: [operations]
      summary: Queue failed photos again, all or those of one reason
      requestBody:
        required: true
        content:
          application/json:
            schema: RetryRequest
      responses:
        200:
          description: Nothing was queued (no failed photo, or none with that reason).
          content:
            application/json:
              schema: QueuedCount
        202:
          description: Queued.
          content:
            application/json:
              schema: QueuedCount
        400: BadRequest
    """
    reason = parse_retry(request.get_json(silent=True) if request.is_json else None)
    services = resources.get()
    queued = operations.retry_failed(services.session_factory, services.publisher(), reason)
    return jsonify(queued=queued), 202 if queued else 200


@bp.get("/stats")
def stats() -> Response:
    """Counts by status, the watched queues with their consumers, and the
    photos finished in each minute of the last hour. Queues are null, with
    the reason, while RabbitMQ does not answer.
    ---
    get:
      tags: [operations]
      summary: The operator page's figures
      responses:
        200:
          description: Counts, queues, consumers and the last hour's throughput.
          content:
            application/json:
              schema: Stats
    """
    services = resources.get()
    counts = operations.status_counts(services.session_factory)
    minutes = operations.throughput(services.session_factory)
    watched = services.topology.watched_queues
    queues: list[dict[str, object]] | None = None
    broker_error: str | None = None
    try:
        states = services.queue_inspector.states(list(watched.values()))
        queues = [
            {"role": role, "queue": s.name, "messages": s.messages, "consumers": s.consumers}
            for role, s in zip(watched, states, strict=True)
        ]
    except BrokerUnavailable as exc:
        broker_error = str(exc)
    return jsonify(
        counts={status.value: n for status, n in counts.items()},
        queues=queues,
        consumers=queues[0]["consumers"] if queues else None,
        broker_error=broker_error,
        throughput=[
            {"minute": _iso(m.minute), "completed": m.completed, "failed": m.failed} for m in minutes
        ],
    )


def _iso(value: datetime) -> str:
    return value.isoformat()
