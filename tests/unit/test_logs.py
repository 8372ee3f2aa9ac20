"""The JSON log lines every process writes (run in a child process: configure
replaces the root logger's handlers, which pytest's own capture relies on)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import logging, warnings
from photos import logs
logs.configure()
logging.getLogger("consumer").info("message done", extra={"photo": "p-1", "outcome": "completed"})
warnings.warn("Corrupt EXIF data.")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("consumer").exception("bug while processing", extra={"photo": "p-2"})
"""


def test_every_line_is_json_with_the_extra_fields_warnings_and_tracebacks_included() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
    )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(e["level"], e["logger"]) for e in lines] == [
        ("info", "consumer"),
        ("warning", "py.warnings"),
        ("error", "consumer"),
    ]
    assert lines[0]["message"] == "message done"
    assert (lines[0]["photo"], lines[0]["outcome"]) == ("p-1", "completed")
    assert "UserWarning: Corrupt EXIF data." in lines[1]["message"]
    assert lines[2]["photo"] == "p-2"
    assert "ZeroDivisionError" in lines[2]["error"]
