"""Workers (the consumer's, the upscaling processor's) run on threads of the test."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol, TypeVar

from tests.support.wait import wait_for


class Runnable(Protocol):
    def run(self) -> None: ...

    def stop(self) -> None: ...


W = TypeVar("W", bound=Runnable)


class WorkerThreads:
    """Starts workers on daemon threads; :meth:`stop_all` stops every one and
    fails the test if one of them does not end within 30 seconds."""

    def __init__(self) -> None:
        self.running: list[tuple[Runnable, threading.Thread]] = []

    def start(self, worker: W, *, ready: Callable[[], object], what: str) -> W:
        """Returns once ``ready()`` is true (``what`` names it), within 15 seconds."""
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        self.running.append((worker, thread))
        wait_for(ready, 15, what=what)
        return worker

    def stop_all(self) -> None:
        for worker, thread in self.running:
            worker.stop()
            thread.join(30)
            assert not thread.is_alive(), f"{type(worker).__name__} did not stop"
