"""How benchmarks print: one line per figure, one line per goal, and the
machine they ran on. Every line is also kept, so ``--results`` can write them
to a file."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field

import PIL
from PIL import features


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)

    def section(self, title: str) -> None:
        self.say("")
        self.say(f"## {title}")

    def figure(self, name: str, value: float, unit: str = "", digits: int = 1) -> None:
        self.say(f"{name}: {value:.{digits}f}{' ' + unit if unit else ''}")

    def goal(
        self, name: str, value: float, op: str, target: float, *, kind: str = "ratio", unit: str = ""
    ) -> bool:
        """``kind value (goal op target): PASS/MISS``, op being ``≤`` or ``≥``."""
        met = value <= target if op == "≤" else value >= target
        suffix = f" {unit}" if unit else ""
        digits = 2 if abs(target) < 10 else 1
        if not met and round(value, digits) == round(target, digits):
            digits += 1  # a MISS must not print as the target itself
        label = f"{kind} " if kind else ""
        self.say(
            f"{name}: {label}{value:.{digits}f}{suffix} (goal {op} {target:.{digits}f}{suffix}): "
            f"{'PASS' if met else 'MISS'}"
        )
        if not met:
            self.missed.append(name)
        return met


def machine() -> list[str]:
    """CPU model, cores, and the versions of everything that decodes or encodes."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            match = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.MULTILINE)
        if match:
            cpu = match.group(1).strip()
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0))
    lines = [
        f"machine: {cpu}, {cores} cores available, {platform.system()} {platform.release()}, "
        f"load average {os.getloadavg()[0]:.2f} at start",
        f"python: {sys.version.split()[0]}; Pillow {PIL.__version__} "
        f"(libjpeg-turbo {features.version('libjpeg_turbo')}, libwebp {features.version('webp')}, "
        f"zlib {features.version('zlib')})",
        f"djpeg: {_djpeg_version()}",
    ]
    return lines


def _djpeg_version() -> str:
    try:
        result = subprocess.run(
            ["djpeg", "-version"], check=False, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "not installed (apt-get install libjpeg-turbo-progs)"
    return (result.stderr or result.stdout).strip().splitlines()[0]
