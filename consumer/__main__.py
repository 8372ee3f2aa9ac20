"""``python -m consumer``: process photo messages until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse

from consumer.worker import build_worker
from photos import logs
from photos.config import Settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m consumer", description=__doc__)
    parser.add_argument("--queue", help="work queue name (default: QUEUE_NAME or photo-processor)")
    args = parser.parse_args()
    logs.configure()
    settings = Settings.from_env()
    if args.queue:
        settings = settings.with_(queue_name=args.queue)
    worker = build_worker(settings)
    worker.install_signal_handlers()
    worker.run()


if __name__ == "__main__":
    main()
