"""Dispatch cost: the master against the floor and against the peers.

One set of daemons serves every figure here, and the runs are interleaved
(repeat 1 of every endpoint, then repeat 2, ...), so a noisy moment on the
shared machine hits all endpoints alike and the paired ratios stay honest.

Endpoints:

- ``direct``: ``MyPipeline/DryRun`` on the slave with the generated stub (the floor);
- ``master``: ``Execution/ExecuteJob`` of ``MyPipeline.DryRun`` through a master
  with one slave, both as shipped (the slave guarded: it checks that each call
  comes from its master);
- ``master_open``: the same through a master whose one slave runs
  ``--no-protect`` -- the very slave ``direct`` calls, which only an unguarded
  slave allows;
- ``master4``: the same through a master with four ``--no-protect`` slaves;
- ``relay``: the same through a bare generated-stub relay (``bench.relay``) in
  front of the ``direct`` slave: the floor of any one-hop design;
- ``naive``: the same through the per-job-reflection relay (``bench.naive``)
  in front of the ``direct`` slave;
- ``celery``: a trivial Celery task over Redis, one worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from arko.testing import Daemon, Fleet
from bench.config import BenchConfig
from bench.observe import ForeignLoad, cpu_seconds
from bench.procs import (
    LoadGen,
    start_bare_relay,
    start_celery_worker,
    start_naive_relay,
    start_redis,
)

Runs = dict[str, list[dict[str, Any]]]
Say = Callable[[str], None]
# Seconds one command may take beyond its own time bound (start-up, warm-up).
SLACK = 60.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Something the load generator can time: an op and its arguments."""

    label: str
    op: str
    args: dict[str, Any]
    slow: bool = False
    """Slow peers get fewer sequential calls, to keep the run short."""
    hop_pid: int | None = None
    """The process between caller and slave (a master or a relay), whose CPU per job is kept."""


@dataclass(slots=True)
class DispatchRig:
    """The daemons of the dispatch measurements."""

    master: Daemon
    """The master as shipped (guarded slave): the one profiled."""
    slave: Daemon
    """The open slave the direct calls and the naive relay go to."""
    master4: Daemon
    redis_url: str
    endpoints: dict[str, Endpoint]
    daemons: list[Daemon] = field(default_factory=list)

    def stop(self) -> None:
        """Stop every process of the rig (by PID), newest first."""
        for daemon in reversed(self.daemons):
            daemon.stop()


def start_rig(fleet: Fleet, workdir: Path, say: Say) -> DispatchRig:
    """Start the masters, slaves, naive relay, Redis and the Celery worker."""
    say(
        "starting 3 masters (1 guarded slave, 1 open slave, 4 open slaves), bare and naive relays, "
        "redis, celery worker"
    )
    before = len(fleet.daemons)
    guarded = fleet.master(db=workdir / "master-guarded.db")
    fleet.slave(guarded)
    master = fleet.master(db=workdir / "master-open.db")
    slave = fleet.slave(master, "--no-protect")
    master4 = fleet.master(db=workdir / "master4.db")
    for _ in range(4):
        fleet.slave(master4, "--no-protect")
    naive = start_naive_relay(fleet, slave.address)
    relay = start_bare_relay(fleet, slave.address)
    _, redis_url = start_redis(fleet)
    start_celery_worker(fleet, redis_url)

    def execute(label: str, hop: Daemon, slow: bool = False) -> Endpoint:
        args = {"address": hop.address, "target": "execute"}
        return Endpoint(label, "unary", args, slow, hop_pid=hop.pid)

    endpoints = {
        "direct": Endpoint("direct", "unary", {"address": slave.address, "target": "direct"}),
        "master": execute("master", guarded),
        "master_open": execute("master_open", master),
        "master4": execute("master4", master4),
        "relay": execute("relay", relay),
        "naive": execute("naive", naive, slow=True),
        "celery": Endpoint("celery", "celery", {"redis_url": redis_url}, slow=True),
    }
    return DispatchRig(
        master=guarded,
        slave=slave,
        master4=master4,
        redis_url=redis_url,
        endpoints=endpoints,
        daemons=fleet.daemons[before:],
    )


def timed(
    gen: LoadGen, ep: Endpoint, count: int, inflight: int, seconds: float, warmup: int
) -> dict[str, Any]:
    """One bounded run of ``ep``; fails loudly if any call failed.

    The share of the machine other processes used meanwhile is kept in the
    result (``foreign_cpu``), so a disturbed repeat can be recognised. For an
    endpoint with a hop, the hop process's user+system CPU per call (warm-up
    calls included, as they are in the CPU it used) is kept as
    ``hop_cpu_ms``: a figure a busy machine barely moves, unlike latency.
    """
    hop = psutil.Process(ep.hop_pid) if ep.hop_pid is not None else None
    hop_before = cpu_seconds(hop) if hop is not None else 0.0
    with ForeignLoad() as foreign:
        result = gen.run(
            ep.op,
            timeout=2 * seconds + SLACK,
            count=count,
            inflight=inflight,
            max_seconds=seconds,
            warmup=warmup,
            **ep.args,
        )
    result["foreign_cpu"] = foreign.fraction
    if hop is not None:
        calls = result["count"] + result["errors"] + warmup
        result["hop_cpu_ms"] = (cpu_seconds(hop) - hop_before) * 1e3 / max(calls, 1)
    if result["errors"]:
        raise RuntimeError(f"{ep.label}: {result['errors']} calls failed: {result['first_error']}")
    return result


def sequential_latency(cfg: BenchConfig, rig: DispatchRig, gen: LoadGen, say: Say) -> Runs:
    """p50/p99 of one call at a time, every endpoint, ``cfg.repeats`` interleaved repeats."""
    order = ["direct", "relay", "master", "master_open", "celery", "naive"]
    runs: Runs = {label: [] for label in order}
    for rep in range(cfg.repeats):
        for label in order:
            ep = rig.endpoints[label]
            calls = cfg.peer_latency_calls if ep.slow else cfg.latency_calls
            runs[label].append(
                timed(gen, ep, calls, 1, cfg.throughput_seconds * 8, min(cfg.warmup, calls))
            )
        say(
            f"latency repeat {rep + 1}/{cfg.repeats}: "
            + ", ".join(f"{k} p50 {v[-1]['p50_ms']:.3f} ms" for k, v in runs.items())
        )
    return runs


def throughput(
    cfg: BenchConfig, rig: DispatchRig, gen: LoadGen, say: Say
) -> dict[str, dict[int, list[dict[str, Any]]]]:
    """Jobs/s at each concurrency, every endpoint (naive at ``cfg.naive_inflight`` only)."""
    labels = ["direct", "relay", "master", "master_open", "master4", "celery", "naive"]
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {label: {} for label in labels}
    for inflight in cfg.concurrencies:
        for rep in range(cfg.throughput_repeats):
            for label in labels:
                if label == "naive" and inflight != cfg.naive_inflight:
                    continue
                ep = rig.endpoints[label]
                warmup = max(cfg.warmup, 2 * inflight)
                result = timed(
                    gen, ep, cfg.throughput_calls, inflight, cfg.throughput_seconds, warmup
                )
                runs[label].setdefault(inflight, []).append(result)
            say(
                f"throughput @{inflight} repeat {rep + 1}/{cfg.throughput_repeats}: "
                + ", ".join(
                    f"{k} {v[inflight][-1]['rate']:.0f}/s" for k, v in runs.items() if inflight in v
                )
            )
    return runs
