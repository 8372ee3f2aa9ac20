"""Real HTTP servers on 127.0.0.1 standing in for outside services that take
POSTs: the upscaler and the image service. Each request is recorded; how to
answer is a function of the request, so a test can make a service that works,
one that fails a few times first, one that hangs, or one that is down."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

from tests.support.http_server import serve, shut_down
from tests.support.services import closed_port


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"


Responder = Callable[[Request], Reply]


@dataclass
class StubServer:
    respond: Responder
    requests: list[Request] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def received(self) -> list[Request]:
        with self._lock:
            return list(self.requests)

    def start(self) -> StubServer:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = Request("POST", self.path, dict(self.headers.items()), self.rfile.read(length))
                with stub._lock:
                    stub.requests.append(request)
                reply = stub.respond(request)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the client gave up waiting (a timeout under test)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = serve("127.0.0.1", Handler)
        return self

    def stop(self) -> None:
        shut_down(self._server)


def closed_port_url() -> str:
    """A URL nothing listens on: connections to it are refused."""
    return f"http://127.0.0.1:{closed_port()}/"


# --- behaviours ------------------------------------------------------------------


def resizing_upscaler(token: str) -> Responder:
    """Does what the real upscaler does, with Pillow: the PNG resized to exactly
    new_width x new_height. A wrong token is a 401, a malformed request a 400."""

    def respond(request: Request) -> Reply:
        body = request.json()
        if body.get("access_token") != token:
            return Reply(401, b'{"error": "invalid access token"}')
        try:
            width, height = int(str(body["new_width"])), int(str(body["new_height"]))
            image = Image.open(io.BytesIO(base64.b64decode(str(body["base64_image"]))))
            image.load()
        except Exception as exc:
            return Reply(400, json.dumps({"error": str(exc)}).encode())
        out = io.BytesIO()
        image.resize((width, height), Image.Resampling.LANCZOS).save(out, "PNG")
        return Reply(200, json.dumps({"base64_image": base64.b64encode(out.getvalue()).decode()}).encode())

    return respond


def answering(status: int, body: bytes = b"") -> Responder:
    return lambda request: Reply(status, body)


def failing_first(times: int, then: Responder, status: int = 503) -> Responder:
    """Answers ``status`` to the first ``times`` requests, then as ``then``."""
    count = 0
    lock = threading.Lock()

    def respond(request: Request) -> Reply:
        nonlocal count
        with lock:
            count += 1
            failing = count <= times
        return Reply(status, b'{"error": "try again"}') if failing else then(request)

    return respond


def hanging(release: threading.Event, then: Responder | None = None) -> Responder:
    """Never answers until ``release`` is set (then as ``then``, a 503 by default)."""

    def respond(request: Request) -> Reply:
        release.wait(60)
        return then(request) if then is not None else Reply(503)

    return respond
