"""A real HTTP server on 127.0.0.1 standing in for the hosts photos come from.

Routes map a path to a behaviour: bytes to serve, a status code, a redirect,
a body that stalls or never ends. Each request is recorded, so a test can
check that a refused URL was never even connected to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.http_server import serve, shut_down

Behaviour = Callable[[BaseHTTPRequestHandler], None]


def serve_bytes(data: bytes, content_type: str = "image/jpeg") -> Behaviour:
    def behaviour(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return behaviour


def status(code: int) -> Behaviour:
    def behaviour(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return behaviour


def redirect(location: str, code: int = 302) -> Behaviour:
    def behaviour(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return behaviour


def drip(interval: float, total: int = 10_000) -> Behaviour:
    """Headers at once, then one byte every ``interval`` seconds."""

    def behaviour(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Content-Length", str(total))
        handler.end_headers()
        try:
            for _ in range(total):
                handler.wfile.write(b"\xff")
                handler.wfile.flush()
                time.sleep(interval)
        except OSError:
            pass

    return behaviour


def endless(chunk: int = 64 * 1024) -> Behaviour:
    """A body without a length that never ends."""

    def behaviour(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.end_headers()
        block = b"\0" * chunk
        try:
            while True:
                handler.wfile.write(block)
        except OSError:
            pass

    return behaviour


def gated(gate: threading.Event, then: Behaviour, timeout: float = 60.0) -> Behaviour:
    """Holds every request until ``gate`` is set, then behaves as ``then``."""

    def behaviour(handler: BaseHTTPRequestHandler) -> None:
        gate.wait(timeout)
        then(handler)

    return behaviour


class Gate:
    """A behaviour that holds each request (not even its headers are sent)
    until :attr:`opened` is set, then answers with the next of ``answers``, in
    order, and with ``then`` once they have run out (no ``then``: a request
    beyond the answers fails the handler). Counts the requests that arrived."""

    def __init__(self, *answers: Behaviour, then: Behaviour | None = None, timeout: float = 60.0) -> None:
        self.answers = list(answers)
        self.then = then
        self.timeout = timeout
        self.arrivals = 0
        self.arrived = threading.Semaphore(0)
        self.opened = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.arrivals += 1
            answer = self.answers.pop(0) if self.answers else self.then
        self.arrived.release()
        self.opened.wait(self.timeout)
        assert answer is not None, "a request beyond the answers the test gave"
        answer(handler)

    def wait_arrived(self, timeout: float = 10.0, what: str = "the request never came") -> None:
        """Returns once one more request has arrived."""
        assert self.arrived.acquire(timeout=timeout), what


def flaky(failures: int, then: Behaviour, code: int = 503) -> Behaviour:
    """Answers ``code`` ``failures`` times, then behaves as ``then``."""
    count = {"n": 0}
    lock = threading.Lock()

    def behaviour(handler: BaseHTTPRequestHandler) -> None:
        with lock:
            count["n"] += 1
            failing = count["n"] <= failures
        if failing:
            status(code)(handler)
        else:
            then(handler)

    return behaviour


@dataclass
class PhotoHost:
    host: str = "127.0.0.1"
    routes: dict[str, Behaviour] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}/{path.lstrip('/')}"

    def add(self, path: str, behaviour: Behaviour) -> str:
        self.routes["/" + path.lstrip("/")] = behaviour
        return self.url(path)

    def start(self) -> PhotoHost:
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                host.requests.append(self.path)
                behaviour = host.routes.get(self.path.split("?", 1)[0], status(404))
                behaviour(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = serve(self.host, Handler)
        return self

    def stop(self) -> None:
        shut_down(self._server)
