"""``make run``: the service without Docker, in the foreground.

Starts gunicorn (the web app on PORT) and CONSUMERS consumers (by default
one per core this process may run on: a consumer handles one photo at a time,
so that is what uses the machine; bench/end_to_end.py measures it), prefixes
nothing and passes their logs through. With METRICS_PORT set, the consumers
serve their metrics on consecutive ports from it (METRICS_PORT, +1, ...).
Ctrl-C or SIGTERM stops them all, and if one exits the others are stopped
too, so a half-running service never stays behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from types import FrameType

from photos.config import ConfigError, Settings
from web.wsgi import gunicorn_command


def consumer_count(environ: Mapping[str, str] = os.environ) -> int:
    """CONSUMERS, or one consumer per core available to this process."""
    configured = environ.get("CONSUMERS", "").strip()
    return int(configured) if configured else len(os.sched_getaffinity(0))


def main() -> int:
    try:
        Settings.from_env()
    except ConfigError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 2
    port = os.environ.get("PORT", "3000")
    workers = int(os.environ.get("WEB_WORKERS", "2"))
    consumers = consumer_count()
    metrics_port = os.environ.get("METRICS_PORT", "").strip()
    children = [subprocess.Popen(gunicorn_command(f"0.0.0.0:{port}", workers=workers))]
    for i in range(consumers):
        env = dict(os.environ)
        if metrics_port:
            env["METRICS_PORT"] = str(int(metrics_port) + i)
        children.append(subprocess.Popen([sys.executable, "-m", "consumer"], env=env))
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(c.poll() is None for c in children):
        time.sleep(0.2)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 40
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())
