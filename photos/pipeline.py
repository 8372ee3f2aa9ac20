"""The use cases: queue photos, and process one photo.

Guarantees, and where they come from:

- *Nothing lost.* ``queue_photos`` commits before it publishes and publishes
  with confirms; consumers ack only after the outcome is committed.
- *Nothing duplicated.* A consumer works on a photo only while it holds the
  photo's advisory lock (photos/locks.py) and has *claimed* it with one
  conditional UPDATE; a second delivery of the same message finds the lock or
  the claim taken and does nothing. Outcomes are written only under the
  claim's lease token, so a consumer whose photo was taken over writes nothing.
  Thumbnail rows are unique per (photo, rendition), and only the holder of
  the lease commits them, so even two consumers finishing the same photo leave
  one row per rendition and one object it names.
- *Nothing stuck, for seconds only.* A consumer that dies drops its lock with
  its connection, and RabbitMQ redelivers its message at once: the next
  consumer finds the lock free and takes the photo over. A consumer that is
  merely slow keeps its lock, and one that lost only its database connection
  keeps its message (RabbitMQ redelivers nothing) and its lease, renewed while
  it works; it takes its lock again. A photo whose lease ran out (its consumer
  hangs) is taken over as before. Attempts are counted and bounded.
- *Every stored object named by a row.* Renditions are staged before the
  commit that names them and published under the photo's row lock by the
  holder of the lease only; the objects of an attempt that did not commit are
  discarded by it, or, if it died (or lost the database) before it could,
  pruned when the photo is next claimed (a takeover, a retry, a claim taken
  back after a lost connection) and when it fails (see ``README.md``,
  "Storage").
- *Never failed for our own outage.* Storage that does not answer
  (StorageUnavailable) gives the photo back with its attempt refunded, to be
  tried again later.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Row, insert, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, selectinload

from photos import renditions, statements
from photos.config import Settings
from photos.db import SessionFactory, transaction, unit_of_work
from photos.errors import PermanentError, TransientError
from photos.imaging import Encoded
from photos.locks import PhotoLocks
from photos.messages import BrokerUnavailable, MessagePublisher, PhotoMessage
from photos.metrics import ProcessingMetrics, Stage
from photos.models import Photo, PhotoStatus
from photos.retry import RetryPolicy
from photos.storage import MissingObject, Staged, Storage, StorageUnavailable, prune_photo

log = logging.getLogger(__name__)

# The longest a photo waits on the delay queue between two attempts.
MAX_RETRY_DELAY = 300.0
# A storage outage is retried after the retry policy's delay for this many
# failures (not counted against the photo); a dead letter after these seconds.
STORAGE_RETRY_STEP = 3
STORAGE_RETRY_SECONDS = 5.0
# queue_photos logs the UUIDs it queued up to this many, only their count beyond.
LOGGED_UUIDS = 50


# --- the web side ---------------------------------------------------------


@dataclass(frozen=True)
class QueueResult:
    queued: list[uuid.UUID] = field(default_factory=list)
    not_found: list[uuid.UUID] = field(default_factory=list)
    not_eligible: dict[uuid.UUID, PhotoStatus] = field(default_factory=dict)


def queue_photos(
    factory: SessionFactory, publisher: MessagePublisher, uuids: Sequence[uuid.UUID]
) -> QueueResult:
    """Mark the eligible photos (pending or failed) as queued, then publish one
    message each. Raises BrokerUnavailable if RabbitMQ did not confirm them all;
    the photos are then as they were before (status, attempts, failure reason,
    queued_at), except any a consumer has taken up meanwhile, and may be
    queued again."""
    wanted = list(dict.fromkeys(uuids))
    with transaction(factory) as connection:
        before = {row.uuid: row for row in connection.execute(statements.QUEUE, {"wanted": wanted})}
        others = {
            row.uuid: row.status
            for row in connection.execute(
                statements.STATUSES, {"wanted": [u for u in wanted if u not in before]}
            )
        }
    result = QueueResult(
        queued=[u for u in wanted if u in before],
        not_found=[u for u in wanted if u not in before and u not in others],
        not_eligible={u: others[u] for u in wanted if u in others},
    )
    try:
        publisher.publish([PhotoMessage(u) for u in result.queued])
    except BrokerUnavailable:
        _unqueue(factory, list(before.values()))
        raise
    if len(result.queued) <= LOGGED_UUIDS:
        log.info(
            "photos queued", extra={"count": len(result.queued), "photos": [str(u) for u in result.queued]}
        )
    else:
        log.info("photos queued", extra={"count": len(result.queued)})
    return result


def _unqueue(factory: SessionFactory, before: Sequence[Row[Any]]) -> None:
    """Put back what queue_photos changed, on the photos no consumer has
    claimed since (a message may have been published before the broker failed)."""
    if not before:
        return
    try:
        with transaction(factory) as connection:
            connection.execute(
                statements.UNQUEUE,
                {
                    f"undo_{name}": [getattr(row, name) for row in before]
                    for name, _ in statements.UNQUEUE_COLUMNS
                },
            )
    except Exception:
        # The caller learns of the broker; the photos stay pending and queued.
        log.exception("could not put back photos whose messages were not published")


def list_pending(session: Session, limit: int = 1000, after: uuid.UUID | None = None) -> list[Photo]:
    """Pending photos, oldest first; ``after`` continues from that photo (keyset
    paging on (created_at, uuid), served by the status index)."""
    query = select(Photo).where(Photo.status == PhotoStatus.pending)
    if after is not None:
        cursor = select(Photo.created_at, Photo.uuid).where(Photo.uuid == after).subquery()
        query = query.where(
            tuple_(Photo.created_at, Photo.uuid)
            > select(cursor.c.created_at, cursor.c.uuid).scalar_subquery()
        )
    return list(session.scalars(query.order_by(Photo.created_at, Photo.uuid).limit(limit)))


def newest_photos(session: Session, limit: int) -> list[Photo]:
    """The ``limit`` newest photos, their thumbnails loaded."""
    return list(
        session.scalars(
            select(Photo)
            .options(selectinload(Photo.thumbnails))
            .order_by(Photo.created_at.desc(), Photo.uuid)
            .limit(limit)
        )
    )


def find_photo(session: Session, photo_uuid: uuid.UUID) -> Photo | None:
    """The photo with this uuid, its thumbnails loaded; None if there is none."""
    return session.scalars(
        select(Photo).options(selectinload(Photo.thumbnails)).where(Photo.uuid == photo_uuid)
    ).first()


MAX_URL_LENGTH = 2048


class InvalidURLs(ValueError):
    """Some of the URLs given cannot be photos' addresses; ``invalid`` lists them."""

    def __init__(self, invalid: list[object]) -> None:
        super().__init__(
            f"not http(s) URLs with a host (at most {MAX_URL_LENGTH} characters, no control characters)"
        )
        self.invalid = invalid


