"""The app's connections, each with one owner and one lifetime: the engine and
the RabbitMQ publishers and query clients live as long as the app (one of each
per thread, as pika connections are not thread-safe); a database session lives for a request."""

from __future__ import annotations

import threading

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from photos import db, imaging, queue
from photos.config import Settings
from photos.health import Readiness
from photos.queue import Publisher, QueueInspector, Topology
from photos.rpc import QueryClient
from photos.storage import Storage, open_storage


class Resources:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = db.make_engine(settings.pg_uri)
        self.session_factory = db.make_session_factory(self.engine)
        self.storage: Storage = open_storage(settings)
        self.topology = Topology(settings.queue_name)
        self.queue_inspector = QueueInspector(settings.amqp_uri)
        self._local = threading.local()
        self._publishers: list[Publisher] = []
        self._query_clients: list[QueryClient] = []
        self._lock = threading.Lock()
        # GET /readyz: one line per backend the service needs.
        self.readiness = Readiness()
        self.readiness.add("database", lambda: db.ping(self.engine))
        self.readiness.add("broker", lambda: queue.ping(settings.amqp_uri))
        # The bucket (or THUMBS_DIR): a missing one or refused credentials say so here.
        self.readiness.add("storage", self.storage.check)
        # Pillow's codecs: a build without one fails those photos, and says so here.
        self.readiness.add("imaging", imaging.check_codecs)

    def publisher(self) -> Publisher:
        publisher: Publisher | None = getattr(self._local, "publisher", None)
        if publisher is None:
            publisher = Publisher(self.settings.amqp_uri, self.topology)
            self._local.publisher = publisher
            with self._lock:
                self._publishers.append(publisher)
        return publisher

    def query_client(self) -> QueryClient:
        client: QueryClient | None = getattr(self._local, "query_client", None)
        if client is None:
            client = QueryClient(self.settings.amqp_uri, self.topology, self.settings.query_timeout)
            self._local.query_client = client
            with self._lock:
                self._query_clients.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            publishers, self._publishers = self._publishers, []
            query_clients, self._query_clients = self._query_clients, []
        for publisher in publishers:
            publisher.close()
        for client in query_clients:
            client.close()
        self.queue_inspector.close()
        self.engine.dispose()


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["photos"] = Resources(settings)
    app.teardown_appcontext(_close_session)


def of(app: Flask) -> Resources:
    resources: Resources = app.extensions["photos"]
    return resources


def get() -> Resources:
    return of(current_app)


def session() -> Session:
    if "db_session" not in g:
        g.db_session = get().session_factory()
    result: Session = g.db_session
    return result


def _close_session(exc: BaseException | None) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        s.close()
