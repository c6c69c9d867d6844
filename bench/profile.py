"""Where the master's time goes under load: py-spy, read from outside the process.

py-spy samples the running ``arko-master`` by PID, so the master needs no
profiling hooks and runs the same code it runs in production. The raw
(collapsed-stack) output is kept in ``bench/out`` for flame graphs; the suite
prints the functions with the most samples on top of the stack ("self"), and
the source files whose code is on the stack most often ("inclusive").
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

# Files every stack passes through (interpreter start-up, the event loop's
# outer layers): counting them inclusively says nothing.
ROOT_FILES = frozenset(
    {
        "<frozen runpy>",
        "asyncio/runners.py",
        "asyncio/base_events.py",
        "asyncio/events.py",
        "arko/master/__main__.py",
        "arko/common/daemon.py",
        "threading.py",
    }
)
_LINE = re.compile(r":\d+\)$")
_THREAD = re.compile(r"^thread \(\d+\): (.*)$")
_FILE = re.compile(r"\(([^()]*?)(?::\d+)?\)$")


def find_py_spy() -> str | None:
    """The py-spy next to this interpreter, else on PATH, else None."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, raw: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` for ``seconds`` at 100 Hz into ``raw``; returns the py-spy process.

    ``--gil``: only the thread holding the GIL is sampled. The master is one
    interpreter, so that is where its Python CPU goes; idle waits of the event
    loop and of helper threads would otherwise fill the top of the list.
    ``--threads`` names the thread of each stack (event loop, SQLite, ...).
    """
    spy = find_py_spy()
    if spy is None:
        raise FileNotFoundError("py-spy is not installed (pip install py-spy)")
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                spy,
                "record",
                "--gil",
                "--threads",
                "--format",
                "raw",
                "--rate",
                "100",
                "--duration",
                str(max(1, round(seconds))),
                "--output",
                str(raw),
                "--pid",
                str(pid),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def finish(spy: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for py-spy to write its file; kill it (by its own PID) if it hangs."""
    try:
        spy.wait(timeout)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait(10)


def _frames(stack: str) -> list[str]:
    """Frames of one collapsed stack, outermost first, without line numbers."""
    return [_LINE.sub(")", frame) for frame in stack.split(";")]


def summarise(raw: Path, top: int = 15) -> dict[str, Any]:
    """Top functions by self samples, GIL share by thread, top files by inclusive samples.

    ``Handle._run`` as a leaf means the event loop is running a callback with
    no Python frame of its own: grpc's Cython completion-queue machinery.
    """
    self_counts: collections.Counter[str] = collections.Counter()
    file_counts: collections.Counter[str] = collections.Counter()
    thread_counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        thread = _THREAD.match(frames[0])
        if thread:  # --threads puts "thread (tid): name" outermost
            thread_counts[thread.group(1)] += count
            frames = frames[1:] or ["(no Python frame)"]
        total += count
        self_counts[frames[-1]] += count
        files = {m.group(1) for f in frames if (m := _FILE.search(f))}
        for name in files - ROOT_FILES:
            file_counts[name] += count

    def share(n: int) -> float:
        return 100.0 * n / total if total else 0.0

    return {
        "samples": total,
        "self": [
            {"function": name, "samples": n, "percent": share(n)}
            for name, n in self_counts.most_common(top)
        ],
        "threads": [
            {"thread": name, "samples": n, "percent": share(n)}
            for name, n in thread_counts.most_common(top)
        ],
        "files": [
            {"file": name, "samples": n, "percent": share(n)}
            for name, n in file_counts.most_common(top)
        ],
    }