def _is_photo_url(url: object) -> bool:
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH or not url.isprintable():
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a port that is not one
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def check_urls(urls: Sequence[object]) -> list[str]:
    """The URLs as photos' addresses, or :class:`InvalidURLs` naming every one
    that is not an http(s) URL with a host. Whether its address may be
    downloaded from is the consumer's check, at download time."""
    invalid = [u for u in urls if not _is_photo_url(u)]
    if invalid:
        raise InvalidURLs(invalid)
    return [str(u) for u in urls]


def add_photos(factory: SessionFactory, urls: Sequence[str]) -> list[uuid.UUID]:
    """A pending photo for each URL, in order; :class:`InvalidURLs` (and none
    added) when any is not a photo's address."""
    urls = check_urls(urls)
    with unit_of_work(factory) as session:
        return list(session.scalars(insert(Photo).returning(Photo.uuid), [{"url": u} for u in urls]))


# --- the consumer side ----------------------------------------------------


class Settled(StrEnum):
    """What became of a photo whose message needs nothing more."""

    completed = "completed"
    failed = "failed"
    # Another consumer took the photo over; its outcome stands.
    lease_lost = "lease lost"
    unknown_photo = "unknown photo"
    already_pending = "already pending"
    already_processing = "already processing"
    already_completed = "already completed"
    already_failed = "already failed"

    @classmethod
    def already(cls, status: PhotoStatus) -> Settled:
        """A photo found in ``status`` by a message that has nothing to do."""
        return cls(f"already {status.value}")


@dataclass(frozen=True)
class Done:
    """Nothing more to do for this message: ack it."""

    outcome: Settled


