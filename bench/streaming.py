"""Streamed output: messages per second and time to first output, master vs direct.

One master with one open (``--no-protect``) slave serves both endpoints, and
the runs alternate (direct, master, direct, master, ...) so a noisy moment on
the shared machine hits both alike:

- ``direct``: ``MyPipelineLogs/Stream`` on the slave with the generated stub,
  the floor of any relay;
- ``master``: ``arko.v1.Jobs/Run`` of the same method through the master,
  which turns every slave message into a JSON ``OUTPUT`` event, keeps it for
  watchers and writes it to the job's record in batches.

Time to first output is measured from the moment the call is made to the
first line the client holds; the master's first event (``ACCEPTED``, which
carries the job id before any slave work) is timed as well. Both are compared
with the direct stream's first line.

It also measures what the per-job ``job_finished`` access-log line costs: the
sequential latency of ``Execution/ExecuteJob`` on a master at the default log
level against one at ``--log_level warning``, which skips that line (same
slave kind, alternating runs).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc

from arko.gen import execution_pb2, execution_pb2_grpc, pipeline_pb2, pipeline_pb2_grpc
from arko.testing import Fleet
from arko.v1 import jobs_pb2, jobs_pb2_grpc
from bench.config import BenchConfig

Say = Callable[[str], None]
OUTPUT = jobs_pb2.JobEvent.OUTPUT
_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]


# (seconds to the first event, to the first line, in all; lines received)
Run = tuple[float, float, float, int]


def _direct(stub: pipeline_pb2_grpc.MyPipelineLogsStub, lines: int) -> Run:
    """One direct stream (its first event is its first line)."""
    began = time.perf_counter()
    first = 0.0
    count = 0
    for _ in stub.Stream(pipeline_pb2.LogsRequest(lines=lines), timeout=120):
        count += 1
        if count == 1:
            first = time.perf_counter() - began
    return first, first, time.perf_counter() - began, count


def _master(stub: jobs_pb2_grpc.JobsStub, lines: int) -> Run:
    """One Jobs/Run: its first event is ACCEPTED (the job id), then lines come as OUTPUT."""
    request = jobs_pb2.RunRequest(method="MyPipelineLogs.Stream")
    request.args.update({"lines": lines})
    began = time.perf_counter()
    accepted = first = 0.0
    count = 0
    events: Iterator[jobs_pb2.JobEvent] = stub.Run(request, timeout=120)
    for event in events:
        if not accepted:
            accepted = time.perf_counter() - began
        if event.kind == OUTPUT:
            count += 1
            if count == 1:
                first = time.perf_counter() - began
    return accepted, first, time.perf_counter() - began, count


def _summary(runs: list[Run], lines: int) -> dict[str, Any]:
    if any(run[3] != lines for run in runs):
        raise RuntimeError(f"a stream lost lines: {[run[3] for run in runs]} of {lines}")
    rates = [count / total for _, _, total, count in runs]
    events = [run[0] * 1000 for run in runs]
    firsts = [run[1] * 1000 for run in runs]
    return {
        "msgs_per_s": statistics.median(rates),
        "msgs_per_s_all": [round(r) for r in rates],
        "first_event_ms": statistics.median(events),
        "first_ms": statistics.median(firsts),
        "first_ms_all": [round(f, 2) for f in firsts],
    }


def _unary_latency(stub: execution_pb2_grpc.ExecutionStub, calls: int) -> float:
    """Median milliseconds of ``calls`` sequential ExecuteJob calls."""
    request = execution_pb2.JobParams(method="MyPipeline.DryRun", params={"param": "bench"})
    times = []
    for _ in range(calls):
        began = time.perf_counter()
        stub.ExecuteJob(request, timeout=30)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def streaming(cfg: BenchConfig, fleet: Fleet, workdir: Path, say: Say) -> dict[str, Any]:
    """Run the streaming and log-line measurements on daemons of their own, then stop them."""
    before = len(fleet.daemons)
    master = fleet.master(db=workdir / "master-stream.db")
    slave = fleet.slave(master, "--no-protect")
    quiet = fleet.master("--log_level", "warning", db=workdir / "master-quiet.db")
    fleet.slave(quiet, "--no-protect")
    lines = cfg.stream_lines
    channels = [grpc.insecure_channel(d.address, options=_OPTIONS) for d in (slave, master, quiet)]
    try:
        direct_stub = pipeline_pb2_grpc.MyPipelineLogsStub(channels[0])
        jobs_stub = jobs_pb2_grpc.JobsStub(channels[1])
        _direct(direct_stub, 100)  # warm both paths: channels, reflection catalog
        _master(jobs_stub, 100)
        direct: list[Run] = []
        through: list[Run] = []
        for rep in range(cfg.stream_repeats):
            direct.append(_direct(direct_stub, lines))
            through.append(_master(jobs_stub, lines))
            say(
                f"stream repeat {rep + 1}/{cfg.stream_repeats}: "
                f"direct {lines / direct[-1][2]:.0f} msg/s, master {lines / through[-1][2]:.0f} "
                f"msg/s; first line direct {direct[-1][1] * 1000:.2f} ms, "
                f"master {through[-1][1] * 1000:.2f} ms"
            )
        logged = execution_pb2_grpc.ExecutionStub(channels[1])
        unlogged = execution_pb2_grpc.ExecutionStub(channels[2])
        _unary_latency(logged, cfg.warmup)
        _unary_latency(unlogged, cfg.warmup)
        with_line: list[float] = []
        without_line: list[float] = []
        for _ in range(cfg.stream_repeats):
            with_line.append(_unary_latency(logged, cfg.log_cost_calls))
            without_line.append(_unary_latency(unlogged, cfg.log_cost_calls))
        say(
            f"ExecuteJob p50 with the job_finished line {statistics.median(with_line):.3f} ms, "
            f"without {statistics.median(without_line):.3f} ms"
        )
    finally:
        for channel in channels:
            channel.close()
        for daemon in reversed(fleet.daemons[before:]):
            daemon.stop()
    d, m = _summary(direct, lines), _summary(through, lines)
    return {
        "lines": lines,
        "direct": d,
        "master": m,
        "rate_ratio": m["msgs_per_s"] / d["msgs_per_s"],
        "first_ratio": m["first_ms"] / d["first_ms"],
        "first_event_ratio": m["first_event_ms"] / d["first_ms"],
        "log_line": {
            "p50_ms_with": statistics.median(with_line),
            "p50_ms_without": statistics.median(without_line),
            "calls": cfg.log_cost_calls,
        },
    }


def render(result: dict[str, Any]) -> str:
    """The streaming figures as a few lines of text for the report table."""
    d, m, log = result["direct"], result["master"], result["log_line"]
    return "\n".join(
        [
            f"Streamed output ({result['lines']:,} lines per stream, median of repeats)",
            f"  direct  {d['msgs_per_s']:>9,.0f} msg/s   first line {d['first_ms']:7.2f} ms",
            f"  master  {m['msgs_per_s']:>9,.0f} msg/s   first line {m['first_ms']:7.2f} ms"
            f"   first event (ACCEPTED, the job id) {m['first_event_ms']:.2f} ms",
            f"  master/direct: {result['rate_ratio']:.2f}x msg/s (target >= 0.5x); "
            f"first event {result['first_event_ratio']:.2f}x, first line "
            f"{result['first_ratio']:.2f}x of the direct first line (target <= 2x)",
            f"job_finished log line: ExecuteJob p50 {log['p50_ms_with']:.3f} ms with it, "
            f"{log['p50_ms_without']:.3f} ms without (--log_level warning)",
        ]
    )
