"""The pipeline's promises, in process: real Postgres, RabbitMQ, photo hosts and
files; the consumer's Worker runs on a thread of the test (the fault tests in
test_faults.py run ``python -m consumer`` processes instead).

Every test ends with the invariant of tests/support/invariants.py.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from consumer.worker import Worker, build_processor, build_worker
from photos import pipeline
from photos.config import Settings
from photos.db import SessionFactory, unit_of_work
from photos.messages import BrokerUnavailable, PhotoMessage
from photos.models import Photo, PhotoStatus
from photos.pipeline import Done, Processor, RetryLater, Settled
from photos.queue import Publisher, Topology
from photos.storage import open_storage
from tests.support import images
from tests.support.invariants import assert_settled, check_rows_and_files
from tests.support.photo_host import Behaviour, Gate, PhotoHost, flaky, serve_bytes, status
from tests.support.services import Broker, unreachable_amqp_uri
from tests.support.storage import BOTH_BACKENDS, read_stored, stored_keys
from tests.support.wait import wait_for

JPEG = images.jpeg(640, 480)

pytestmark = BOTH_BACKENDS


@dataclass
class ThreadedConsumer:
    """The consumer's Worker, as ``python -m consumer`` builds it, on a thread."""

    worker: Worker
    thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self.worker.run, daemon=True)
        self.thread.start()

    def terminate(self) -> None:
        if self.thread.is_alive():
            self.worker.stop()
            self.thread.join(30)
            assert not self.thread.is_alive(), "the consumer did not stop"


StartConsumer = Callable[..., ThreadedConsumer]


@pytest.fixture
def start_consumer(settings: Settings, broker: Broker) -> Iterator[StartConsumer]:
    started: list[ThreadedConsumer] = []

    def start(**changes: object) -> ThreadedConsumer:
        consumer = ThreadedConsumer(build_worker(settings.with_(**changes)))
        started.append(consumer)
        return consumer

    yield start
    for consumer in started:
        consumer.terminate()


def add(factory: SessionFactory, urls: list[str]) -> list[uuid.UUID]:
    return pipeline.add_photos(factory, urls)


def queue(settings: Settings, factory: SessionFactory, photos: list[uuid.UUID]) -> None:
    publisher = Publisher(settings.amqp_uri, Topology(settings.queue_name))
    try:
        result = pipeline.queue_photos(factory, publisher, photos)
    finally:
        publisher.close()
    assert result.queued == photos


def processor(settings: Settings, factory: SessionFactory, **changes: object) -> Processor:
    return build_processor(settings.with_(**changes), factory)


def set_columns(factory: SessionFactory, photo_uuid: uuid.UUID, **values: object) -> None:
    """Put a photo's row in a state a test starts from."""
    with unit_of_work(factory) as session:
        session.execute(update(Photo).where(Photo.uuid == photo_uuid).values(**values))


# A lease that ran out a second ago.
LEASE_OVER = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 1)


def unreachable_publisher(settings: Settings) -> Publisher:
    return Publisher(unreachable_amqp_uri(), Topology(settings.queue_name), timeout=2.0)


def photo(factory: SessionFactory, photo_uuid: uuid.UUID) -> Photo:
    with unit_of_work(factory) as session:
        found = session.get(Photo, photo_uuid)
        assert found is not None
        return found


# --- the normal path, retries, failures -------------------------------------------


def test_queued_photos_are_completed_with_one_thumbnail_each(
    settings: Settings,
    session_factory: SessionFactory,
    broker: Broker,
    photo_host: PhotoHost,
    start_consumer: StartConsumer,
) -> None:
    urls = [photo_host.add(f"{i}.jpg", serve_bytes(images.jpeg(400 + i * 40, 300))) for i in range(5)]
    photos = add(session_factory, urls)
    consumer = start_consumer()
    queue(settings, session_factory, photos)
    outcomes = assert_settled(session_factory, broker, settings, photos, consumers=[consumer])
    assert {o.status for o in outcomes.values()} == {PhotoStatus.completed}
    assert {o.attempts for o in outcomes.values()} == {1}


def test_a_host_answering_503_twice_is_retried_and_the_photo_completed(
    settings: Settings,
    session_factory: SessionFactory,
    broker: Broker,
    photo_host: PhotoHost,
    start_consumer: StartConsumer,
) -> None:
    [p] = add(session_factory, [photo_host.add("flaky.jpg", flaky(2, serve_bytes(JPEG)))])
    consumer = start_consumer()
    queue(settings, session_factory, [p])
    outcome = assert_settled(session_factory, broker, settings, [p], consumers=[consumer])[p]
    assert (outcome.status, outcome.attempts) == (PhotoStatus.completed, 3)
    assert outcome.reason is None
    assert photo_host.requests == ["/flaky.jpg"] * 3


