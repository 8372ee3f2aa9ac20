"""``python -m consumer``: process photo messages until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import sys

from consumer.loop import exit_leaving_abandoned_work
from consumer.worker import build_worker
from photos import imaging, logs
from photos.config import ConfigError, Settings
from photos.metrics import ProcessingMetrics


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m consumer", description=__doc__)
    parser.add_argument("--queue", help="work queue name (default: QUEUE_NAME or photo-processor)")
    args = parser.parse_args()
    logs.configure()
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"python -m consumer: {exc}", file=sys.stderr)
        sys.exit(2)
    missing = imaging.missing_codecs()
    if missing:
        # Photos that need them fail with these words as their reason.
        logging.getLogger("consumer").warning(
            "image formats this consumer cannot handle", extra={"missing": missing}
        )
    if args.queue:
        settings = settings.with_(queue_name=args.queue)
    log = logging.getLogger("consumer")
    metrics = ProcessingMetrics()
    server = None
    if settings.metrics_port:
        try:
            server = metrics.serve(settings.metrics_port)
        except OSError as exc:
            # Before taking any message: a consumer nobody can watch is a setup error.
            log.error(
                "cannot serve metrics on METRICS_PORT",
                extra={"port": settings.metrics_port, "error": str(exc)},
            )
            sys.exit(2)
        log.info("serving metrics", extra={"port": server.port})
    worker = build_worker(settings, metrics)
    worker.install_signal_handlers()
    try:
        worker.run()
    finally:
        if server is not None:
            server.close()
    if worker.abandoned:
        # A photo's work outlived the grace: it was given back and its message returned.
        exit_leaving_abandoned_work()


if __name__ == "__main__":
    main()
