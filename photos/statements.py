"""The statements of the pipeline's use cases (:mod:`photos.pipeline`).

Built once, with bound parameters: SQLAlchemy compiles each once and reuses the
compiled form (its statement cache), and they run on a Core connection, without
a Session, its identity map or its flush. Every message runs the claim and the
completion; each is one statement in a short transaction.

A photo is *held* by a consumer while it is ``processing`` under that
consumer's lease (``lease_owner``); the statements that finish a photo (renew,
release, fail, complete) write only while it is held, so the database, not a
SELECT first, decides a race with a consumer that took the photo over.
"""

from __future__ import annotations

import uuid
from typing import cast

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    Integer,
    Interval,
    LargeBinary,
    Select,
    Table,
    Text,
    bindparam,
    case,
    func,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert

from photos.models import Photo, PhotoStatus, Thumbnail

_photos = cast(Table, Photo.__table__)
_thumbnails = cast(Table, Thumbnail.__table__)
_columns = _photos.c
_UUID = UUID(as_uuid=True)
_PHOTO = bindparam("photo", type_=_UUID)
_OWNER = bindparam("owner", type_=_UUID)
_REASON = bindparam("reason", type_=Text)
_LEASE_END = func.now() + func.make_interval(
    0, 0, 0, 0, 0, 0, bindparam("lease_seconds", type_=Float), type_=Interval
)
_TIMESTAMP = DateTime(timezone=True)
_WANTED = bindparam("wanted", type_=ARRAY(_UUID))

# --- queueing (the web side) ---------------------------------------------------

# The eligible photos of a batch (pending or failed), locked, as they are
# before QUEUE changes them.
_eligible = (
    select(
        _columns.uuid,
        _columns.status,
        _columns.queued_at,
        _columns.attempts,
        _columns.failure_reason,
        _columns.updated_at,
    )
    .where(
        _columns.uuid == func.any(_WANTED),
        _columns.status.in_([PhotoStatus.pending, PhotoStatus.failed]),
    )
    .with_for_update()
    .cte("eligible")
)
# Param ``wanted``: the eligible photos made pending and queued, returning what
# each was before and its new ``queued_now``.
QUEUE = (
    update(_photos)
    .where(_columns.uuid == _eligible.c.uuid)
    .values(
        status=PhotoStatus.pending,
        queued_at=func.now(),
        updated_at=func.now(),
        attempts=0,
        failure_reason=None,
    )
    .returning(*_eligible.c, _columns.queued_at.label("queued_now"))
)
# Param ``wanted``: uuid and status of every photo of the batch.
STATUSES = select(_columns.uuid, _columns.status).where(_columns.uuid == func.any(_WANTED))

# UNQUEUE undoes QUEUE for a batch of photos, except those a consumer has
# claimed since: one row per photo from parallel arrays, parameter
# ``undo_<column>`` for each column below, made from the rows QUEUE returned.
# The whole batch is one statement, not an executemany of a round trip each.
UNQUEUE_COLUMNS = (
    ("uuid", _UUID),
    ("queued_now", _TIMESTAMP),
    ("status", _columns.status.type),
    ("queued_at", _TIMESTAMP),
    ("attempts", Integer()),
    ("failure_reason", Text()),
    ("updated_at", _TIMESTAMP),
)
_previous = (
    func.unnest(*(bindparam(f"undo_{name}", type_=ARRAY(t)) for name, t in UNQUEUE_COLUMNS))
    .table_valued(*(name for name, _ in UNQUEUE_COLUMNS))
    .render_derived(name="previous")
)
UNQUEUE = (
    update(_photos)
    .where(
        _columns.uuid == _previous.c.uuid,
        _columns.status == PhotoStatus.pending,
        _columns.attempts == 0,
        _columns.queued_at == _previous.c.queued_now,
    )
    .values(
        status=_previous.c.status,
        queued_at=_previous.c.queued_at,
        attempts=_previous.c.attempts,
        failure_reason=_previous.c.failure_reason,
        updated_at=_previous.c.updated_at,
    )
)

# --- processing (the consumer side) ---------------------------------------------

_HELD = (
    (_columns.uuid == _PHOTO) & (_columns.lease_owner == _OWNER) & (_columns.status == PhotoStatus.processing)
)

