"""``python -m bench [--quick]``: run the whole suite once and report it.

Phases, in order (each bounded in calls and seconds, see ``bench.config``):
sequential latency, throughput by concurrency (with the Celery and naive
peers), a py-spy profile of the master under load, streamed output (master
against a direct stream) and the cost of the per-job log line, fleet-scale registration
and ping sweeps, and master memory (with dead slave addresses, then live
ones). Every process is started through ``arko.testing.Fleet`` and stopped by
its PID when the run ends, whatever happened.

A full run writes ``bench/results.json``, ``bench/out/latency.png`` (copied to
``docs/bench-latency.png``) and ``bench/out/table.txt``; ``--quick`` writes
only under ``bench/out/`` (``*-quick.*``), so development runs never touch
the published figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from arko.testing import Fleet
from bench import heartbeat, postgres, profile
from bench.config import FULL, QUICK, BenchConfig
from bench.dispatch import DispatchRig, sequential_latency, start_rig, throughput, timed
from bench.fleet import fleet_scale, memory, memory_live
from bench.fleet import render as render_fleet
from bench.procs import REPO, LoadGen, export_arko, start_loadgen
from bench.render import plot, table
from bench.report import machine_info, summarise, targets
from bench.stats import Spread
from bench.streaming import render as render_streaming
from bench.streaming import streaming

OUT = REPO / "bench" / "out"
Say = Callable[[str], None]


def _jsonable(value: Any) -> Any:
    """Spreads become dicts, everything else stays as JSON knows it."""
    if isinstance(value, Spread):
        return value.to_dict()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _profile(
    cfg: BenchConfig, rig: DispatchRig, gen: LoadGen, workdir: Path, say: Say
) -> dict[str, Any] | None:
    """Sample the as-shipped master with py-spy while the load generator keeps 64 jobs in flight."""
    if profile.find_py_spy() is None:
        say("py-spy is not installed: no profile (pip install py-spy)")
        return None
    raw = OUT / f"master-profile-{cfg.name}.txt"
    raw.unlink(missing_ok=True)
    spy = profile.record(rig.master.pid, cfg.profile_seconds, raw, workdir / "py-spy.log")
    try:
        run = timed(gen, rig.endpoints["master"], 10**7, 64, cfg.profile_seconds + 1.0, 0)
    finally:
        profile.finish(spy, timeout=cfg.profile_seconds + 30)
    if not raw.exists():
        say(f"py-spy wrote no profile; its log: {(workdir / 'py-spy.log').read_text()[-500:]}")
        return None
    summary = profile.summarise(raw)
    summary.update(rate_under_profiler=run["rate"], raw_file=str(raw.relative_to(REPO)))
    return summary


def run_suite(cfg: BenchConfig, workdir: Path, with_profile: bool, say: Say) -> dict[str, Any]:
    """Every measurement of one run, raw (all repeats of every figure)."""
    raw: dict[str, Any] = {}
    fleet = Fleet(workdir)
    with fleet.running():
        raw["streaming"] = streaming(cfg, fleet, workdir, say)
        gen = start_loadgen(fleet)
        rig = start_rig(fleet, workdir, say)
        raw["latency"] = sequential_latency(cfg, rig, gen, say)
        raw["throughput"] = throughput(cfg, rig, gen, say)
        raw["profile"] = _profile(cfg, rig, gen, workdir, say) if with_profile else None
        # The dispatch daemons (Redis and the Celery worker included) are done:
        # stop them so they take no CPU from the fleet measurements.
        rig.stop()
        raw["fleet"] = fleet_scale(cfg, fleet, gen, workdir, say)
        raw["memory"] = memory(cfg, fleet, gen, workdir, say)
        raw["memory_live"] = memory_live(cfg, fleet, gen, workdir, say)
    return raw


def publish(cfg: BenchConfig, meta: dict[str, Any], raw: dict[str, Any]) -> Path:
    """Summarise ``raw``, print the table, write results, table and plot; return the PNG.

    A full run's files are the published ones (``bench/results.json``, the
    copy in ``docs/``); other runs write only under ``bench/out``.
    """
    summary = summarise(raw, cfg.ping_timeout)
    checks = targets(raw, summary, cfg.ping_timeout)
    text = table(meta, cfg, raw, summary, checks)
    if raw.get("streaming"):
        text += "\n\n" + render_streaming(raw["streaming"])
    print(text)
    full = cfg.name == "full"
    suffix = "" if full else f"-{cfg.name}"
    results = REPO / "bench" / "results.json" if full else OUT / f"results{suffix}.json"
    document = {
        "meta": meta,
        "config": asdict(cfg),
        "targets": checks,
        "summary": summary,
        "raw": raw,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(_jsonable(document), indent=1, allow_nan=True) + "\n")
    (OUT / f"table{suffix}.txt").write_text(text + "\n")
    png = OUT / f"latency{suffix}.png"
    plot(cfg, meta, summary, png)
    if full:
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(png, REPO / "docs" / "bench-latency.png")
    return png


def _restore(raw: dict[str, Any]) -> dict[str, Any]:
    """Undo what JSON did to the raw runs: concurrency keys back to ints."""
    raw["throughput"] = {
        label: {int(c): runs for c, runs in by_c.items()}
        for label, by_c in raw["throughput"].items()
    }
    return raw


def render_saved(path: Path) -> int:
    """Rebuild summary, targets, table and plot of a saved run, without measuring again."""
    document = json.loads(path.read_text())
    saved = document["config"]
    # A setting added since the run was saved takes its value from the same kind of run.
    base = asdict(FULL if saved.get("name") == "full" else QUICK)
    cfg = BenchConfig(**{**base, **saved, "concurrencies": tuple(saved["concurrencies"])})
    png = publish(cfg, document["meta"], _restore(document["raw"]))
    print(f"rendered {path} again: {png.relative_to(REPO)}", file=sys.stderr)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="reduced sizes and repeats (under 2 minutes), outputs bench/out/*-quick.*",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument(
        "--postgres-only",
        action="store_true",
        help="measure only the master on PostgreSQL against SQLite (jobs, then the "
        "heartbeat slave read); print, write no files",
    )
    parser.add_argument(
        "--fleet-only",
        action="store_true",
        help="measure only the fleet: registration and sweeps over the fleet addresses, "
        "memory and a restarted master's sweep with live slaves, the heartbeat slave "
        "read; print them, write no files",
    )
    parser.add_argument(
        "--streaming-only",
        action="store_true",
        help="measure only streamed output and the log-line cost; print them, write no files",
    )
    parser.add_argument(
        "--arko-ref",
        metavar="REF",
        help="run the daemons on arko/ as committed at this git ref (e.g. HEAD) "
        "instead of the working tree",
    )
    parser.add_argument(
        "--render",
        metavar="RESULTS_JSON",
        type=Path,
        help="measure nothing: rebuild targets, table and plot of a saved results file",
    )
    parser.add_argument(
        "--keep-workdir",
        action="store_true",
        help="keep the daemons' logs and databases after a successful run",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the suite (or re-render a saved run), print the table, write the outputs."""
    args = _parser().parse_args(argv)
    if args.render is not None:
        return render_saved(args.render)
    cfg = QUICK if args.quick else FULL
    began = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {text}", file=sys.stderr, flush=True)

    OUT.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="arko-bench-"))
    say(f"{cfg.name} run; daemons' logs in {workdir}")
    if args.arko_ref:
        # Every process the run starts (daemons, load generator, relays)
        # inherits this, so they all import the exported arko first.
        snapshot = export_arko(args.arko_ref, workdir / "arko-src")
        old = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = f"{snapshot}{os.pathsep}{old}" if old else str(snapshot)
        say(f"daemons run arko/ from {args.arko_ref}, exported to {snapshot}")
    if args.streaming_only:
        with Fleet(workdir).running() as fleet:
            print(render_streaming(streaming(cfg, fleet, workdir, say)))
        shutil.rmtree(workdir, ignore_errors=True)
        return 0
    if args.fleet_only:
        with Fleet(workdir).running() as fleet:
            gen = start_loadgen(fleet)
            scale = fleet_scale(cfg, fleet, gen, workdir, say)
            live = memory_live(cfg, fleet, gen, workdir, say)
        print(render_fleet(scale, live))
        print(heartbeat.render(heartbeat.heartbeat_read(cfg, workdir, say)))
        shutil.rmtree(workdir, ignore_errors=True)
        return 0
    if args.postgres_only:
        with Fleet(workdir).running() as fleet:
            print(postgres.render(postgres.postgres_vs_sqlite(cfg, fleet, workdir, say)))
        print(heartbeat.render(heartbeat.heartbeat_read(cfg, workdir, say)))
        shutil.rmtree(workdir, ignore_errors=True)
        return 0
    meta = machine_info(args.arko_ref)
    try:
        raw = run_suite(cfg, workdir, not args.no_profile, say)
    except BaseException:
        say(f"run failed; logs kept in {workdir}")
        raise
    meta["seconds"] = round(time.monotonic() - began, 1)
    png = publish(cfg, meta, raw)
    if not args.keep_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    say(f"done in {meta['seconds']:.0f} s; plot {png.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
