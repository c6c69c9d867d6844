"""The master on PostgreSQL against the master on SQLite, same run, same load generator.

Two masters, each with one open (``--no-protect``) slave: one on a SQLite
file, one on a fresh PostgreSQL database (created here, dropped at the end;
the server is ``ARKO_TEST_POSTGRES``, default the machine's own). Runs
alternate between the two (SQLite, PostgreSQL, SQLite, ...), so a noisy moment
hits both alike: sequential latency (p50/p99 of one call at a time) and
throughput at 64 calls in flight, through ``Execution/ExecuteJob``.

Job records reach either database through the master's journal and batched
writes, so the job path itself never waits on the database; the difference
shown is what remains (pool and batch costs on the event loop).
"""

from __future__ import annotations

import asyncio
import statistics
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from arko.testing import Fleet
from bench.config import BenchConfig
from bench.dispatch import Endpoint, timed
from bench.procs import start_loadgen
from tests.postgres import admin, server_url

Say = Callable[[str], None]


def postgres_vs_sqlite(cfg: BenchConfig, fleet: Fleet, workdir: Path, say: Say) -> dict[str, Any]:
    """Latency and throughput of a master on each database; stops its daemons at the end."""
    name = f"arko_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = urllib.parse.urlunsplit(urllib.parse.urlsplit(server_url())._replace(path=f"/{name}"))
    before = len(fleet.daemons)
    try:
        gen = start_loadgen(fleet)
        endpoints = {}
        for label, db in (("sqlite", str(workdir / "master-sqlite.db")), ("postgresql", url)):
            master = fleet.master(db=db)
            fleet.slave(master, "--no-protect")
            endpoints[label] = Endpoint(
                label, "unary", {"address": master.address, "target": "execute"}
            )
        latency: dict[str, list[dict[str, Any]]] = {label: [] for label in endpoints}
        rate: dict[str, list[dict[str, Any]]] = {label: [] for label in endpoints}
        for rep in range(cfg.repeats):
            for label, ep in endpoints.items():
                calls = cfg.latency_calls
                latency[label].append(
                    timed(gen, ep, calls, 1, cfg.throughput_seconds * 8, min(cfg.warmup, calls))
                )
                rate[label].append(
                    timed(gen, ep, cfg.throughput_calls, 64, cfg.throughput_seconds, cfg.warmup)
                )
            say(
                f"postgres repeat {rep + 1}/{cfg.repeats}: "
                + ", ".join(
                    f"{k} p50 {latency[k][-1]['p50_ms']:.3f} ms, {rate[k][-1]['rate']:.0f}/s @64"
                    for k in endpoints
                )
            )
    finally:
        for daemon in reversed(fleet.daemons[before:]):
            daemon.stop()
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return {
        label: {
            "p50_ms": statistics.median(r["p50_ms"] for r in latency[label]),
            "p99_ms": statistics.median(r["p99_ms"] for r in latency[label]),
            "rate_64": statistics.median(r["rate"] for r in rate[label]),
        }
        for label in endpoints
    }


def render(result: dict[str, Any]) -> str:
    """The comparison as a few lines of text."""
    lines = ["Master database (ExecuteJob, one open slave, median of repeats)"]
    for label, figures in result.items():
        lines.append(
            f"  {label:<11} p50 {figures['p50_ms']:.3f} ms  p99 {figures['p99_ms']:.3f} ms  "
            f"{figures['rate_64']:,.0f} jobs/s @64"
        )
    pg, lite = result["postgresql"], result["sqlite"]
    lines.append(
        f"  PostgreSQL/SQLite: {pg['p50_ms'] / lite['p50_ms']:.2f}x latency, "
        f"{pg['rate_64'] / lite['rate_64']:.2f}x throughput"
    )
    return "\n".join(lines)
