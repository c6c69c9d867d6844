"""``make bench-children``: what a child job costs, against a top-level job, same run.

One master and one slave serving the benchmark's ``benchfan.v1.Fanout``
(bench/children_svc). Two figures, each as a pair measured alternately so a
noisy moment on the shared machine hits both alike:

- **dispatch**: the round trip of one job of ``Fanout.Noop``, which answers at
  once. Top-level: ``arko.v1.Jobs/Run`` from this process (a gRPC client, as a
  CLI or CI script is). Child: ``job.run`` from inside a ``Fanout.Children``
  job on the slave (arko.sdk, through the master that sent it, with the job's
  token). One after the other, each timed.
- **fan-out**: ``count`` jobs of ``Noop`` at once. Top-level: as many
  concurrent ``Jobs/Run`` calls from this process. Child: ``asyncio.gather``
  over ``job.run`` in one parent job.

It also reads the master's CPU time (user + system, from /proc) over each
phase, per job, which says where a child's extra cost goes: a child is a job
like any other for the master, plus checking its token and its parent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import grpc
from grpc_tools import protoc

from arko.testing import Daemon, Fleet
from arko.v1 import jobs_pb2, jobs_pb2_grpc
from bench.stats import percentile

HERE = Path(__file__).resolve().parent / "children_svc"
PROTOS = Path(__file__).resolve().parent.parent / "protos"
NOOP = "benchfan.v1.Fanout.Noop"
CHILDREN = "benchfan.v1.Fanout.Children"
_TICKS = os.sysconf("SC_CLK_TCK")


def _generate(out: Path) -> None:
    """The Fanout service's code, generated into ``out`` (nothing is committed)."""
    args = [
        "grpc_tools.protoc",
        f"-I{HERE}",
        f"-I{PROTOS}",
        f"-I{resources.files('grpc_tools') / '_proto'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        str(HERE / "fanout.proto"),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on bench/children_svc/fanout.proto")


def _cpu(pid: int) -> float:
    """Seconds of CPU (user + system) process ``pid`` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _run(jobs: jobs_pb2_grpc.JobsStub, method: str, args: dict[str, Any] | None = None) -> Any:
    """Run one job to its end; its last message (the result) as a dict, or raise."""
    request = jobs_pb2.RunRequest(method=method)
    if args:
        request.args.update(args)
    events = list(jobs.Run(request, timeout=300))
    final = events[-1].job
    if final.state != jobs_pb2.SUCCEEDED:
        raise RuntimeError(f"{method} ended {jobs_pb2.JobState.Name(final.state)}: {final.error}")
    return final


def _top_level_sequential(jobs: jobs_pb2_grpc.JobsStub, count: int) -> list[float]:
    seconds = []
    for _ in range(count):
        began = time.perf_counter()
        _run(jobs, NOOP)
        seconds.append(time.perf_counter() - began)
    return seconds


def _child_sequential(jobs: jobs_pb2_grpc.JobsStub, count: int) -> list[float]:
    final = _run(jobs, CHILDREN, {"count": count, "sequential": True})
    return [float(s) for s in json.loads(final.result)["seconds"]]


def _top_level_fanout(address: str, count: int) -> float:
    async def fan() -> float:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = jobs_pb2_grpc.JobsStub(channel)

            async def one() -> None:
                async for event in stub.Run(jobs_pb2.RunRequest(method=NOOP), timeout=300):
                    if event.kind == jobs_pb2.JobEvent.FINISHED and event.job.state != (
                        jobs_pb2.SUCCEEDED
                    ):
                        raise RuntimeError(f"a Noop job ended {event.job.error}")

            began = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(count)))
            return time.perf_counter() - began

    return asyncio.run(fan())


def _child_fanout(jobs: jobs_pb2_grpc.JobsStub, count: int) -> float:
    final = _run(jobs, CHILDREN, {"count": count, "sequential": False})
    return float(json.loads(final.result)["seconds"][0])


def _measured(master: Daemon, what: Callable[[], Any], jobs: int) -> tuple[Any, float]:
    """``what()``'s value and the master's CPU milliseconds per job while it ran."""
    before = _cpu(master.pid)
    value = what()
    return value, (_cpu(master.pid) - before) * 1000 / jobs


def measure(fleet: Fleet, workdir: Path, count: int, fan: int, repeats: int) -> dict[str, Any]:
    """Alternating runs of each pair; every repeat's figures, raw."""
    gen = workdir / "gen"
    gen.mkdir()
    _generate(gen)
    master = fleet.master()
    env = {"PYTHONPATH": os.pathsep.join([str(gen), str(HERE), os.environ.get("PYTHONPATH", "")])}
    fleet.slave(master, "--service", "fanout_plugin:plugin", env=env)
    raw: dict[str, list[Any]] = {k: [] for k in ("top", "child", "top_fan", "child_fan")}
    with grpc.insecure_channel(master.address) as channel:
        jobs = jobs_pb2_grpc.JobsStub(channel)
        _top_level_sequential(jobs, 20)  # warm both paths: channels, catalogs
        _child_sequential(jobs, 20)
        for _ in range(repeats):
            raw["top"].append(_measured(master, lambda: _top_level_sequential(jobs, count), count))
            raw["child"].append(_measured(master, lambda: _child_sequential(jobs, count), count))
            raw["top_fan"].append(
                _measured(master, lambda: _top_level_fanout(master.address, fan), fan)
            )
            raw["child_fan"].append(_measured(master, lambda: _child_fanout(jobs, fan), fan))
    return raw


