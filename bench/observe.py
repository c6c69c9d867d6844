"""Watching a running daemon from outside: its log, its memory, its CPU.

``arko.testing.Daemon.events`` re-reads the whole log, which is right for
tests and far too slow for a master that logs tens of megabytes while a
thousand slaves register; :class:`LogTail` reads only what is new. CPU and RSS
come from ``/proc`` through psutil, so nothing inside the master is touched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil


class LogTail:
    """New JSON events of a log file since the last read."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._partial = b""

    def skip_to_end(self) -> None:
        """Forget everything logged so far."""
        self._offset = self._path.stat().st_size if self._path.exists() else 0
        self._partial = b""

    def read(self, name: str | None = None) -> list[dict[str, Any]]:
        """Events appended since the last call, optionally only those called ``name``."""
        if not self._path.exists():
            return []
        with self._path.open("rb") as log:
            log.seek(self._offset)
            data = log.read()
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        events = []
        for line in lines:
            # Cheap filter first: most lines of a busy master are other events.
            if name is not None and name.encode() not in line:
                continue
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and (name is None or event.get("event") == name):
                    events.append(event)
        return events


def event_time(event: dict[str, Any]) -> float:
    """The event's timestamp (structlog's ISO UTC) as seconds since the epoch."""
    return dt.datetime.fromisoformat(str(event["timestamp"])).timestamp()


def cpu_seconds(proc: psutil.Process) -> float:
    """User plus system CPU time the process (all its threads) has used."""
    times = proc.cpu_times()
    return float(times.user + times.system)


def rss_mb(proc: psutil.Process) -> float:
    """Resident set size in MB (10^6 bytes)."""
    return float(proc.memory_info().rss) / 1e6


class RssPeak:
    """Samples a process's RSS on a thread while a block runs; keeps the highest.

    A master's memory can spike during a burst (thousands of channels opened at
    once) and fall back before anyone looks; the peak is what sizing needs.
    """

    def __init__(self, proc: psutil.Process, interval: float = 0.1) -> None:
        self._proc = proc
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-peak", daemon=True)
        self.peak_mb = 0.0

    def _sample(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak_mb = max(self.peak_mb, rss_mb(self._proc))
            self._stop.wait(self._interval)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(5)


class ForeignLoad:
    """How much of the machine other processes used while a block ran.

    The bench shares its 2 cores with whatever else runs there (a developer's
    test suite, say). Busy CPU of the whole machine minus the CPU of this
    process tree, as a fraction of all cores, tells a reader whether a run was
    disturbed; it is recorded beside every timed run.
    """

    def __init__(self) -> None:
        self._me = psutil.Process()
        self._procs: list[psutil.Process] = []
        self._start = (0.0, 0.0, 0.0)
        self.fraction = 0.0

    def _own_cpu(self) -> float:
        total = 0.0
        for proc in self._procs:
            with contextlib.suppress(psutil.Error):
                total += cpu_seconds(proc)
        return total

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))

    def __enter__(self) -> ForeignLoad:
        self._procs = [self._me, *self._me.children(recursive=True)]
        self._start = (time.monotonic(), self._busy(), self._own_cpu())
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        wall0, busy0, own0 = self._start
        wall = time.monotonic() - wall0
        foreign = (self._busy() - busy0) - (self._own_cpu() - own0)
        cores = psutil.cpu_count() or 1
        self.fraction = max(0.0, foreign / (wall * cores)) if wall > 0 else 0.0
