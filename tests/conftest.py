"""Fixtures: a real Postgres database and real RabbitMQ queues of the test
session's own, fresh tables for every test, and a real local photo host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from photos import db, schema
from photos.config import Settings
from photos.queue import Topology
from tests.support.photo_host import PhotoHost
from tests.support.s3 import MotoS3
from tests.support.services import AMQP_URI, Broker, temporary_database, unique_queue
from web import create_app


@pytest.fixture(scope="session")
def database_uri() -> Iterator[str]:
    with temporary_database() as uri:
        schema.upgrade(uri)
        yield uri


@pytest.fixture(scope="session")
def engine(database_uri: str) -> Iterator[Engine]:
    engine = db.make_engine(database_uri)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> Iterator[db.SessionFactory]:
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE photos, photo_thumbnails, queries, api_keys CASCADE"))
    yield db.make_session_factory(engine)


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """moto's S3 server on a free port of 127.0.0.1, for the whole session."""
    server = MotoS3.start()
    yield server
    server.stop()


@pytest.fixture
def storage_kind(request: pytest.FixtureRequest) -> str:
    """``local`` unless a module runs on both backends
    (``tests.support.storage.BOTH_BACKENDS``)."""
    kind: str = getattr(request, "param", "local")
    return kind


@pytest.fixture
def settings(
    database_uri: str, tmp_path: Path, storage_kind: str, request: pytest.FixtureRequest
) -> Settings:
    """The test's settings; with the S3 backend, a new bucket of its own (and
    a THUMBS_DIR that must stay empty)."""
    thumbs = tmp_path / "thumbs"
    thumbs.mkdir()
    settings = Settings(
        pg_uri=database_uri,
        amqp_uri=AMQP_URI,
        thumbs_dir=thumbs,
        queue_name=unique_queue(),
        allowed_fetch_hosts=frozenset({"127.0.0.1", "localhost"}),
        lease_seconds=3.0,
        retry_base_delay=0.2,
        fetch_total_timeout=5.0,
    )
    if storage_kind == "s3":
        moto: MotoS3 = request.getfixturevalue("moto_s3")
        settings = settings.with_(storage=moto.new_bucket(), s3=moto.client_settings())
    return settings


@pytest.fixture
def broker(settings: Settings) -> Iterator[Broker]:
    broker = Broker(settings.amqp_uri, Topology(settings.queue_name))
    broker.declare()
    yield broker
    broker.delete()


@pytest.fixture
def app(settings: Settings, session_factory: db.SessionFactory, broker: Broker) -> Iterator[Flask]:
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["photos"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def photo_host() -> Iterator[PhotoHost]:
    host = PhotoHost().start()
    yield host
    host.stop()