def test_a_404_fails_at_once_with_the_reason(
    settings: Settings,
    session_factory: SessionFactory,
    broker: Broker,
    photo_host: PhotoHost,
    start_consumer: StartConsumer,
) -> None:
    [p] = add(session_factory, [photo_host.add("gone.jpg", status(404))])
    consumer = start_consumer()
    queue(settings, session_factory, [p])
    outcome = assert_settled(session_factory, broker, settings, [p], consumers=[consumer])[p]
    assert (outcome.status, outcome.attempts) == (PhotoStatus.failed, 1)
    assert outcome.reason == "the photo host answered HTTP 404"
    assert photo_host.requests == ["/gone.jpg"]


def test_retries_are_bounded_and_the_reason_names_the_attempts(
    settings: Settings,
    session_factory: SessionFactory,
    broker: Broker,
    photo_host: PhotoHost,
    start_consumer: StartConsumer,
) -> None:
    [p] = add(session_factory, [photo_host.add("down.jpg", status(503))])
    consumer = start_consumer(max_attempts=3)
    queue(settings, session_factory, [p])
    outcome = assert_settled(session_factory, broker, settings, [p], consumers=[consumer])[p]
    assert outcome.status == PhotoStatus.failed
    assert outcome.reason == "gave up after 3 attempts: the photo host answered HTTP 503"
    assert photo_host.requests == ["/down.jpg"] * 3


# --- hostile photos through the whole pipeline --------------------------------------


def cmyk() -> bytes:
    return images.encode(images.photo(640, 480).convert("CMYK"), "JPEG")


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"", "image/jpeg", "the download was empty (0 bytes)"),
        (b"<html><body>Sorry, this photo is private</body></html>", "image/jpeg", "not an image"),
        (JPEG[: len(JPEG) // 2], "image/jpeg", "corrupt or truncated"),
        (images.encode(images.photo(64, 64), "EPS"), "image/jpeg", "not an image"),
        (images.encode(images.photo(64, 64), "PDF"), "image/jpeg", "not an image"),
    ],
    ids=["empty", "html", "truncated", "eps", "pdf"],
)
def test_a_download_that_is_not_a_usable_image_fails_with_a_reason(
    settings: Settings,
    session_factory: SessionFactory,
    photo_host: PhotoHost,
    body: bytes,
    content_type: str,
    reason: str,
) -> None:
    [p] = add(session_factory, [photo_host.add("bad.jpg", serve_bytes(body, content_type))])
    assert processor(settings, session_factory).handle(PhotoMessage(p)) == Done(Settled.failed)
    outcome = check_rows_and_files(session_factory, settings, [p])[p]
    assert outcome.status == PhotoStatus.failed
    assert outcome.reason is not None and reason in outcome.reason


@pytest.mark.parametrize(
    ("body", "size"),
    [
        (images.jpeg(480, 640, orientation=6), (240, 320)),
        (cmyk(), (320, 240)),
        (images.png(640, 320, mode="P"), (320, 160)),
        (
            images.encode(
                images.photo(300, 200), "GIF", save_all=True, append_images=[images.photo(300, 200, seed=2)]
            ),
            (300, 200),
        ),
    ],
    ids=["exif-rotated", "cmyk", "palette", "animated-gif"],
)
def test_unusual_photos_are_completed_at_their_displayed_size(
    settings: Settings,
    session_factory: SessionFactory,
    photo_host: PhotoHost,
    body: bytes,
    size: tuple[int, int],
) -> None:
    [p] = add(session_factory, [photo_host.add("odd", serve_bytes(body))])
    assert processor(settings, session_factory).handle(PhotoMessage(p)) == Done(Settled.completed)
    check_rows_and_files(session_factory, settings, [p])
    [thumb] = stored_keys(settings)
    assert images.decode(read_stored(settings, thumb)).size == size


def test_a_photo_over_the_pixel_limit_fails_before_decoding(
    settings: Settings, session_factory: SessionFactory, photo_host: PhotoHost
) -> None:
    [p] = add(session_factory, [photo_host.add("big.jpg", serve_bytes(images.jpeg(2000, 1500)))])
    assert processor(settings, session_factory, max_image_pixels=1_000_000).handle(PhotoMessage(p)) == Done(
        Settled.failed
    )
    outcome = check_rows_and_files(session_factory, settings, [p])[p]
    assert outcome.reason == "image is 2000x1500, more than the limit of 1000000 pixels"


# --- two consumers on one photo -----------------------------------------------------


