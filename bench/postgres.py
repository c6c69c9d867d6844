"""The master on PostgreSQL against the master on SQLite, same run, same load generator.

A master on a SQLite file, and two masters on one fresh PostgreSQL database
(created here, dropped at the end; the server is ``ARKO_TEST_POSTGRES``,
default the machine's own); each database has two open (``--no-protect``)
slaves. Three arms: ``sqlite`` and ``postgresql`` (one master each), and
``postgresql x2``, whose calls go round-robin to both PostgreSQL masters (a
gRPC ``ipv4:`` target listing both). Runs alternate between the arms, so a
noisy moment hits all alike: sequential latency (p50/p99 of one call at a
time) and throughput at 64 calls in flight, through ``Execution/ExecuteJob``.

On PostgreSQL a job's first record is written before the job is sent (group
committed; see README "The master on PostgreSQL"); later records reach either
database through the journal in batches. The difference shown is that write
plus pool and batch costs on the event loop; two masters add a second event
loop, on a machine whose two cores also run the slaves, PostgreSQL and the
load generator.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from arko.testing import Fleet, create_postgres_database, drop_postgres_database
from bench.config import BenchConfig
from bench.dispatch import Endpoint, timed
from bench.procs import start_loadgen

Say = Callable[[str], None]


def postgres_vs_sqlite(cfg: BenchConfig, fleet: Fleet, workdir: Path, say: Say) -> dict[str, Any]:
    """Latency and throughput of a master on each database; stops its daemons at the end."""
    url = create_postgres_database()
    before = len(fleet.daemons)
    try:
        gen = start_loadgen(fleet)
        endpoints = {}
        lite = fleet.master(db=str(workdir / "master-sqlite.db"))
        pg = [fleet.master("--name", f"bench{i}", db=url) for i in range(2)]
        for master in (lite, lite, *pg):
            fleet.slave(master, "--no-protect")
        addresses = {
            "sqlite": lite.address,
            "postgresql": pg[0].address,
            "postgresql x2": "ipv4:" + ",".join(m.address for m in pg),
        }
        for label, address in addresses.items():
            endpoints[label] = Endpoint(label, "unary", {"address": address, "target": "execute"})
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
        drop_postgres_database(url)
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
    lines = ["Master database (ExecuteJob, two open slaves, median of repeats)"]
    for label, figures in result.items():
        lines.append(
            f"  {label:<11} p50 {figures['p50_ms']:.3f} ms  p99 {figures['p99_ms']:.3f} ms  "
            f"{figures['rate_64']:,.0f} jobs/s @64"
        )
    pg, lite, two = result["postgresql"], result["sqlite"], result["postgresql x2"]
    lines.append(
        f"  PostgreSQL/SQLite: {pg['p50_ms'] / lite['p50_ms']:.2f}x latency, "
        f"{pg['rate_64'] / lite['rate_64']:.2f}x throughput"
    )
    lines.append(
        f"  two masters/one (PostgreSQL): {two['p50_ms'] / pg['p50_ms']:.2f}x latency, "
        f"{two['rate_64'] / pg['rate_64']:.2f}x throughput"
    )
    return "\n".join(lines)
