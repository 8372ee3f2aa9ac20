"""gunicorn's hooks for the web app (``--config python:gunicorn_conf``). Outside the
``web`` package on purpose: importing that imports prometheus_client, which
must not happen in the master before ``on_starting``.

Every worker's request metrics go to files in one directory that the master
makes before it starts them (prometheus_client's multiprocess mode), so the
``/metrics`` of any worker counts the requests of all. The directory is fresh
for each master and removed when it exits: counts start at zero with the
service, as a single process's would.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

from photos.config import ConfigError, Settings

ENV = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server: Any) -> None:
    # Settings the app cannot use stop gunicorn here with code 2, saying why,
    # instead of each worker failing to boot (gunicorn's code 3).
    try:
        Settings.from_env()
    except ConfigError as exc:
        print(f"gunicorn: {exc}", file=sys.stderr)
        sys.exit(2)
    # Set before any worker imports prometheus_client, which reads it on import.
    os.environ[ENV] = tempfile.mkdtemp(prefix="photo-processor-metrics-")


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess  # noqa: PLC0415  in the master, after on_starting

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    path = os.environ.pop(ENV, None)
    if path:
        shutil.rmtree(path, ignore_errors=True)