def test_a_second_delivery_while_the_first_is_processing_waits_and_then_does_nothing(
    settings: Settings, session_factory: SessionFactory, photo_host: PhotoHost
) -> None:
    gate = Gate(serve_bytes(JPEG))
    [p] = add(session_factory, [photo_host.add("slow.jpg", gate)])
    first, second = processor(settings, session_factory), processor(settings, session_factory)
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(first.handle(PhotoMessage(p))))
    thread.start()
    gate.wait_arrived()
    retry = second.handle(PhotoMessage(p))
    assert isinstance(retry, RetryLater)
    assert 0.5 <= retry.delay <= settings.lease_seconds + 0.5
    gate.opened.set()
    thread.join(10)
    assert results == [Done(Settled.completed)]
    assert second.handle(PhotoMessage(p)) == Done(Settled.already_completed)
    check_rows_and_files(session_factory, settings, [p])
    assert photo_host.requests == ["/slow.jpg"]


def expire_lease(factory: SessionFactory, photo_uuid: uuid.UUID) -> None:
    """What time does to a consumer that stopped renewing its lease (it hangs,
    or it was SIGSTOPped): the lease is in the past."""
    set_columns(factory, photo_uuid, lease_expires_at=LEASE_OVER)


@pytest.mark.parametrize(
    ("stalled_gets", "successor_gets", "successor_outcome", "final_status", "final_reason"),
    [
        (
            serve_bytes(JPEG),
            serve_bytes(images.jpeg(300, 600)),
            Settled.completed,
            PhotoStatus.completed,
            None,
        ),
        (status(404), serve_bytes(images.jpeg(300, 600)), Settled.completed, PhotoStatus.completed, None),
        (
            serve_bytes(JPEG),
            status(404),
            Settled.failed,
            PhotoStatus.failed,
            "the photo host answered HTTP 404",
        ),
    ],
    ids=["stalled-one-completes-late", "stalled-one-fails-late", "successor-fails"],
)
def test_a_consumer_whose_lease_was_taken_over_changes_nothing_when_it_wakes(
    settings: Settings,
    session_factory: SessionFactory,
    photo_host: PhotoHost,
    stalled_gets: Behaviour,
    successor_gets: Behaviour,
    successor_outcome: Settled,
    final_status: PhotoStatus,
    final_reason: str | None,
) -> None:
    """The first consumer stalls past its lease; a second takes the photo over
    and settles it (from a newer version of the photo, or with a 404). Then the
    first gets its answer: whatever it is, it must not replace the second one's
    file, fail a completed photo, or leave a file beside a failed one."""
    gate = Gate(stalled_gets)
    [p] = add(session_factory, [photo_host.add("v.jpg", gate)])
    stalled, successor = processor(settings, session_factory), processor(settings, session_factory)
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(stalled.handle(PhotoMessage(p))))
    thread.start()
    gate.wait_arrived()
    expire_lease(session_factory, p)
    photo_host.add("v.jpg", successor_gets)
    assert successor.handle(PhotoMessage(p)) == Done(successor_outcome)
    gate.opened.set()
    thread.join(10)
    assert results == [Done(Settled.lease_lost)]
    outcome = check_rows_and_files(session_factory, settings, [p])[p]
    assert (outcome.status, outcome.reason, outcome.attempts) == (final_status, final_reason, 2)
    thumbs = stored_keys(settings)
    assert [images.decode(read_stored(settings, t)).size for t in thumbs] == (
        [(160, 320)] if final_status == PhotoStatus.completed else []
    )


def test_files_of_an_attempt_that_died_before_committing_go_when_the_photo_fails(
    settings: Settings, session_factory: SessionFactory, photo_host: PhotoHost
) -> None:
    """A consumer killed after writing its file and before committing leaves a
    file no row names; if the photo then fails, that file must go too."""
    [p] = add(session_factory, [photo_host.add("p.jpg", serve_bytes(JPEG))])
    storage = open_storage(settings)
    storage.write(storage.rendition_key(p, "fit-320", "jpg"), JPEG)
    set_columns(
        session_factory,
        p,
        status=PhotoStatus.processing,
        attempts=settings.max_attempts,
        lease_owner=uuid.uuid4(),
        lease_expires_at=LEASE_OVER,
    )
    assert processor(settings, session_factory).handle(PhotoMessage(p)) == Done(Settled.failed)
    outcome = check_rows_and_files(session_factory, settings, [p])[p]
    assert (
        outcome.reason
        == f"gave up after {settings.max_attempts} attempts: the consumer processing it stopped"
    )


