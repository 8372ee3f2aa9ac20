"""A TCP server that accepts connections and never says a word: a backend that
hangs (a stopped Postgres, a wedged broker), as opposed to one that refuses."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def hanging_server() -> Iterator[int]:
    """The port of a server on 127.0.0.1 that accepts and holds every
    connection without reading or writing, until the block ends."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    # accept() wakes up now and then to see whether to stop: closing the
    # socket from another thread does not interrupt it.
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            held.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for connection in held:
            connection.close()
