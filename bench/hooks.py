"""``make bench-hooks``: a webhook's latency to job STARTED, against ``POST /api/v1/run``.

One master with ``--http_port`` and a github ``[[trigger]]``, and one example
slave (``MyPipeline.DryRun``, no delay). Each round posts one signed push to
``/hooks/bench`` and one body to ``/api/v1/run/MyPipeline.DryRun`` (detached,
202 at once), alternately so a noisy moment on the shared machine hits both
alike, and waits for each job to end before the next. The latency of a job is
its record's ``started_at`` (the master's clock, when a slave took it) minus
the moment the client began its POST (the same machine's clock): what a
webhook costs on the way in (signature, filters, pointer mapping, the
delivery's claim row) beside the plain API's descriptor check.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from arko.testing import Fleet, free_port, wait_until
from bench.stats import percentile

SECRET = b"bench-hook-secret"
METHOD = "MyPipeline.DryRun"


def _config(folder: Path) -> Path:
    (folder / "hook-secret").write_bytes(SECRET)
    path = folder / "master.toml"
    path.write_text(
        '[[trigger]]\nname = "bench"\nforge = "github"\nsecret_file = "hook-secret"\n'
        f'events = ["push"]\nbranches = ["main"]\nmethod = "{METHOD}"\n'
        'params = { param = "${/after}" }\n'
    )
    return path


def _started(session: requests.Session, base: str, job_id: str) -> float:
    """Unix seconds the job started, once it has ended (it must succeed)."""

    def ended() -> dict[str, Any] | None:
        job: dict[str, Any] = session.get(f"{base}/api/v1/jobs/{job_id}", timeout=30).json()
        return job if job["state"] not in ("QUEUED", "RUNNING") else None

    job = wait_until(ended, 60, f"job {job_id} to end", interval=0.005)
    if job["state"] != "SUCCEEDED":
        raise RuntimeError(f"job {job_id} ended {job['state']}: {job.get('error')}")
    stamp = dt.datetime.fromisoformat(job["started_at"].replace("Z", "+00:00"))
    return stamp.timestamp()


def _hook(session: requests.Session, base: str) -> float:
    body = json.dumps(
        {"ref": "refs/heads/main", "after": uuid.uuid4().hex, "repository": {"full_name": "b/b"}}
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest(),
    }
    began = time.time()
    answer = session.post(f"{base}/hooks/bench", data=body, headers=headers, timeout=30)
    if answer.status_code != 202:
        raise RuntimeError(f"the hook answered {answer.status_code}: {answer.text}")
    return _started(session, base, answer.json()["job_id"]) - began


def _api(session: requests.Session, base: str) -> float:
    began = time.time()
    answer = session.post(
        f"{base}/api/v1/run/{METHOD}", json={"param": uuid.uuid4().hex}, timeout=30
    )
    if answer.status_code != 202:
        raise RuntimeError(f"/api/v1/run answered {answer.status_code}: {answer.text}")
    return _started(session, base, answer.json()["id"]) - began


def measure(fleet: Fleet, rounds: int) -> dict[str, list[float]]:
    """Alternating hook and API jobs, after a warm-up; every latency, in seconds."""
    http = free_port()
    master = fleet.master("--http_port", str(http), "--config", str(_config(fleet.workdir)))
    fleet.slave(master, "--run_delay", "0")
    base = f"http://127.0.0.1:{http}"
    raw: dict[str, list[float]] = {"hook": [], "api": []}
    with requests.Session() as session:
        for _ in range(10):  # warm both paths: the catalog, the connections
            _hook(session, base)
            _api(session, base)
        for _ in range(rounds):
            raw["hook"].append(_hook(session, base))
            raw["api"].append(_api(session, base))
    return raw


def render(raw: dict[str, list[float]]) -> str:
    """p50 and p99 of each path, in milliseconds, and the hook's extra at p50."""
    rows = [f"POST to job STARTED, ms ({len(raw['hook'])} alternating rounds)"]
    rows.append(f"{'':26}{'p50':>10}{'p99':>10}{'mean':>10}")
    for key, label in (("hook", "POST /hooks/NAME"), ("api", "POST /api/v1/run/METHOD")):
        ms = [s * 1000 for s in raw[key]]
        rows.append(
            f"{label:26}{percentile(ms, 50):10.2f}{percentile(ms, 99):10.2f}"
            f"{statistics.fmean(ms):10.2f}"
        )
    extra = (percentile(raw["hook"], 50) - percentile(raw["api"], 50)) * 1000
    rows.append(f"{'hook minus API at p50':26}{extra:10.2f}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Measure and print; nothing is written but the daemons' temporary folder."""
    parser = argparse.ArgumentParser(prog="python -m bench.hooks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args(argv)
    rounds = 50 if args.quick else 300
    with (
        tempfile.TemporaryDirectory(prefix="arko-bench-hooks-") as tmp,
        Fleet(Path(tmp)).running() as fleet,
    ):
        raw = measure(fleet, rounds)
    print(render(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