@pytest.mark.parametrize("redelivered", [False, True], ids=["lease-ran-out", "lock-free-on-redelivery"])
def test_objects_of_an_attempt_that_died_before_committing_go_when_the_photo_is_taken_over(
    settings: Settings, session_factory: SessionFactory, photo_host: PhotoHost, redelivered: bool
) -> None:
    """A consumer killed after storing its rendition and before committing
    leaves an object no row names (on S3 under a name of its own, which the
    next attempt does not overwrite); the consumer that takes the photo over
    removes it, and completes the photo with an object of its own."""
    [p] = add(session_factory, [photo_host.add("p.jpg", serve_bytes(JPEG))])
    storage = open_storage(settings)
    left = storage.rendition_key(p, "fit-320", "jpg")
    storage.write(left, b"the dead consumer's bytes")
    storage.write(f"{str(p)[:2]}/{p}/fit-320.0123456789abcdef.jpg", b"an older attempt's")
    set_columns(
        session_factory,
        p,
        status=PhotoStatus.processing,
        attempts=1,
        lease_owner=uuid.uuid4(),
        lease_expires_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, 60) if redelivered else LEASE_OVER,
    )
    successor = processor(settings, session_factory)
    assert successor.handle(PhotoMessage(p), redelivered=redelivered) == Done(Settled.completed)
    outcome = check_rows_and_files(session_factory, settings, [p])[p]
    assert (outcome.status, outcome.attempts) == (PhotoStatus.completed, 2)
    [kept] = stored_keys(settings)
    assert images.decode(read_stored(settings, kept)).size == (320, 240)


def test_a_photo_left_processing_without_a_lease_is_taken_over(
    settings: Settings, session_factory: SessionFactory, photo_host: PhotoHost
) -> None:
    [p] = add(session_factory, [photo_host.add("p.jpg", serve_bytes(JPEG))])
    set_columns(session_factory, p, status=PhotoStatus.processing)
    assert processor(settings, session_factory).handle(PhotoMessage(p)) == Done(Settled.completed)
    check_rows_and_files(session_factory, settings, [p])


# --- POST /photos/process with many UUIDs -------------------------------------------


def test_ten_thousand_uuids_with_duplicates_and_unknowns_in_one_request(
    client: FlaskClient, session_factory: SessionFactory, broker: Broker
) -> None:
    known = add(session_factory, [f"http://127.0.0.1/{i}.jpg" for i in range(9_000)])
    unknown = [uuid.uuid4() for _ in range(500)]
    body = [str(u) for u in known + unknown + known[:500]]
    assert len(body) == 10_000
    started = time.monotonic()
    response = client.post("/photos/process", json=body)
    elapsed = time.monotonic() - started
    assert response.status_code == 202
    answer = response.get_json()
    assert answer["queued"] == [str(u) for u in known]
    assert answer["not_found"] == [str(u) for u in unknown]
    assert answer["not_eligible"] == []
    assert wait_for(lambda: broker.depth() == 9_000, timeout=10)
    assert elapsed < 20, f"10,000 UUIDs took {elapsed:.1f}s"


def test_photos_are_left_as_they_were_when_their_messages_are_not_published(
    settings: Settings, session_factory: SessionFactory
) -> None:
    pending, failed = add(session_factory, ["http://127.0.0.1/a.jpg", "http://127.0.0.1/b.jpg"])
    set_columns(
        session_factory,
        failed,
        status=PhotoStatus.failed,
        attempts=3,
        failure_reason="the photo host answered HTTP 404",
        queued_at=datetime(2024, 5, 1, tzinfo=UTC),
    )
    columns = ("status", "attempts", "failure_reason", "queued_at", "updated_at")
    before = {p: [getattr(photo(session_factory, p), c) for c in columns] for p in (pending, failed)}
    with pytest.raises(BrokerUnavailable):
        pipeline.queue_photos(session_factory, unreachable_publisher(settings), [pending, failed])
    after = {p: [getattr(photo(session_factory, p), c) for c in columns] for p in (pending, failed)}
    assert after == before
    assert before[pending][3] is None


def test_ten_thousand_photos_are_all_put_back_when_the_broker_is_down(
    settings: Settings, session_factory: SessionFactory
) -> None:
    photos = add(session_factory, [f"http://127.0.0.1/{i}.jpg" for i in range(10_000)])
    with pytest.raises(BrokerUnavailable):
        pipeline.queue_photos(session_factory, unreachable_publisher(settings), photos)
    with unit_of_work(session_factory) as session:
        states = session.execute(
            select(Photo.status, func.count()).where(Photo.queued_at.is_(None)).group_by(Photo.status)
        ).all()
    assert states == [(PhotoStatus.pending, 10_000)]
