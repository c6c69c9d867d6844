"""Capacity tracking's cost on dispatch, and the queue's hand-off time (issue 10).

``python -m bench.capacity`` (needs none of the bench-only extras):

1. Dispatch: ``Execution/ExecuteJob(MyPipeline.DryRun)`` through three
   master + one-slave pairs, measured interleaved (repeat 1 of each, then
   repeat 2, ...) so a noisy moment hits all alike:

   - ``before``: arko as committed at ``--ref`` (default ``main``), exported
     with ``git archive`` and put first on the daemons' ``PYTHONPATH``;
   - ``after``: this tree, slave ``--capacity 1000`` (tracking on: the
     slave's gate counts every call, the master reads its status and checks
     room before each job, never finding it full);
   - ``after_unlimited``: this tree, slave without a capacity.

   Sequential latency p50/p99, throughput at ``--inflight`` and the CPU the
   master and slave spent per job of that run; the ratios after/before are
   paired per repeat.

2. Hand-off: a slave of ``--capacity 1`` and ``--handoff-inflight`` callers,
   so every job but one waits in the queue; each ``job_dequeued`` log line
   of the master carries ``handoff``: seconds from the place coming free (the
   previous job's reply arrived) to the queued job going on to be sent.

3. Bookkeeping: the queue's ``take`` + ``give_back`` per job, in this
   process, on one live slave (no network): what tracking adds to a job.

Load comes from a separate ``bench.loadgen`` process. Every process is
stopped by its PID at the end (``arko.testing.Fleet``).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from arko.master.jobs.queue import JobQueue
from arko.master.jobs.scheduler import FirstLiveScheduler
from arko.master.slaves.probe import Prober
from arko.master.slaves.registry import Registry
from arko.master.store.rows import STATUS_LIVE, SlaveRow
from arko.testing import Daemon, Fleet
from bench.stats import paired_ratio, percentile

REPO = Path(__file__).resolve().parent.parent
ARMS = ("before", "after", "after_unlimited")


def export_arko(ref: str, dest: Path) -> Path:
    """``arko/`` as committed at ``ref``, written under ``dest``."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "arko"],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


