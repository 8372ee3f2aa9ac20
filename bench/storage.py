"""The S3 backend's cost per photo against the local one, in the same run.

A consumer's :class:`~photos.pipeline.Processor` handles photos end to end
(claim, render the default thumbnail, stage it, the fenced commit that
publishes it) on the benchmark's own Postgres database; the download is the
photo's bytes from memory, so only storage differs between the two sides.
One side writes to a local directory (``O_TMPFILE``, fsync, link), the other
to a bucket of moto's S3 server on 127.0.0.1 (a PUT over HTTP). Photos
alternate local, S3, local, S3, ... so that a busy spell on the machine falls
on both sides, and the figure is the median of the paired differences, per
photo. The storage operations alone (a write and a read of one thumbnail)
are timed the same way beside it.

moto's server runs in a process of its own (as a store would), on a free port
of 127.0.0.1. It is a Python server, slower per request than MinIO or S3: the
figure is an upper bound for a store on the same host.
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bench import corpus
from bench.report import Report
from photos import db, pipeline, schema
from photos.config import Settings
from photos.locks import PhotoLocks, make_lock_engine
from photos.messages import PhotoMessage
from photos.pipeline import Done, Settled
from photos.retry import RetryPolicy
from photos.storage import LocalStorage, Storage, open_storage
from tests.support.s3 import MotoS3
from tests.support.services import temporary_database

GOAL_MS = 5.0


def _processor(uri: str, factory: db.SessionFactory, storage: Storage, data: bytes) -> pipeline.Processor:
    return pipeline.Processor(
        factory=factory,
        storage=storage,
        fetcher=lambda url: data,
        locks=PhotoLocks(make_lock_engine(uri)),
        lease_seconds=60.0,
        max_pixels=100_000_000,
        retry_policy=RetryPolicy(max_attempts=5),
    )


def run(report: Report, rounds: int) -> None:
    photos = max(20, rounds * 4)
    report.section(f"Storage: S3 (moto server on loopback) against local, {photos} photos each, interleaved")
    # A small photo keeps the render short, so that storage is a larger part of each handle.
    buffer = io.BytesIO()
    corpus.photo(1024, 768, seed=11).save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    moto = MotoS3.spawn()
    try:
        with temporary_database() as uri, tempfile.TemporaryDirectory() as work:
            schema.upgrade(uri)
            engine = db.make_engine(uri)
            factory = db.make_session_factory(engine)
            local = LocalStorage(Path(work) / "thumbs")
            local.root.mkdir()
            bucket = open_storage(Settings(storage=moto.new_bucket(), s3=moto.client_settings()))
            sides = {
                "local": _processor(uri, factory, local, data),
                "s3": _processor(uri, factory, bucket, data),
            }
            # Warm both: connections, the statement cache, boto3's first request.
            for processor in sides.values():
                for _ in range(3):
                    _handle(factory, processor)
            times: dict[str, list[float]] = {"local": [], "s3": []}
            for _ in range(photos):
                for name, processor in sides.items():
                    times[name].append(_handle(factory, processor))
            ops: dict[str, list[float]] = {"local": [], "s3": []}
            thumbnail = bucket.read(next(iter(bucket.list_keys())))
            for _ in range(photos):
                for name, storage in (("local", local), ("s3", bucket)):
                    ops[name].append(_write_and_read(storage, thumbnail))
            for processor in sides.values():
                processor.close()
            engine.dispose()
    finally:
        moto.stop()

    for name in ("local", "s3"):
        report.figure(f"per photo, {name} (median)", statistics.median(times[name]) * 1000, "ms")
    extra = statistics.median(s - loc for loc, s in zip(times["local"], times["s3"], strict=True)) * 1000
    for name in ("local", "s3"):
        report.figure(
            f"one thumbnail written and read back, {name} (median)", statistics.median(ops[name]) * 1000, "ms"
        )
    report.goal(
        "S3 backend, extra per photo (median of paired differences)", extra, "≤", GOAL_MS, kind="", unit="ms"
    )


def _handle(factory: db.SessionFactory, processor: pipeline.Processor) -> float:
    [photo] = pipeline.add_photos(factory, ["http://bench.invalid/photo.jpg"])
    start = time.perf_counter()
    outcome = processor.handle(PhotoMessage(photo))
    took = time.perf_counter() - start
    assert outcome == Done(Settled.completed), outcome
    return took


def _write_and_read(storage: Storage, data: bytes) -> float:
    key = storage.rendition_key(uuid.uuid4(), "fit-320", "jpg")
    start = time.perf_counter()
    storage.write(key, data)
    assert storage.read(key) == data
    return time.perf_counter() - start
