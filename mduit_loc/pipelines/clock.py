"""Stage headers on stderr and the wall seconds of every stage, kept in ``timings.json`` across re-runs."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import TracebackType

from mduit_loc.io_utils import write_json_atomic

TIMINGS_FILE = "timings.json"      # wall seconds per stage, accumulated over (re)runs


class StageClock:
    """Prints one header line per stage and keeps the wall seconds of each in ``TIMINGS_FILE``."""

    def __init__(self, out: Path, total: int, prefix: str):
        self.path, self.total, self.prefix, self.number = Path(out) / TIMINGS_FILE, total, prefix, 0
        self.started = time.perf_counter()
        self.timings: dict[str, dict]
        try:
            self.timings = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.timings = {}

    def stage(self, name: str, what: str) -> Stage:
        self.number += 1
        return Stage(self, name, f"[{self.prefix} {self.number}/{self.total}] {what}")

    def record(self, name: str, seconds: float, skipped: bool) -> None:
        if not skipped or name not in self.timings:
            self.timings[name] = {"seconds": round(seconds, 1), "skipped": skipped}
            write_json_atomic(self.path, self.timings)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


class Stage:
    """One stage: a context manager that prints its header, times it and records it unless it failed."""

    def __init__(self, clock: StageClock, name: str, header: str):
        self.clock, self.name, self.header, self.skipped = clock, name, header, False
        self.started = 0.0

    def skip(self, reason: str) -> None:
        self.skipped = True
        print(f"    skipped: {reason}", file=sys.stderr, flush=True)

    def __enter__(self) -> Stage:
        print(self.header, file=sys.stderr, flush=True)
        self.started = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            seconds = time.perf_counter() - self.started
            self.clock.record(self.name, seconds, self.skipped)
            if not self.skipped:
                print(f"    done in {format_seconds(seconds)}", file=sys.stderr, flush=True)


def format_seconds(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{seconds:.1f}s"
