"""Helpers for the upload and task tests: base64, the queue's messages, the
files under the thumbs directory, and a consumer's work done in-process."""

from __future__ import annotations

import base64
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from photos import pipeline
from photos.config import Settings
from photos.db import SessionFactory, unit_of_work
from photos.errors import PermanentError
from photos.locks import PhotoLocks, make_lock_engine
from photos.messages import PhotoMessage
from photos.models import Photo
from photos.storage import open_storage
from tests.support.services import Broker
from web import create_app


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def drain(broker: Broker) -> list[PhotoMessage]:
    """Every message ready on the work queue, taken off it."""
    messages: list[PhotoMessage] = []
    with broker.channel() as channel:
        while True:
            method, _props, body = channel.basic_get(broker.topology.queue, auto_ack=True)
            if method is None:
                return messages
            messages.append(PhotoMessage.decode(body))


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def photos_in(factory: SessionFactory) -> list[Photo]:
    with unit_of_work(factory) as session:
        return list(session.scalars(select(Photo)))


def _no_download(url: str) -> bytes:
    raise PermanentError(f"an upload was downloaded from {url}")


def processor(settings: Settings, factory: SessionFactory) -> pipeline.Processor:
    """The consumer's processor; uploads are never downloaded, so a download
    fails the photo (and the test)."""
    return pipeline.Processor(
        factory=factory,
        storage=open_storage(settings),
        fetcher=_no_download,
        locks=PhotoLocks(make_lock_engine(settings.pg_uri)),
        lease_seconds=settings.lease_seconds,
        max_pixels=settings.max_image_pixels,
        retry_policy=pipeline.photo_retry_policy(settings),
    )


def process_queued(settings: Settings, factory: SessionFactory, broker: Broker) -> list[pipeline.Outcome]:
    """What a consumer does with every message on the queue, in this process."""
    worker = processor(settings, factory)
    return [worker.handle(message) for message in drain(broker)]


class AppClients:
    """Clients of apps built on the test's settings with some of them changed."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._apps: list[Flask] = []

    def __call__(self, **changes: object) -> FlaskClient:
        app = create_app(self.settings.with_(**changes))
        app.config["TESTING"] = True
        self._apps.append(app)
        return app.test_client()

    def close(self) -> None:
        for app in self._apps:
            app.extensions["photos"].close()
