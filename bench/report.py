"""From raw runs to what a reader sees: summaries, targets (issues 5, 26), table, plot.

Raw runs stay in ``results.json`` beside their summaries, so a figure can
always be traced back to the repeats it came from.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from bench.procs import REPO, bench_env
from bench.stats import Spread, paired_ratio

LABELS = {
    "direct": "direct (generated stub)",
    "master": "arko master, 1 slave (as shipped)",
    "master_open": "arko master, 1 slave --no-protect",
    "master4": "arko master, 4 slaves --no-protect",
    "celery": "Celery + Redis, 1 worker",
    "naive": "naive relay (dial + reflection per job)",
    "relay": "bare relay, generated stubs (one-hop floor)",
}
# The growth allowed over the second half of the jobs for RSS to count as flat.
FLAT_MB = 5.0
FLAT_FRACTION = 0.03


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def _run(command: Sequence[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> str:
    """The command's stripped output; "unknown" when it cannot run."""
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=20,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def machine_info(arko_ref: str | None) -> dict[str, Any]:
    """What the numbers were measured on, and which arko code the daemons ran.

    Args:
        arko_ref: The git ref the daemons' arko was exported from, None for
            the working tree (then whether ``arko/`` had local edits is noted).
    """
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "grpcio": _version("grpcio"),
        "protobuf": _version("protobuf"),
        "celery": _version("celery"),
        "redis_server": _run(["redis-server", "--version"]).split(" sha=")[0],
        "arko_commit": _run(["git", "rev-parse", "--short", arko_ref or "HEAD"]),
        "arko_ref": arko_ref or "working tree",
        "arko_tree_dirty": arko_ref is None
        and _run(["git", "status", "--porcelain", "--", "arko"]) != "",
        # Run from a neutral folder, as the daemons are: from the repository
        # root, the working tree's arko/ would shadow an exported one.
        "arko_imported_from": _run(
            [sys.executable, "-c", "import arko, os; print(os.path.dirname(arko.__file__))"],
            env=bench_env(),
            cwd=Path(tempfile.gettempdir()),
        ),
    }


def _spread(runs: Sequence[dict[str, Any]], key: str) -> Spread:
    return Spread.of([float(r[key]) for r in runs])