# Params ``photo``, ``owner``, ``lease_seconds``, ``locked``, ``takeover``: the
# photo taken if pending, or processing under a lease that has run out (its
# holder died or hangs); and, by a consumer that holds the photo's advisory
# lock (``locked``, photos/locks.py), also under its own lease (it lost the
# database and comes back) or whatever the lease when ``takeover`` (the
# message was redelivered, so the holder's broker channel closed, and the
# holder's lock is free, so its database session ended too: it is gone).
CLAIM = (
    update(_photos)
    .where(
        _columns.uuid == _PHOTO,
        (_columns.status == PhotoStatus.pending)
        | (
            (_columns.status == PhotoStatus.processing)
            & (
                _columns.lease_expires_at.is_(None)
                | (_columns.lease_expires_at < func.now())
                | ((_columns.lease_owner == _OWNER) & bindparam("locked", type_=Boolean))
                | bindparam("takeover", type_=Boolean)
            )
        ),
    )
    .values(
        status=PhotoStatus.processing,
        lease_owner=_OWNER,
        lease_expires_at=_LEASE_END,
        # Taking back one's own photo (after losing the database mid-work) is
        # the same attempt going on, not another.
        attempts=_columns.attempts + case((_columns.lease_owner == _OWNER, 0), else_=1),
        updated_at=func.now(),
    )
    # failure_reason is not set by the claim: this is what the last attempt left.
    .returning(
        _columns.url, _columns.original_path, _columns.renditions, _columns.attempts, _columns.failure_reason
    )
)
# Param ``photo``.
STATE = select(_columns.status, _columns.lease_expires_at, func.now().label("now")).where(
    _columns.uuid == _PHOTO
)
# Param ``photo``: STATE with the upload original, the row locked.
STATE_LOCKED = (
    select(_columns.status, _columns.lease_expires_at, _columns.original_path, func.now().label("now"))
    .where(_columns.uuid == _PHOTO)
    .with_for_update()
)
# Params ``photo``, ``owner``, ``lease_seconds``; a row if still held.
RENEW = update(_photos).where(_HELD).values(lease_expires_at=_LEASE_END).returning(_columns.uuid)
# Params ``photo``, ``owner``, ``reason``: a held photo made pending again.
RELEASE = (
    update(_photos)
    .where(_HELD)
    .values(
        status=PhotoStatus.pending,
        lease_owner=None,
        lease_expires_at=None,
        failure_reason=_REASON,
        updated_at=func.now(),
    )
)
# RELEASE returning a row if the photo was held.
GIVE_BACK = RELEASE.returning(_columns.uuid)
# Params ``photo``, ``reason``: the photo failed, whoever holds it.
FAIL = (
    update(_photos)
    .where(_columns.uuid == _PHOTO)
    .values(
        status=PhotoStatus.failed,
        failure_reason=_REASON,
        lease_owner=None,
        lease_expires_at=None,
        updated_at=func.now(),
    )
)
# FAIL with param ``owner`` too, only while held; returns its upload original's key.
FAIL_HELD = FAIL.where(_columns.lease_owner == _OWNER).returning(_columns.original_path)
# RELEASE with the attempt refunded (a storage outage is not the photo's).
POSTPONE = RELEASE.values(attempts=func.greatest(_columns.attempts - 1, 0))
# Param ``photo``: the keys of the photo's thumbnail rows.
NAMED = select(_thumbnails.c.url).where(_thumbnails.c.photo_uuid == _PHOTO)


def _complete_statement() -> Select[tuple[uuid.UUID]]:
    """WITH held AS (UPDATE photos SET status = 'completed' ... WHERE we hold it
    RETURNING uuid), saved AS (INSERT INTO photo_thumbnails SELECT held.uuid,
    made.* FROM held, unnest(names, widths, heights, paths) AS made ON
    CONFLICT (photo_uuid, rendition) DO UPDATE ...) SELECT uuid FROM held: a
    row when the photo was ours and is now completed with its thumbnails, none
    (and nothing written) when the lease was lost."""
    held = (
        update(_photos)
        .where(_HELD)
        .values(
            status=PhotoStatus.completed,
            lease_owner=None,
            lease_expires_at=None,
            completed_at=func.now(),
            updated_at=func.now(),
            failure_reason=None,
            thumbhash=bindparam("thumbhash", type_=LargeBinary),
        )
        .returning(_columns.uuid)
        .cte("held")
    )
    made = (
        func.unnest(
            bindparam("names", type_=ARRAY(Text)),
            bindparam("widths", type_=ARRAY(Integer)),
            bindparam("heights", type_=ARRAY(Integer)),
            bindparam("paths", type_=ARRAY(Text)),
        )
        .table_valued("rendition", "width", "height", "url")
        .render_derived(name="made")
    )
    save = pg_insert(_thumbnails).from_select(
        ["photo_uuid", "rendition", "width", "height", "url"],
        select(held.c.uuid, made.c.rendition, made.c.width, made.c.height, made.c.url).select_from(
            held.join(made, true())
        ),
    )
    saved = save.on_conflict_do_update(
        constraint="uq_photo_thumbnails_photo_rendition",
        set_={
            "width": save.excluded.width,
            "height": save.excluded.height,
            "url": save.excluded.url,
            "created_at": func.now(),
        },
    ).cte("saved")
    return select(held.c.uuid).add_cte(saved)


# Params ``photo``, ``owner`` and the parallel arrays ``names``, ``widths``,
# ``heights``, ``paths`` (one element per rendition).
COMPLETE = _complete_statement()
