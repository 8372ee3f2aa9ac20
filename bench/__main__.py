"""``python -m bench``: every benchmark, or the ones named; prints the machine,
one line per figure and one per goal (``PASS``/``MISS``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench import (
    api,
    auth,
    colour,
    corpus,
    encoders,
    end_to_end,
    formats,
    memory,
    metrics,
    storage,
    thumbnail,
)
from bench.report import Report, machine

BENCHMARKS = (
    "thumbnail",
    "formats",
    "colour",
    "encoders",
    "memory",
    "api",
    "metrics",
    "auth",
    "storage",
    "end-to-end",
)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        choices=BENCHMARKS,
        help="run only this benchmark (repeatable; default: all)",
    )
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per timing (default 15)")
    parser.add_argument("--results", type=Path, help="also write the lines printed to this file")
    args = parser.parse_args()
    chosen = args.only or list(BENCHMARKS)
    report = Report()
    for line in machine():
        report.say(line)
    report.say(f"libvips (bench/formats.py's reference, not used by the service): {formats.vips_version()}")
    files = corpus.ensure()
    if "thumbnail" in chosen:
        thumbnail.run(report, files, args.rounds)
    if "formats" in chosen:
        formats.run(report, files, args.rounds)
    if "colour" in chosen:
        colour.run(report, args.rounds)
    if "encoders" in chosen:
        encoders.run(report, files, args.rounds)
    if "memory" in chosen:
        memory.run(report, files, args.rounds)
    if "end-to-end" in chosen:
        end_to_end.run(report, files, args.rounds)
    if "api" in chosen:
        api.run(report, args.rounds)
    if "metrics" in chosen:
        metrics.run(report, args.rounds)
    if "auth" in chosen:
        auth.run(report, args.rounds)
    if "storage" in chosen:
        storage.run(report, args.rounds)
    report.say("")
    report.say(
        f"load average {os.getloadavg()[0]:.2f} at the end (other work on the machine disturbs the figures)"
    )
    report.say(f"goals missed: {', '.join(report.missed)}" if report.missed else "every goal met")
    if args.results:
        args.results.write_text("\n".join(report.lines) + "\n")
    return 1 if report.missed else 0


if __name__ == "__main__":
    sys.exit(main())