@dataclass(frozen=True)
class RetryLater:
    """Publish the message again after ``delay`` seconds, then ack it."""

    delay: float
    reason: str


Outcome = Done | RetryLater


def photo_retry_policy(settings: Settings) -> RetryPolicy:
    """How often a photo is tried, and how long it waits on the delay queue
    between two tries."""
    return RetryPolicy(
        max_attempts=settings.max_attempts, base_delay=settings.retry_base_delay, max_delay=MAX_RETRY_DELAY
    )


@dataclass(frozen=True)
class Claim:
    url: str
    original_path: str | None
    renditions: list[str]
    attempts: int
    locked: bool = False  # this claim holds the photo's advisory lock


Fetcher = Callable[[str], bytes]


@dataclass
class Processor:
    """Processes one photo message, start to finish.

    Raises only for the database being unavailable (the caller keeps the message
    and tries again) and for bugs; every other failure becomes an Outcome.
    """

    factory: SessionFactory
    storage: Storage
    fetcher: Fetcher
    locks: PhotoLocks
    lease_seconds: float
    max_pixels: int
    retry_policy: RetryPolicy  # its attempts bound the claims of a photo, its delays the retries
    owner: uuid.UUID = field(default_factory=uuid.uuid4)
    metrics: ProcessingMetrics = field(default_factory=ProcessingMetrics)
    # Photos whose last handling here ended without an outcome (the database
    # went away): objects it stored may be named by no row.
    _interrupted: set[uuid.UUID] = field(default_factory=set, repr=False)

    def handle(self, message: PhotoMessage, *, redelivered: bool = False) -> Outcome:
        """``redelivered``: RabbitMQ delivered this message before, to a
        consumer whose channel closed without settling it."""
        photo_uuid = message.photo_uuid
        claim = self.claim(photo_uuid, redelivered=redelivered)
        if not isinstance(claim, Claim):
            return claim
        try:
            outcome = self._process(photo_uuid, claim)
        except BaseException:
            self._interrupted.add(photo_uuid)
            raise
        finally:
            if claim.locked:
                self.locks.release(photo_uuid)  # after the outcome is committed
        return outcome

    def _process(self, photo_uuid: uuid.UUID, claim: Claim) -> Outcome:
        made = self._make(photo_uuid, claim)
        if not isinstance(made, list):
            return made
        for recipe, image in made:
            if image.warning is not None:
                log.warning(
                    "rendition made with a caveat",
                    extra={"photo": str(photo_uuid), "rendition": recipe.name, "reason": image.warning},
                )
        return self._store(photo_uuid, claim, made)

    def _make(self, photo_uuid: uuid.UUID, claim: Claim) -> list[tuple[renditions.Recipe, Encoded]] | Outcome:
        """The renditions of a claimed photo, in memory; or, when they cannot
        be made, the photo failed or its retry scheduled."""
        try:
            recipes = [renditions.by_name(name) for name in claim.renditions]
        except KeyError as exc:
            return self.fail(photo_uuid, f"unknown rendition {exc.args[0]!r}")
        try:
            with self.metrics.stage(Stage.download):
                data = self._original(claim)
            with self.metrics.stage(Stage.render):
                # One recipe's pixels also make the photo's ThumbHash, while in memory.
                source = renditions.placeholder_source(recipes)
                return [(recipe, recipe.make(data, self.max_pixels, recipe is source)) for recipe in recipes]
        except StorageUnavailable as exc:
            return self.postpone(photo_uuid, exc.reason)
        except PermanentError as exc:
            return self.fail(photo_uuid, exc.reason)
        except TransientError as exc:
            if claim.attempts >= self.retry_policy.max_attempts:
                return self.fail(photo_uuid, f"gave up after {claim.attempts} attempts: {exc.reason}")
            return self.retry(photo_uuid, claim.attempts, exc.reason)

    def _store(
        self, photo_uuid: uuid.UUID, claim: Claim, made: list[tuple[renditions.Recipe, Encoded]]
    ) -> Outcome:
        """Stage the files, then complete the photo with their rows (which
        publishes the files); staged files left unpublished are discarded, and
        after a retry what earlier attempts left is pruned."""
        rows: list[dict[str, object]] = []
        files: list[Staged] = []
        try:
            for recipe, image in made:
                key = self.storage.rendition_key(photo_uuid, recipe.name, image.extension)
                with self.metrics.stage(Stage.store):
                    files.append(self.storage.stage(key, image.data))
                rows.append(
                    {
                        "photo_uuid": photo_uuid,
                        "rendition": recipe.name,
                        "width": image.width,
                        "height": image.height,
                        "key": key,
                    }
                )
            thumbhash = next((image.thumbhash for _, image in made if image.thumbhash is not None), None)
            with self.metrics.stage(Stage.commit):
                outcome = self.complete(photo_uuid, rows, files, thumbhash=thumbhash)
        except StorageUnavailable as exc:
            return self.postpone(photo_uuid, exc.reason)
        finally:
            self._discard(photo_uuid, files)
        if outcome == Done(Settled.completed) and claim.attempts > 1:
            # Earlier attempts of this photo may have left objects behind.
            self._prune(photo_uuid, [str(r["key"]) for r in rows] + _some(claim.original_path))
        return outcome

    def _discard(self, photo_uuid: uuid.UUID, files: Sequence[Staged]) -> None:
        """Drop the staged files not published (nothing to do for the others);
        what an outage keeps us from dropping is pruned at the photo's next
        claim or failure."""
        for staged in files:
            try:
                staged.discard()
            except StorageUnavailable as exc:
                log.warning(
                    "could not discard a staged object", extra={"photo": str(photo_uuid), "error": exc.reason}
                )

    def _prune(self, photo_uuid: uuid.UUID, keep: Sequence[str]) -> None:
        try:
            removed = prune_photo(self.storage, photo_uuid, keep)
        except StorageUnavailable as exc:
            log.warning(
                "could not prune stale objects", extra={"photo": str(photo_uuid), "error": exc.reason}
            )
            return
        if removed:
            log.info("stale objects removed", extra={"photo": str(photo_uuid), "keys": removed})

    def claim(self, photo_uuid: uuid.UUID, *, redelivered: bool = False) -> Claim | Outcome:
        """The photo's lock, then its row: a Claim (its lock held, if it could
        be taken, until the caller has committed the outcome), or what to do
        with the message instead. A claim without the lock is one of a
        pending photo or of a lapsed lease, which the conditional UPDATE
        alone decides. Storage that does not answer while the claim prunes
        leaves nothing claimed: RetryLater."""
        try:
            return self._claim(photo_uuid, redelivered=redelivered)
        except StorageUnavailable as exc:
            log.warning("storage unavailable", extra={"photo": str(photo_uuid), "error": exc.reason})
            return RetryLater(self._storage_delay(), exc.reason)

    def _claim(self, photo_uuid: uuid.UUID, *, redelivered: bool) -> Claim | Outcome:
        locked = self.locks.acquire(photo_uuid, wait=redelivered)
        try:
            claimed = self._claim_row(photo_uuid, locked=locked, takeover=locked and redelivered)
        except BaseException:
            if locked:
                self.locks.release(photo_uuid)
            raise
        if isinstance(claimed, Claim):
            return claimed
        if locked:
            self.locks.release(photo_uuid)
        return self._not_claimed(photo_uuid) if claimed is None else claimed

    def _claim_row(self, photo_uuid: uuid.UUID, *, locked: bool, takeover: bool) -> Claim | Outcome | None:
        with transaction(self.factory) as connection:
            row = connection.execute(
                statements.CLAIM,
                {
                    "photo": photo_uuid,
                    "owner": self.owner,
                    "lease_seconds": self.lease_seconds,
                    "locked": locked,
                    "takeover": takeover,
                },
            ).first()
            if row is not None:
                if row.attempts > self.retry_policy.max_attempts:
                    # Taken over from consumers that died holding it, too often.
                    reason = f"gave up after {row.attempts - 1} attempts: the consumer processing it stopped"
                    connection.execute(statements.FAIL, {"photo": photo_uuid, "reason": reason})
                    # A consumer that died between storing its files and
                    # committing left them; the row lock keeps writers out.
                    # An outage raises here and rolls the claim back.
                    prune_photo(self.storage, photo_uuid, _some(row.original_path))
                    log.warning("photo failed", extra={"photo": str(photo_uuid), "outcome": "failed"})
                    return Done(Settled.failed)
                if row.attempts > 1 or row.failure_reason is not None or photo_uuid in self._interrupted:
                    # Not a first attempt (a takeover, a retry, or ours taken
                    # back after the database went away): one before may have
                    # stored objects and not committed the rows naming them.
                    prune_photo(self.storage, photo_uuid, _named(connection, photo_uuid, row.original_path))
                    self._interrupted.discard(photo_uuid)
                log.info("photo claimed", extra={"photo": str(photo_uuid), "attempt": row.attempts})
                return Claim(row.url, row.original_path, list(row.renditions), row.attempts, locked)
        return None

    def _not_claimed(self, photo_uuid: uuid.UUID) -> Outcome:
        with transaction(self.factory) as connection:
            current = connection.execute(statements.STATE, {"photo": photo_uuid}).first()
        if current is None:
            log.warning("message for an unknown photo", extra={"photo": str(photo_uuid)})
            return Done(Settled.unknown_photo)
        status, expires, now = current
        if status == PhotoStatus.processing and expires is not None:
            # Someone holds it. If they finish, the retry finds it completed;
            # if they died, the retry takes it over once the lease runs out.
            return RetryLater(max(0.5, (expires - now).total_seconds() + 0.5), "photo is being processed")
        return Done(Settled.already(status))

    def _original(self, claim: Claim) -> bytes:
        """The photo's bytes: uploaded ones from storage, the others downloaded."""
        if claim.original_path is None:
            data = self.fetcher(claim.url)
            self.metrics.downloaded_bytes.inc(len(data))
            return data
        try:
            return self.storage.read(claim.original_path)
        except MissingObject:
            raise PermanentError("the uploaded original is missing from storage") from None

    def close(self) -> None:
        """Close the database connections pooled for this processor, and with
        them let go of every lock."""
        self.factory.dispose()
        self.locks.close()

    def keep_locks(self) -> None:
        """Take the locks again if their connection dropped (photos.locks)."""
        self.locks.refresh()

    def renew_lease(self, photo_uuid: uuid.UUID) -> bool:
        with transaction(self.factory) as connection:
            renewed = connection.execute(
                statements.RENEW,
                {"photo": photo_uuid, "owner": self.owner, "lease_seconds": self.lease_seconds},
            )
            return renewed.first() is not None

    def give_back(self, photo_uuid: uuid.UUID) -> bool:
        """Release a photo this processor holds but will not finish (its
        consumer is stopping): pending again at once, so the redelivered
        message is taken over without waiting out the lease. The attempt still
        counts. Whatever the abandoned work does later finds the lease gone and
        writes nothing."""
        with transaction(self.factory) as connection:
            released = connection.execute(
                statements.GIVE_BACK,
                {
                    "photo": photo_uuid,
                    "owner": self.owner,
                    "reason": "the consumer processing it was stopped before finishing; it will be tried again",
                },
            )
            return released.first() is not None

    def complete(
        self,
        photo_uuid: uuid.UUID,
        rows: list[dict[str, object]],
        files: Sequence[Staged] = (),
        *,
        thumbhash: bytes | None = None,
    ) -> Outcome:
        """Publish ``files`` and record ``rows`` (and the photo's ThumbHash),
        only while this processor holds the photo: files reach their names
        under the photo's row lock, so one whose lease was taken over never
        replaces its successor's files."""
        with transaction(self.factory) as connection:
            # One statement: the photo completed (which takes its row lock)
            # if we still hold it, and its thumbnail rows upserted.
            held = connection.execute(
                statements.COMPLETE,
                {
                    "photo": photo_uuid,
                    "owner": self.owner,
                    "names": [r["rendition"] for r in rows],
                    "widths": [r["width"] for r in rows],
                    "heights": [r["height"] for r in rows],
                    "paths": [r["key"] for r in rows],
                    "thumbhash": thumbhash,
                },
            ).first()
            if held is None:
                # Our lease ran out and another consumer took the photo over:
                # its outcome stands, our files are discarded unpublished.
                log.warning("lease lost before completing", extra={"photo": str(photo_uuid)})
                return Done(Settled.lease_lost)
            for staged in files:
                staged.publish()  # raising rolls the rows back
        return Done(Settled.completed)

    def fail(self, photo_uuid: uuid.UUID, reason: str) -> Outcome:
        try:
            with transaction(self.factory) as connection:
                failed = connection.execute(
                    statements.FAIL_HELD, {"photo": photo_uuid, "owner": self.owner, "reason": reason[:2000]}
                ).first()
                if failed is None:
                    # Our lease ran out (or the photo was given back): whoever has
                    # the photo now decides its outcome.
                    log.warning(
                        "lease lost before failing", extra={"photo": str(photo_uuid), "reason": reason}
                    )
                    return Done(Settled.lease_lost)
                # Objects of attempts that died without committing; under the
                # row lock, so no writer publishes meanwhile. An outage rolls
                # the failure back: the photo is tried again later.
                prune_photo(self.storage, photo_uuid, _some(failed.original_path))
        except StorageUnavailable as exc:
            return self.postpone(photo_uuid, exc.reason)
        log.warning("photo failed", extra={"photo": str(photo_uuid), "outcome": "failed", "reason": reason})
        return Done(Settled.failed)

    def postpone(self, photo_uuid: uuid.UUID, reason: str) -> Outcome:
        """Give back a photo the storage kept us from finishing: pending again,
        its attempt refunded (our outage must not use up the photo's
        attempts), to be tried again after a delay."""
        with transaction(self.factory) as connection:
            connection.execute(
                statements.POSTPONE,
                {
                    "photo": photo_uuid,
                    "owner": self.owner,
                    "reason": f"storage unavailable, retrying: {reason}",
                },
            )
        log.warning(
            "storage unavailable", extra={"photo": str(photo_uuid), "outcome": "retry", "reason": reason}
        )
        return RetryLater(self._storage_delay(), reason)

    def _storage_delay(self) -> float:
        return self.retry_policy.delay(STORAGE_RETRY_STEP)

    def retry(self, photo_uuid: uuid.UUID, attempts: int, reason: str) -> Outcome:
        delay = self.retry_policy.delay(attempts)
        with transaction(self.factory) as connection:
            connection.execute(
                statements.RELEASE,
                {
                    "photo": photo_uuid,
                    "owner": self.owner,
                    "reason": f"attempt {attempts} failed, retrying: {reason}",
                },
            )
        log.info(
            "photo will be retried",
            extra={"photo": str(photo_uuid), "delay": round(delay, 2), "reason": reason},
        )
        return RetryLater(delay, reason)

    def fail_dead_letter(self, photo_uuid: uuid.UUID, reason: str) -> Outcome:
        """A message that exhausted its deliveries: its photo fails, unless it got
        done in the meantime (Done, nothing changed) or a live consumer holds it
        (RetryLater: the message goes back to the work queue, where the holder's
        outcome, or the attempts bound if it dies, settles the photo)."""
        try:
            with transaction(self.factory) as connection:
                row = connection.execute(statements.STATE_LOCKED, {"photo": photo_uuid}).first()
                if row is None:
                    return Done(Settled.unknown_photo)
                if row.status in (PhotoStatus.completed, PhotoStatus.failed):
                    return Done(Settled.already(row.status))
                expires, now = row.lease_expires_at, row.now
                if row.status == PhotoStatus.processing and expires is not None and expires > now:
                    return RetryLater((expires - now).total_seconds() + 0.5, "photo is being processed")
                connection.execute(statements.FAIL, {"photo": photo_uuid, "reason": reason[:2000]})
                prune_photo(self.storage, photo_uuid, _some(row.original_path))
        except StorageUnavailable as exc:
            # Not failed: the dead letter goes back to the work queue meanwhile.
            log.warning("storage unavailable", extra={"photo": str(photo_uuid), "error": exc.reason})
            return RetryLater(STORAGE_RETRY_SECONDS, exc.reason)
        log.warning("photo failed", extra={"photo": str(photo_uuid), "outcome": "failed", "reason": reason})
        return Done(Settled.failed)


def _some(key: str | None) -> list[str]:
    return [] if key is None else [key]


def _named(connection: Connection, photo_uuid: uuid.UUID, original: str | None) -> list[str]:
    """The keys the photo's rows name: its thumbnails and its upload original."""
    return [*connection.scalars(statements.NAMED, {"photo": photo_uuid}), *_some(original)]
