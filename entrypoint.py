"""``python entrypoint.py``: run the upscaling processor until SIGTERM or Ctrl-C.

It reads upscale requests from RabbitMQ (queue UPSCALE_QUEUE, default
``image-upscaling``), has each image upscaled by UPSCALER_URL (with the token in
UPSCALER_TOKEN) and posts the result to IMAGE_SERVICE_URL. See docs/upscaling.md.
"""

from __future__ import annotations

import argparse
import sys

from consumer.loop import exit_leaving_abandoned_work
from consumer.upscaling import build_upscaling_worker
from photos import logs
from photos.config import ConfigError, UpscalingSettings


def main() -> int:
    argparse.ArgumentParser(prog="python entrypoint.py", description=__doc__).parse_args()
    logs.configure()
    try:
        settings = UpscalingSettings.from_env()
    except ConfigError as exc:
        print(f"entrypoint.py: {exc}", file=sys.stderr)
        return 2
    worker = build_upscaling_worker(settings)
    worker.install_signal_handlers()
    worker.run()
    if worker.abandoned:
        # A call outlived the grace; its message returns to the queue.
        exit_leaving_abandoned_work()
    return 0


if __name__ == "__main__":
    sys.exit(main())
