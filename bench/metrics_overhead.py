"""What Prometheus metrics cost the dispatch path: the same master with and without them.

``python -m bench.metrics_overhead [--repeats N] [--calls N]`` starts two
masters, each with one slave as shipped: one pair with ``--metrics_port`` on
both daemons and one without, and times sequential ``Execution/ExecuteJob(MyPipeline.DryRun)``
through each from the bench's load generator, interleaved (repeat 1 of both,
then repeat 2, ...) so a noisy moment on a shared machine hits both sides; the
p50 ratio is paired per repeat. Metrics are scraped once per repeat, so the
registry is read while it is being written, as in production.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from arko.testing import Fleet, free_port
from bench.dispatch import Endpoint, timed
from bench.procs import start_loadgen
from bench.stats import Spread, paired_ratio


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print one JSON summary."""
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_overhead")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved timed repeats")
    parser.add_argument("--calls", type=int, default=2000, help="sequential calls per repeat")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls before each run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="arko-bench-metrics-") as tmp:
        workdir = Path(tmp)
        with Fleet(workdir).running() as fleet:
            metrics_port = free_port()
            on = fleet.master("--metrics_port", str(metrics_port), db=workdir / "on.db")
            fleet.slave(on, "--metrics_port", str(free_port()))
            off = fleet.master(db=workdir / "off.db")
            fleet.slave(off)
            gen = start_loadgen(fleet)
            endpoints = {
                label: Endpoint(label, "unary", {"address": m.address, "target": "execute"})
                for label, m in (("metrics_on", on), ("metrics_off", off))
            }
            runs: dict[str, list[dict[str, Any]]] = {label: [] for label in endpoints}
            for rep in range(args.repeats):
                for label, ep in endpoints.items():
                    runs[label].append(timed(gen, ep, args.calls, 1, 120.0, args.warmup))
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as page:
                    scraped = page.read().decode()
                print(
                    f"repeat {rep + 1}/{args.repeats}: "
                    + ", ".join(f"{k} p50 {v[-1]['p50_ms']:.3f} ms" for k, v in runs.items()),
                    file=sys.stderr,
                )
    counted = [line for line in scraped.splitlines() if line.startswith("arko_jobs_total")]
    summary: dict[str, Any] = {
        label: {q: Spread.of([r[f"{q}_ms"] for r in reps]).to_dict() for q in ("p50", "p99")}
        for label, reps in runs.items()
    }
    for q in ("p50", "p99"):
        summary[f"{q}_ratio_on_over_off"] = paired_ratio(
            [r[f"{q}_ms"] for r in runs["metrics_on"]], [r[f"{q}_ms"] for r in runs["metrics_off"]]
        ).to_dict()
    summary["jobs_counted"] = counted
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
