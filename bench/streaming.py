"""Streamed output: messages per second and time to first output, master vs direct.

One master with one open (``--no-protect``) slave serves all three endpoints,
and the runs alternate (direct, relay, master, direct, ...) so a noisy moment
on the shared machine hits them alike:

- ``direct``: ``MyPipelineLogs/Stream`` on the slave with the generated stub;
- ``relay``: the same through ``bench.stream_relay``, which passes the slave's
  bytes on and does nothing else: what grpc.aio alone costs one hop, the
  floor of any relay (the master included);
- ``master``: ``arko.v1.Jobs/Run`` of the same method through the master,
  which turns every slave message into a JSON ``OUTPUT`` event, keeps it for
  watchers and writes it to the job's record in batches.

The CPU time (user + system) the master and the relay spend per streamed line
is measured too (psutil, over each of their streams): a figure that noise on
a shared machine moves far less than a rate.

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
import psutil

from arko.gen import execution_pb2, execution_pb2_grpc, pipeline_pb2, pipeline_pb2_grpc
from arko.testing import Fleet
from arko.v1 import jobs_pb2, jobs_pb2_grpc
from bench.config import BenchConfig
from bench.procs import start_stream_relay

Say = Callable[[str], None]
OUTPUT = jobs_pb2.JobEvent.OUTPUT
_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]


# (seconds to the first event, to the first line, in all; lines received)
Run = tuple[float, float, float, int]
RATE_TARGET = 0.6
FIRST_LINE_TARGET = 2.0


def _cpu(process: psutil.Process) -> float:
    """Seconds of CPU (user + system) ``process`` has used so far."""
    times = process.cpu_times()
    return times.user + times.system


def _timed_cpu(process: psutil.Process, run: Callable[[], Run], spent: list[float]) -> Run:
    """``run()``, adding the CPU seconds ``process`` spent meanwhile to ``spent``."""
    before = _cpu(process)
    result = run()
    spent.append(_cpu(process) - before)
    return result


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
    relay = start_stream_relay(fleet, slave.address)
    lines = cfg.stream_lines
    channels = [
        grpc.insecure_channel(d.address, options=_OPTIONS) for d in (slave, master, quiet, relay)
    ]
    master_proc, relay_proc = psutil.Process(master.pid), psutil.Process(relay.pid)
    try:
        direct_stub = pipeline_pb2_grpc.MyPipelineLogsStub(channels[0])
        jobs_stub = jobs_pb2_grpc.JobsStub(channels[1])
        relay_stub = pipeline_pb2_grpc.MyPipelineLogsStub(channels[3])
        _direct(direct_stub, 100)  # warm every path: channels, reflection catalog
        _direct(relay_stub, 100)
        _master(jobs_stub, 100)
        direct: list[Run] = []
        relayed: list[Run] = []
        through: list[Run] = []
        relay_cpu: list[float] = []
        master_cpu: list[float] = []
        for rep in range(cfg.stream_repeats):
            direct.append(_direct(direct_stub, lines))
            relayed.append(_timed_cpu(relay_proc, lambda: _direct(relay_stub, lines), relay_cpu))
            through.append(_timed_cpu(master_proc, lambda: _master(jobs_stub, lines), master_cpu))
            say(
                f"stream repeat {rep + 1}/{cfg.stream_repeats}: "
                f"direct {lines / direct[-1][2]:.0f} msg/s, relay {lines / relayed[-1][2]:.0f} "
                f"msg/s, master {lines / through[-1][2]:.0f} msg/s; first line direct "
                f"{direct[-1][1] * 1000:.2f} ms, relay {relayed[-1][1] * 1000:.2f} ms, "
                f"master {through[-1][1] * 1000:.2f} ms; CPU per line relay "
                f"{relay_cpu[-1] / lines * 1e6:.0f} us, "
                f"master {master_cpu[-1] / lines * 1e6:.0f} us"
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
    d, r, m = _summary(direct, lines), _summary(relayed, lines), _summary(through, lines)
    r["cpu_us_per_line"] = statistics.median(relay_cpu) / lines * 1e6
    m["cpu_us_per_line"] = statistics.median(master_cpu) / lines * 1e6
    return {
        "lines": lines,
        "direct": d,
        "relay": r,
        "master": m,
        "rate_ratio": m["msgs_per_s"] / d["msgs_per_s"],
        "first_ratio": m["first_ms"] / d["first_ms"],
        "first_event_ratio": m["first_event_ms"] / d["first_ms"],
        "relay_rate_ratio": r["msgs_per_s"] / d["msgs_per_s"],
        "relay_first_ratio": r["first_ms"] / d["first_ms"],
        "cpu_ratio": m["cpu_us_per_line"] / r["cpu_us_per_line"],
        "log_line": {
            "p50_ms_with": statistics.median(with_line),
            "p50_ms_without": statistics.median(without_line),
            "calls": cfg.log_cost_calls,
        },
    }


def render(result: dict[str, Any]) -> str:
    """The streaming figures as a few lines of text for the report table."""
    d, m, log = result["direct"], result["master"], result["log_line"]
    lines = [
        f"Streamed output ({result['lines']:,} lines per stream, median of repeats)",
        f"  direct  {d['msgs_per_s']:>9,.0f} msg/s   first line {d['first_ms']:7.2f} ms",
    ]
    r = result.get("relay")  # runs saved before the relay was measured have none
    if r is not None:
        lines.append(
            f"  relay   {r['msgs_per_s']:>9,.0f} msg/s   first line {r['first_ms']:7.2f} ms"
            f"   CPU {r['cpu_us_per_line']:.0f} us/line (bytes only: the floor of a relay)"
        )
    cpu = f"   CPU {m['cpu_us_per_line']:.0f} us/line" if "cpu_us_per_line" in m else ""
    lines += [
        f"  master  {m['msgs_per_s']:>9,.0f} msg/s   first line {m['first_ms']:7.2f} ms{cpu}"
        f"   first event (ACCEPTED, the job id) {m['first_event_ms']:.2f} ms",
        f"  master/direct: {result['rate_ratio']:.2f}x msg/s (target >= {RATE_TARGET}x); "
        f"first event {result['first_event_ratio']:.2f}x, first line "
        f"{result['first_ratio']:.2f}x of the direct first line (target <= {FIRST_LINE_TARGET:g}x)",
    ]
    if r is not None:
        lines.append(
            f"  relay/direct: {result['relay_rate_ratio']:.2f}x msg/s, first line "
            f"{result['relay_first_ratio']:.2f}x; master/relay CPU per line "
            f"{result['cpu_ratio']:.2f}x"
        )
    return "\n".join(
        [
            *lines,
            f"job_finished log line: ExecuteJob p50 {log['p50_ms_with']:.3f} ms with it, "
            f"{log['p50_ms_without']:.3f} ms without (--log_level warning)",
        ]
    )
