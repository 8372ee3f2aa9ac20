"""Readiness: a registry of named checks, run together under one deadline.

A check is a function that returns when its backend answers and raises
(anything) when it does not. :meth:`Readiness.run` runs every check at once
and answers within ``timeout`` seconds whatever the backends do: a check still
running at the deadline counts as down ("no answer within ..."), and it keeps
running on its own daemon thread, where the next run waits for it instead of
starting another, so a backend that hangs ties up one thread per check, not
one per request.

Adding a backend is one line where the app wires its checks
(``web.resources.Resources``): ``readiness.add("storage", storage.ping)``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Check = Callable[[], object]

DEFAULT_TIMEOUT = 0.8


@dataclass(frozen=True)
class Report:
    """Each check's result: ``None`` when it answered, else why not, in words."""

    results: dict[str, str | None]

    @property
    def ready(self) -> bool:
        return all(error is None for error in self.results.values())

    @property
    def down(self) -> list[str]:
        return [name for name, error in self.results.items() if error is not None]


class _Run:
    """One run of a check on a daemon thread of its own."""

    def __init__(self, check: Check) -> None:
        self.finished = threading.Event()
        self.error: str | None = None
        self._check = check
        threading.Thread(target=self._run, daemon=True, name="readiness-check").start()

    def _run(self) -> None:
        try:
            self._check()
        except Exception as exc:
            self.error = describe(exc)
        finally:
            self.finished.set()


def describe(exc: BaseException) -> str:
    """The first line of an error, with its type when it says nothing else."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Readiness:
    """Named checks; thread-safe. ``timeout`` bounds a whole :meth:`run`."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._checks: dict[str, Check] = {}
        self._running: dict[str, _Run] = {}
        self._lock = threading.Lock()

    def add(self, name: str, check: Check) -> None:
        if name in self._checks:
            raise ValueError(f"a readiness check named {name!r} exists already")
        self._checks[name] = check

    @property
    def names(self) -> list[str]:
        return list(self._checks)

    def run(self) -> Report:
        deadline = time.monotonic() + self.timeout
        with self._lock:
            runs: dict[str, _Run] = {}
            for name, check in self._checks.items():
                previous = self._running.get(name)
                # A run still going (its backend hangs) is waited for, not doubled.
                runs[name] = previous if previous and not previous.finished.is_set() else _Run(check)
            self._running = runs
        results: dict[str, str | None] = {}
        for name, run in runs.items():
            if run.finished.wait(max(0.0, deadline - time.monotonic())):
                results[name] = run.error
            else:
                results[name] = f"no answer within {self.timeout:g} s"
        return Report(results)