def summarise(raw: dict[str, Any], cfg_ping_timeout: float) -> dict[str, Any]:
    """Medians, spreads and paired ratios of every figure in ``raw``."""
    out: dict[str, Any] = {}
    lat = raw["latency"]
    out["latency"] = {
        label: {"p50_ms": _spread(runs, "p50_ms"), "p99_ms": _spread(runs, "p99_ms")}
        for label, runs in lat.items()
    }

    def lat_ratio(a: str, b: str, key: str) -> Spread:
        return paired_ratio([r[key] for r in lat[a]], [r[key] for r in lat[b]])

    out["latency_ratios"] = {
        "master/direct p50": lat_ratio("master", "direct", "p50_ms"),
        "master/direct p99": lat_ratio("master", "direct", "p99_ms"),
        "master_open/direct p50": lat_ratio("master_open", "direct", "p50_ms"),
        "master_open/direct p99": lat_ratio("master_open", "direct", "p99_ms"),
        "master/celery p50": lat_ratio("master", "celery", "p50_ms"),
        "naive/direct p50": lat_ratio("naive", "direct", "p50_ms"),
        "relay/direct p50": lat_ratio("relay", "direct", "p50_ms"),
        "relay/direct p99": lat_ratio("relay", "direct", "p99_ms"),
        "master/relay p50": lat_ratio("master", "relay", "p50_ms"),
    }
    thr = raw["throughput"]
    out["throughput"] = {
        label: {
            c: {k: _spread(runs, k) for k in ("rate", "p50_ms", "p99_ms")}
            for c, runs in by_c.items()
        }
        for label, by_c in thr.items()
    }

    def thr_ratio(a: str, b: str, c: int) -> Spread:
        return paired_ratio([r["rate"] for r in thr[a][c]], [r["rate"] for r in thr[b][c]])

    concurrencies = sorted(thr["direct"])
    out["throughput_ratios"] = {
        f"{a}/{b}": {c: thr_ratio(a, b, c) for c in concurrencies}
        for a, b in (
            ("master", "direct"),
            ("relay", "direct"),
            ("master", "relay"),
            ("master_open", "direct"),
            ("master4", "direct"),
            ("master", "celery"),
        )
    }

    def peaks(label: str) -> list[float]:
        reps = len(thr[label][concurrencies[0]])
        return [max(thr[label][c][i]["rate"] for c in concurrencies) for i in range(reps)]

    # The hop's CPU per job over every throughput run at 64 in flight, and
    # one by one (the sequential latency runs): the master against the relay.
    out["hop_cpu_ms"] = {
        label: {
            "@1": _spread(lat[label], "hop_cpu_ms"),
            "@64": _spread(thr[label][64], "hop_cpu_ms") if 64 in thr[label] else Spread.of([]),
        }
        for label in ("relay", "master", "master_open")
        if all("hop_cpu_ms" in r for r in lat[label])
    }
    if {"relay", "master"} <= out["hop_cpu_ms"].keys():
        out["hop_cpu_ratios"] = {
            f"master/relay {c}": paired_ratio(
                [r["hop_cpu_ms"] for r in runs_m], [r["hop_cpu_ms"] for r in runs_r]
            )
            for c, runs_m, runs_r in (
                ("@1", lat["master"], lat["relay"]),
                ("@64", thr["master"].get(64, []), thr["relay"].get(64, [])),
            )
        }
    out["peak"] = {
        label: Spread.of(peaks(label))
        for label in ("direct", "relay", "master", "master_open", "master4", "celery")
    }
    out["peak_ratios"] = {"master/celery": paired_ratio(peaks("master"), peaks("celery"))}
    naive_c = next(iter(thr["naive"]))
    out["naive"] = {
        "inflight": naive_c,
        "cached/naive": thr_ratio("master_open", "naive", naive_c),
    }
    fleet = raw["fleet"]
    out["fleet"] = {
        "registration_rate": _spread(fleet["registrations"], "rate"),
        "registration_errors": sum(r["errors"] for r in fleet["registrations"]),
        "sweep_seconds": _spread(fleet["sweeps"], "seconds"),
        "sweep_cpu_seconds": _spread(fleet["sweeps"], "cpu_seconds"),
        "sweep_over_timeout": Spread.of([s["seconds"] / cfg_ping_timeout for s in fleet["sweeps"]]),
    }
    timed_runs = [r for runs in lat.values() for r in runs] + [
        r for by_c in thr.values() for runs in by_c.values() for r in runs
    ]
    out["foreign_cpu"] = Spread.of([r.get("foreign_cpu", 0.0) for r in timed_runs])
    mem = raw["memory"]
    chunks = mem["chunks"]
    half = chunks[len(chunks) // 2 - 1]["rss_mb"] if len(chunks) >= 2 else float("nan")
    end = chunks[-1]["rss_mb"] if chunks else float("nan")
    steady = max([mem["registered_mb"], *(c["rss_mb"] for c in chunks)])
    # A master pings all its slaves every ping_interval (30 s by default), so
    # what it holds after a sweep is its normal state, not an outlier.
    swept = mem["restart_sweep"]["after_mb"]
    out["memory"] = {
        "steady_max_mb": steady,
        "after_sweep_mb": swept,
        "operating_max_mb": max(steady, swept),
        "sweep_peak_mb": mem["restart_sweep"]["peak_mb"],
        "growth_second_half_mb": end - half,
        "flat": (end - half) <= max(FLAT_MB, FLAT_FRACTION * half),
    }
    live = raw.get("memory_live")  # absent from runs before live slaves were measured
    if live is not None:
        out["memory_live"] = {
            "after_sweep_mb": live["restart_sweep"]["after_mb"],
            "operating_max_mb": max(live["registered_mb"], live["restart_sweep"]["after_mb"]),
            "sweep_peak_mb": live["restart_sweep"]["peak_mb"],
        }
    return out


def targets(raw: dict[str, Any], s: dict[str, Any], ping_timeout: float) -> list[dict[str, Any]]:
    """Each target (issues 5 and 26) with its figure from this run and whether it holds."""
    lr, nv, fl, mem = s["latency_ratios"], s["naive"], s["fleet"], s["memory"]
    at64 = s["throughput_ratios"]["master/direct"].get(64, Spread.of([]))
    floor64 = s["throughput_ratios"]["relay/direct"].get(64, Spread.of([]))
    raw_mem = raw["memory"]
    jobs_ok = raw_mem["jobs"] >= raw_mem["jobs_target"]
    rows = [
        ("master p50 <= 2.3x direct", lr["master/direct p50"].median, "<=", 2.3, "x"),
        ("master p99 <= 3x direct", lr["master/direct p99"].median, "<=", 3.0, "x"),
        ("master throughput @64 >= 0.40x direct", at64.median, ">=", 0.40, "x"),
        (
            "master throughput >= 3x Celery (peak vs peak)",
            s["peak_ratios"]["master/celery"].median,
            ">=",
            3.0,
            "x",
        ),
        ("master p50 <= 0.55x Celery p50", lr["master/celery p50"].median, "<=", 0.55, "x"),
        (
            f"cached >= 4x naive throughput (@{nv['inflight']})",
            nv["cached/naive"].median,
            ">=",
            4.0,
            "x",
        ),
        (
            f"{raw['fleet']['slaves']}-slave sweep ({raw['fleet']['live']} live, "
            f"{raw['fleet']['dead']} dead) <= 1.5x ping timeout",
            fl["sweep_over_timeout"].median,
            "<=",
            1.5,
            "x",
        ),
        (
            f"master RSS with {raw_mem['slaves']} dead slaves, after a sweep, <= 150 MB",
            mem["operating_max_mb"],
            "<=",
            150.0,
            " MB",
        ),
    ]
    # Issue 26: the master against the bare relay, the floor of any one-hop design.
    relay64 = s["throughput_ratios"]["master/relay"].get(64, Spread.of([]))
    rows += [
        ("master p50 <= 1.1x bare relay", lr["master/relay p50"].median, "<=", 1.1, "x"),
        ("master throughput @64 >= 0.9x bare relay", relay64.median, ">=", 0.9, "x"),
        (
            "master peak throughput >= 2.5x Celery's",
            s["peak_ratios"]["master/celery"].median,
            ">=",
            2.5,
            "x",
        ),
    ]
    cpu = s.get("hop_cpu_ratios")
    if cpu is not None:
        rows.append(
            (
                "master CPU per job @64 <= 1.3x relay's",
                cpu["master/relay @64"].median,
                "<=",
                1.3,
                "x",
            )
        )
    if "memory_live" in s:
        rows.append(
            (
                f"master RSS with {raw['memory_live']['slaves']} live slaves, "
                "after a sweep, <= 200 MB",
                s["memory_live"]["operating_max_mb"],
                "<=",
                200.0,
                " MB",
            )
        )
    out = [
        {
            "target": name,
            "value": value,
            "limit": f"{op} {limit:g}{unit.strip()}",
            "ok": value <= limit if op == "<=" else value >= limit,
            "shown": f"{value:.2f}{unit}",
        }
        for name, value, op, limit, unit in rows
    ]
    # What the bare generated-stub relay reaches in the same run: a target
    # below it cannot be met by any one-hop design on this machine.
    floors = {
        "master p50 <= 2.3x direct": lr["relay/direct p50"].median,
        "master p99 <= 3x direct": lr["relay/direct p99"].median,
        "master throughput @64 >= 0.40x direct": floor64.median,
    }
    for row in out:
        floor = floors.get(str(row["target"]))
        if floor is not None:
            row["floor"] = floor
            row["shown"] = f"{row['shown']} (bare relay: {floor:.2f}x)"
    out.append(
        {
            "target": f"RSS flat over {raw_mem['jobs_target']} jobs",
            "value": mem["growth_second_half_mb"],
            "limit": f"growth over 2nd half <= {FLAT_MB:g} MB or {FLAT_FRACTION:.0%}",
            "ok": bool(mem["flat"]) and jobs_ok,
            "shown": f"{mem['growth_second_half_mb']:+.1f} MB over jobs "
            f"{raw_mem['jobs'] // 2}-{raw_mem['jobs']}"
            + ("" if jobs_ok else f" (only {raw_mem['jobs']} jobs in the time budget)"),
        }
    )
    return out