class LoadGen:
    """``python -m bench.loadgen`` driven over its stdin/stdout JSON lines."""

    def __init__(self, log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.loadgen"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
                cwd=REPO,
            )

    def run(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps({"op": "unary", **command}) + "\n").encode())
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline() or b'{"ok": false, "error": "died"}')
        if not reply["ok"]:
            raise RuntimeError(f"load generator: {reply['error']}")
        result: dict[str, Any] = reply["result"]
        if result["errors"]:
            raise RuntimeError(f"{result['errors']} calls failed: {result['first_error']}")
        return result

    def stop(self) -> None:
        """Close its input (it exits), then make sure, by PID."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _pair(
    fleet: Fleet, workdir: Path, name: str, env: dict[str, str], *slave: str
) -> tuple[Daemon, Daemon]:
    master = fleet.master("--log_level", "warning", db=workdir / f"{name}.db", env=env)
    return master, fleet.slave(master, *slave, env=env)


def cpu_seconds(daemons: tuple[Daemon, ...]) -> float:
    """User + system CPU the processes used so far, from /proc (clock ticks)."""
    total = 0
    for daemon in daemons:
        fields = Path(f"/proc/{daemon.pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _show(values: list[float], digits: int = 3) -> str:
    mid, low, high = statistics.median(values), min(values), max(values)
    return f"{mid:.{digits}f} [{low:.{digits}f}-{high:.{digits}f}]"


def dispatch(fleet: Fleet, workdir: Path, gen: LoadGen, args: argparse.Namespace) -> dict[str, Any]:
    """Latency and throughput of the three arms, interleaved; ratios paired per repeat."""
    snapshot = export_arko(args.ref, workdir / "before-src")
    pairs = {
        "before": _pair(fleet, workdir, "before", {"PYTHONPATH": str(snapshot)}),
        "after": _pair(fleet, workdir, "after", {}, "--capacity", "1000"),
        "after_unlimited": _pair(fleet, workdir, "after_unlimited", {}),
    }
    runs: dict[str, dict[str, list[float]]] = {
        arm: {"p50_ms": [], "p99_ms": [], "rate": [], "cpu_ms": []} for arm in ARMS
    }
    for rep in range(args.repeats):
        for arm in ARMS:
            address = pairs[arm][0].address
            latency = gen.run(
                address=address,
                target="execute",
                count=args.calls,
                inflight=1,
                max_seconds=60,
                warmup=100,
            )
            cpu = cpu_seconds(pairs[arm])
            load = gen.run(
                address=address,
                target="execute",
                count=args.calls,
                inflight=args.inflight,
                max_seconds=60,
                warmup=2 * args.inflight,
            )
            # CPU per job of master + slave (warm-up included in both counts):
            # far less sensitive to other processes than wall-clock figures.
            jobs = load["count"] + 2 * args.inflight
            runs[arm]["cpu_ms"].append((cpu_seconds(pairs[arm]) - cpu) / jobs * 1000)
            runs[arm]["p50_ms"].append(latency["p50_ms"])
            runs[arm]["p99_ms"].append(latency["p99_ms"])
            runs[arm]["rate"].append(load["rate"])
        print(
            f"repeat {rep + 1}/{args.repeats}: "
            + ", ".join(
                f"{a} p50 {runs[a]['p50_ms'][-1]:.3f} ms {runs[a]['rate'][-1]:.0f}/s" for a in ARMS
            ),
            file=sys.stderr,
            flush=True,
        )
    ratios = {
        f"{arm}/before {key}": paired_ratio(runs[arm][key], runs["before"][key]).to_dict()
        for arm in ARMS[1:]
        for key in ("p50_ms", "p99_ms", "rate", "cpu_ms")
    }
    return {"runs": runs, "ratios": ratios}


def handoff(fleet: Fleet, workdir: Path, gen: LoadGen, args: argparse.Namespace) -> list[float]:
    """Hand-off seconds of every queued job through a capacity-1 slave."""
    master = fleet.master(db=workdir / "handoff.db")
    fleet.slave(master, "--capacity", "1")
    gen.run(
        address=master.address,
        target="execute",
        count=args.handoff_jobs,
        inflight=args.handoff_inflight,
        max_seconds=120,
        warmup=0,
    )
    return [float(e["handoff"]) for e in master.events("job_dequeued")]


class _OneSlave:
    """Just enough of a store for ``Registry.load``: one live slave offering DryRun."""

    async def list_slaves(self) -> list[SlaveRow]:
        return [SlaveRow(1, "127.0.0.1", 1, STATUS_LIVE, ("MyPipeline.DryRun",))]


async def bookkeeping(capacity: int, jobs: int = 100_000) -> float:
    """Microseconds per job of take + give_back, on a slave of ``capacity``."""
    registry = Registry(_OneSlave(), Prober(1))  # type: ignore[arg-type]
    await registry.load()
    slave = registry.slaves()[0]
    slave.pending, slave.capacity = False, capacity
    queue = JobQueue(registry, FirstLiveScheduler(), 60)
    method = "MyPipeline.DryRun"
    began = time.perf_counter()
    for _ in range(jobs):
        queue.give_back(await queue.take(method, {}, lambda: None, {}), method)
    return (time.perf_counter() - began) / jobs * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    parser.add_argument("--ref", default="main", help="git ref of the 'before' arm")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats")
    parser.add_argument("--calls", type=int, default=1000, help="jobs per timed run")
    parser.add_argument("--inflight", type=int, default=16, help="concurrency of throughput")
    parser.add_argument("--handoff-jobs", type=int, default=2000, help="jobs in the hand-off run")
    parser.add_argument("--handoff-inflight", type=int, default=8, help="callers in it")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="arko-bench-capacity-"))
    gen = LoadGen(workdir / "loadgen.log")
    try:
        with Fleet(workdir).running() as fleet:
            figures = dispatch(fleet, workdir, gen, args)
            handoffs = handoff(fleet, workdir, gen, args)
    finally:
        gen.stop()
    runs = figures["runs"]
    print(f"dispatch, {args.repeats} interleaved repeats, median [lowest-highest]:")
    for arm in ARMS:
        print(
            f"  {arm:16} latency p50 {_show(runs[arm]['p50_ms'])} ms, "
            f"p99 {_show(runs[arm]['p99_ms'])} ms, "
            f"throughput @{args.inflight} {_show(runs[arm]['rate'], 0)} jobs/s, "
            f"master+slave CPU {_show(runs[arm]['cpu_ms'])} ms/job"
        )
    for name, spread in figures["ratios"].items():
        print(f"  {name:28} {spread['median']:.3f} [{spread['low']:.3f}-{spread['high']:.3f}]")
    for capacity in (0, 1000):
        micro = asyncio.run(bookkeeping(capacity))
        print(f"queue bookkeeping per job (capacity {capacity}): {micro:.1f} us")
    ms = [h * 1000 for h in handoffs]
    print(
        f"queue hand-off ({len(ms)} queued jobs, capacity-1 slave, "
        f"{args.handoff_inflight} callers): p50 {percentile(ms, 50):.3f} ms, "
        f"p99 {percentile(ms, 99):.3f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
