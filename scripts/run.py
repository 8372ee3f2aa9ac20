"""``make run``: the service without Docker, in the foreground.

Starts gunicorn (the web app on PORT) and one consumer, prefixes nothing and
passes their logs through; Ctrl-C or SIGTERM stops both, and if either exits
the other is stopped too, so a half-running service never stays behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import FrameType

from web.wsgi import gunicorn_command


def main() -> int:
    port = os.environ.get("PORT", "3000")
    workers = int(os.environ.get("WEB_WORKERS", "2"))
    consumers = int(os.environ.get("CONSUMERS", "1"))
    commands = [
        gunicorn_command(f"0.0.0.0:{port}", workers=workers),
        *([sys.executable, "-m", "consumer"] for _ in range(consumers)),
    ]
    children = [subprocess.Popen(c) for c in commands]
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
