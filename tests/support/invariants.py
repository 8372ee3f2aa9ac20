"""The invariant every fault and hostile-input test ends with.

Every requested photo is in exactly one terminal state:

- ``completed``, with exactly one ``photo_thumbnails`` row per rendition the photo
  asks for, each naming one decodable file whose real size is the recorded one;
- ``failed``, with a non-empty reason and no thumbnail rows.

No photo stays ``pending`` or ``processing``; the work, delay and dead-letter
queues are drained (checked once the consumers have stopped, so that a message
still unacknowledged would have come back and be counted); and every object
in storage (every file under the thumbs directory, or every object under the
bucket's prefix) is named by a row, with no ``.partial-*`` file left behind.
With the S3 backend nothing at all may be written to THUMBS_DIR.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from photos.config import Settings
from photos.db import SessionFactory, is_unavailable, unit_of_work
from photos.models import Photo, PhotoStatus, Query, Thumbnail
from photos.storage import PARTIAL_PREFIX, MissingObject, open_storage
from tests.support.services import Broker

TERMINAL = (PhotoStatus.completed, PhotoStatus.failed)


class Stoppable(Protocol):
    """A consumer: a ``python -m consumer`` Process, or one run in a thread."""

    def terminate(self) -> object: ...


@dataclass(frozen=True)
class Outcome:
    status: PhotoStatus
    reason: str | None
    attempts: int


def assert_settled(
    factory: SessionFactory,
    broker: Broker | None,
    settings: Settings,
    photos: Collection[uuid.UUID],
    *,
    consumers: Sequence[Stoppable] = (),
    timeout: float = 60.0,
) -> dict[uuid.UUID, Outcome]:
    """Wait (up to ``timeout``) until every photo is terminal and the queues are
    empty, stop ``consumers`` gracefully, then check the whole invariant.
    Returns each photo's outcome for the test's own, more specific, checks."""
    wanted = set(photos)
    deadline = time.monotonic() + timeout
    last = "nothing observed yet"
    while True:
        try:
            statuses = _statuses(factory, wanted)
            depth = broker.total_depth() if broker is not None else 0
        except DBAPIError as exc:
            # A test that terminates database backends may hit ours too.
            if not is_unavailable(exc):
                raise
            statuses, depth = {}, -1
        unsettled = {u: s.value for u, s in statuses.items() if s not in TERMINAL}
        missing = wanted - set(statuses)
        if statuses and not unsettled and not missing and depth == 0:
            break
        last = f"not terminal: {dict(list(unsettled.items())[:5])} ({len(unsettled)}), missing: {len(missing)}, messages ready: {depth}"
        if time.monotonic() > deadline:
            raise AssertionError(f"photos did not settle within {timeout}s: {last}")
        time.sleep(0.1)

    for consumer in consumers:
        consumer.terminate()
    if broker is not None:
        t = broker.topology
        depths = {q: broker.depth(q) for q in (t.queue, t.delay_queue, t.dead_queue)}
        assert depths == dict.fromkeys(depths, 0), f"queues not drained once consumers stopped: {depths}"

    outcomes = check_rows_and_files(factory, settings, wanted)
    return outcomes


def check_rows_and_files(
    factory: SessionFactory,
    settings: Settings,
    photos: Collection[uuid.UUID],
    *,
    thumbs_dirs: Sequence[Path] = (),
) -> dict[uuid.UUID, Outcome]:
    """The database and storage half of the invariant (no waiting, no broker),
    on the storage ``settings`` choose. ``thumbs_dirs``: more local directories
    (other hosts') that the S3 backend must have left empty too."""
    storage = open_storage(settings)
    wanted = set(photos)
    with unit_of_work(factory) as session:
        rows = session.execute(
            select(Photo.uuid, Photo.status, Photo.failure_reason, Photo.attempts, Photo.renditions).where(
                Photo.uuid.in_(wanted)
            )
        ).all()
        thumbnails = session.scalars(select(Thumbnail)).all()
        originals = set(session.scalars(select(Photo.original_path).where(Photo.original_path.is_not(None))))
        mirrored = set(session.scalars(select(Query.mirrored_path).where(Query.mirrored_path.is_not(None))))
    assert {r.uuid for r in rows} == wanted, "some requested photos do not exist"

    by_photo: dict[uuid.UUID, list[Thumbnail]] = {}
    for t in thumbnails:
        by_photo.setdefault(t.photo_uuid, []).append(t)

    outcomes: dict[uuid.UUID, Outcome] = {}
    for r in rows:
        mine = by_photo.get(r.uuid, [])
        if r.status == PhotoStatus.completed:
            names = sorted(t.rendition for t in mine)
            assert names == sorted(r.renditions), (
                f"photo {r.uuid} is completed with renditions {names}, wants {sorted(r.renditions)}"
            )
            for t in mine:
                try:
                    data = storage.read(t.key)
                except MissingObject:
                    raise AssertionError(f"photo {r.uuid}: {t.key} is recorded but missing") from None
                with Image.open(io.BytesIO(data)) as im:
                    im.load()
                    assert im.size == (t.width, t.height), (
                        f"photo {r.uuid}: {t.key} is {im.size}, recorded as {(t.width, t.height)}"
                    )
        elif r.status == PhotoStatus.failed:
            assert r.failure_reason, f"photo {r.uuid} failed without a reason"
            assert not mine, f"photo {r.uuid} failed but has thumbnail rows {[t.key for t in mine]}"
        else:
            raise AssertionError(f"photo {r.uuid} is {r.status.value}, not terminal")
        outcomes[r.uuid] = Outcome(r.status, r.failure_reason, r.attempts)

    named = {t.key for t in thumbnails} | originals | mirrored
    if settings.storage is None:
        root = settings.thumbs_dir
        stored = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
        partials = sorted(p for p in stored if Path(p).name.startswith(PARTIAL_PREFIX))
        assert not partials, f"half-written files left behind: {partials}"
    else:
        # A PUT is all or nothing: an object listed is whole.
        stored = set(storage.list_keys())
        for directory in (settings.thumbs_dir, *thumbs_dirs):
            written = [p for p in directory.rglob("*") if p.is_file()]
            assert not written, f"the S3 backend wrote to a local directory: {written[:5]}"
    orphans = sorted(stored - named)
    assert not orphans, f"objects no row names: {orphans}"
    return outcomes


def _statuses(factory: SessionFactory, photos: set[uuid.UUID]) -> dict[uuid.UUID, PhotoStatus]:
    with unit_of_work(factory) as session:
        return {
            row.uuid: row.status
            for row in session.execute(select(Photo.uuid, Photo.status).where(Photo.uuid.in_(photos)))
        }
