"""The operator's use cases: what failed and why, queueing photos again in
bulk, and the figures a dashboard shows (counts by status, throughput).

Queueing goes through :func:`photos.pipeline.queue_photos`, so a bulk retry
keeps its guarantees (committed before published, published with confirms,
put back when the broker fails).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, func, literal, select

from photos import pipeline
from photos.db import SessionFactory, transaction
from photos.messages import MessagePublisher
from photos.models import Photo, PhotoStatus

# Photos queued per call of queue_photos (its statements take arrays).
QUEUE_BATCH = 10_000
# The reason listed for a failed photo that has none recorded.
NO_REASON = "no reason recorded"

_columns = cast(Table, Photo.__table__).c
_reason = func.coalesce(_columns.failure_reason, literal(NO_REASON))


@dataclass(frozen=True)
class FailureGroup:
    reason: str
    count: int
    last_at: datetime


@dataclass(frozen=True)
class MinuteCount:
    minute: datetime
    completed: int
    failed: int


def failures(factory: SessionFactory) -> list[FailureGroup]:
    """Failed photos grouped by reason, most frequent first (the latest failure
    first among equals)."""
    last_at = func.max(_columns.updated_at)
    query = (
        select(_reason.label("reason"), func.count().label("count"), last_at.label("last_at"))
        .where(_columns.status == PhotoStatus.failed)
        .group_by(_reason)
        .order_by(func.count().desc(), last_at.desc(), _reason)
    )
    with transaction(factory) as connection:
        return [FailureGroup(reason, count, last) for reason, count, last in connection.execute(query)]


def retry_failed(factory: SessionFactory, publisher: MessagePublisher, reason: str | None = None) -> int:
    """Queue again every failed photo, or those failed for ``reason`` (as
    :func:`failures` lists it); the number queued. Raises BrokerUnavailable as
    queue_photos does: the batches queued before it stay queued."""
    return queue_by_status(factory, publisher, PhotoStatus.failed, reason)


def queue_by_status(
    factory: SessionFactory, publisher: MessagePublisher, status: PhotoStatus, reason: str | None = None
) -> int:
    """Queue every photo of ``status`` (pending or failed), optionally only
    those whose failure reason is ``reason``; the number queued."""
    if status not in (PhotoStatus.pending, PhotoStatus.failed):
        raise ValueError(f"only pending and failed photos can be queued, not {status.value}")
    query = (
        select(_columns.uuid).where(_columns.status == status).order_by(_columns.created_at, _columns.uuid)
    )
    if reason is not None:
        query = query.where(_reason == reason)
    with transaction(factory) as connection:
        found = list(connection.scalars(query))
    return _queue_in_batches(factory, publisher, found)


def _queue_in_batches(
    factory: SessionFactory, publisher: MessagePublisher, uuids: Sequence[uuid.UUID]
) -> int:
    queued = 0
    for start in range(0, len(uuids), QUEUE_BATCH):
        result = pipeline.queue_photos(factory, publisher, uuids[start : start + QUEUE_BATCH])
        queued += len(result.queued)
    return queued


def status_counts(factory: SessionFactory) -> dict[PhotoStatus, int]:
    """Rows by status, every status present (0 when none)."""
    with transaction(factory) as connection:
        found = {
            status: count
            for status, count in connection.execute(
                select(_columns.status, func.count()).group_by(_columns.status)
            )
        }
    return {status: found.get(status, 0) for status in PhotoStatus}


def throughput(factory: SessionFactory, minutes: int = 60) -> list[MinuteCount]:
    """Photos completed and failed in each of the last ``minutes`` minutes,
    oldest first, every minute present (the current one last)."""
    minute = func.date_trunc("minute", _columns.updated_at)
    since = func.date_trunc("minute", func.now()) - func.make_interval(0, 0, 0, 0, 0, minutes - 1)
    query = (
        select(
            minute.label("minute"),
            func.count().filter(_columns.status == PhotoStatus.completed).label("completed"),
            func.count().filter(_columns.status == PhotoStatus.failed).label("failed"),
        )
        .where(_columns.status.in_([PhotoStatus.completed, PhotoStatus.failed]), _columns.updated_at >= since)
        .group_by(minute)
    )
    with transaction(factory) as connection:
        found = {r.minute: (r.completed, r.failed) for r in connection.execute(query)}
        start = connection.scalar(select(since))
    assert start is not None
    return [
        MinuteCount(m, *found.get(m, (0, 0))) for m in (start + timedelta(minutes=i) for i in range(minutes))
    ]