def render(raw: dict[str, Any], count: int, fan: int) -> str:
    """The table: medians over the repeats, child against top-level."""

    def pct(key: str, q: float) -> float:
        return statistics.median(percentile(run, q) * 1000 for run, _ in raw[key])

    def cpu(key: str) -> float:
        return statistics.median(ms for _, ms in raw[key])

    def wall(key: str) -> float:
        return statistics.median(seconds for seconds, _ in raw[key])

    top50, child50 = pct("top", 50), pct("child", 50)
    top_fan, child_fan = wall("top_fan"), wall("child_fan")
    lines = [
        f"child jobs against top-level jobs ({len(raw['top'])} alternating repeats, medians)",
        f"{'':34}{'top-level':>12}{'child':>12}{'ratio':>8}",
        f"{f'dispatch p50 ms ({count} one by one)':34}{top50:12.2f}{child50:12.2f}"
        f"{child50 / top50:8.2f}",
        f"{'dispatch p90 ms':34}{pct('top', 90):12.2f}{pct('child', 90):12.2f}"
        f"{pct('child', 90) / pct('top', 90):8.2f}",
        f"{'master CPU ms per job (one by one)':34}{cpu('top'):12.2f}{cpu('child'):12.2f}"
        f"{cpu('child') / cpu('top'):8.2f}",
        f"{f'fan-out of {fan}: seconds':34}{top_fan:12.3f}{child_fan:12.3f}"
        f"{child_fan / top_fan:8.2f}",
        f"{f'fan-out of {fan}: jobs/s':34}{fan / top_fan:12.0f}{fan / child_fan:12.0f}",
        f"{'master CPU ms per job (fan-out)':34}{cpu('top_fan'):12.2f}{cpu('child_fan'):12.2f}"
        f"{cpu('child_fan') / cpu('top_fan'):8.2f}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure and print; nothing is written but the daemons' temporary folder."""
    parser = argparse.ArgumentParser(prog="python -m bench.children", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer jobs and repeats")
    args = parser.parse_args(argv)
    count, fan, repeats = (50, 100, 2) if args.quick else (200, 100, 5)
    with (
        tempfile.TemporaryDirectory(prefix="arko-bench-children-") as tmp,
        Fleet(Path(tmp)).running() as fleet,
    ):
        raw = measure(fleet, Path(tmp), count, fan, repeats)
    print(render(raw, count, fan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
