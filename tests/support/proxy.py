"""A real TCP proxy between a service process and RabbitMQ (or Postgres), for
faults that need a connection to misbehave at a chosen moment.

Bytes are forwarded unchanged both ways, until the test says otherwise:

- :meth:`TcpProxy.blackhole_upstream` silently drops everything clients send
  (the broker never sees an ack, as if it were lost in the network) while
  answers still come back;
- :meth:`TcpProxy.hold_replies` keeps what the server sends until
  :meth:`TcpProxy.pass_replies` (the client waits, as on a slow network,
  then reads everything at once);
- :meth:`TcpProxy.cut` closes every connection made so far, as a broker
  restart or a dropped network does; :meth:`TcpProxy.stop` also stops
  listening, so new connections are refused.

When either side goes away, the other is hung up on, so each peer sees the
other disconnect exactly as it would without the proxy.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit


@dataclass
class TcpProxy:
    target: tuple[str, int]
    _server: socket.socket = field(init=False)
    _blackhole: threading.Event = field(default_factory=threading.Event, init=False)
    _holding: threading.Event = field(default_factory=threading.Event, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    _sockets: list[socket.socket] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    dropped: int = field(default=0, init=False)

    @classmethod
    def in_front_of(cls, uri: str, default_port: int) -> TcpProxy:
        """A started proxy to the host and port of ``uri``."""
        parts = urlsplit(uri)
        return cls((parts.hostname or "127.0.0.1", parts.port or default_port)).start()

    def start(self) -> TcpProxy:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self._spawn(self._accept)
        return self

    @property
    def port(self) -> int:
        return int(self._server.getsockname()[1])

    def uri(self, uri: str) -> str:
        """``uri`` (credentials, path and all) reaching its server through the proxy."""
        parts = urlsplit(uri)
        credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{self.port}"))

    def blackhole_upstream(self) -> None:
        """From now on, drop what clients send instead of forwarding it."""
        self._blackhole.set()

    def hold_replies(self) -> None:
        """From now on, keep what the server sends (it waits in the socket)."""
        self._holding.set()

    def pass_replies(self) -> None:
        """Forward what the server sent meanwhile, and everything after."""
        self._holding.clear()

    def cut(self) -> int:
        """Close every connection made so far; returns how many sockets."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        return len(sockets)

    def stop(self) -> None:
        """Close every connection and stop listening: new connections are refused."""
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self._server.close()
        self.cut()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            self._spawn(self._forward, client, upstream)

    def _forward(self, client: socket.socket, upstream: socket.socket) -> None:
        with client, upstream:
            while not self._stop.is_set():
                watched = [client] if self._holding.is_set() else [client, upstream]
                try:
                    readable, _, _ = select.select(watched, [], [], 0.1)
                except (OSError, ValueError):  # cut: the sockets are gone
                    return
                for sock in readable:
                    if not self._pass_on(sock, client, upstream):
                        return

    def _pass_on(self, sock: socket.socket, client: socket.socket, upstream: socket.socket) -> bool:
        """Forward what ``sock`` has; False once either side has hung up."""
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            # Either side hung up: hang up the other, like a real peer.
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            return False
        if sock is client and self._blackhole.is_set():
            self.dropped += len(data)
            return True
        with contextlib.suppress(OSError):
            (upstream if sock is client else client).sendall(data)
        return True
