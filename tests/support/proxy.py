"""A real TCP proxy between a service process and RabbitMQ (or Postgres), for
faults that need a connection to misbehave at a chosen moment.

Bytes are forwarded unchanged both ways. :meth:`TcpProxy.blackhole_upstream`
then silently drops everything clients send (the broker never sees an ack,
as if it were lost in the network) while answers still come back; when a
client goes away, its upstream connection is closed, so the server sees the
client disconnect exactly as it would without the proxy.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class TcpProxy:
    target: tuple[str, int]
    _server: socket.socket = field(init=False)
    _blackhole: threading.Event = field(default_factory=threading.Event, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    dropped: int = field(default=0, init=False)

    def start(self) -> TcpProxy:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self._spawn(self._accept)
        return self

    @property
    def port(self) -> int:
        return int(self._server.getsockname()[1])

    def blackhole_upstream(self) -> None:
        """From now on, drop what clients send instead of forwarding it."""
        self._blackhole.set()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self._server.close()

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
            self._spawn(self._pump, client, upstream)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        with client, upstream:
            while not self._stop.is_set():
                readable, _, _ = select.select([client, upstream], [], [], 0.1)
                for sock in readable:
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        # Either side hung up: hang up the other, like a real peer.
                        for s in (client, upstream):
                            with contextlib.suppress(OSError):
                                s.shutdown(socket.SHUT_RDWR)
                        return
                    if sock is client:
                        if self._blackhole.is_set():
                            self.dropped += len(data)
                            continue
                        upstream.sendall(data)
                    else:
                        client.sendall(data)
