"""``make dogfood``: arko lints, tests, packages and deploys this checkout through arko.

Starts a master and a slave serving the steps of ``dogfood/slave.toml`` on
free loopback ports and runs its ``dogfood`` pipeline as one job through the
master's ``arko.v1.Jobs/Run`` with the real ``grpcurl`` binary: the pipeline
job runs ``lint`` and ``test`` at once, then ``wheel``, then ``image`` (the
master's and the slave's images, built with podman), then ``deploy`` of the
master's image as a container, each as a child job, printing each step's
start and end as they come. Then it prints the job's tree (``arko job ID``),
shows the deployed master answering, and stops everything it started: the
deployed container (the ``undeploy`` step), the slave and the master.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from arko.testing import Fleet, free_port
from scripts.demo import grpcurl

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = "dogfood"


def _events(master: str, body: str) -> Iterator[dict[str, Any]]:
    """The events of one ``arko.v1.Jobs/Run`` grpcurl call, as they come; then its stderr."""
    with subprocess.Popen(
        [grpcurl(), "-plaintext", "-d", body, master, "arko.v1.Jobs/Run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None, "pipes were asked for"
        block = []
        # grpcurl prints one indented JSON object per message; a top-level } ends it.
        for line in proc.stdout:
            block.append(line)
            if line.rstrip() == "}":
                yield json.loads("".join(block))
                block = []
        error = proc.stderr.read().strip()
    if error:
        yield {"stderr": error}


def run_pipeline(master: str, params: dict[str, str]) -> str:
    """Run the dogfood pipeline as one job, printing each step's start and end; its id
    once it succeeded, else ""."""
    body = json.dumps(
        {"method": "arko.v1.Steps.Pipeline", "args": {"pipeline": PIPELINE, "params": params}}
    )
    print(f"$ grpcurl -plaintext -d '{body}' {master} arko.v1.Jobs/Run", flush=True)
    job_id, state, error = "", "", ""
    for event in _events(master, body):
        if "stderr" in event:
            error = event["stderr"]
        elif event.get("kind") == "ACCEPTED":
            job_id = event.get("jobId") or event["job_id"]  # grpcurl versions differ
            print(f"== pipeline job {job_id}", flush=True)
        elif event.get("kind") == "OUTPUT":
            step = json.loads(event["output"])
            where = f" on {step['slave']}" if step.get("slave") else ""
            print(f"[{step['step']}] {step['state']}{where} (job {step['jobId']})", flush=True)
        elif event.get("kind") == "FINISHED":
            state = event["job"]["state"]
    print(f"== {PIPELINE}: {state or 'no answer'}" + (f" ({error})" if error else ""), flush=True)
    return job_id if state == "SUCCEEDED" else ""


def show_tree(master: str, job_id: str) -> None:
    """Print the pipeline job with its children, as ``arko job ID`` shows it."""
    print(f"\n$ arko --master {master} job {job_id}", flush=True)
    arko = Path(sys.executable).parent / "arko"
    subprocess.run([str(arko), "--master", master, "job", job_id], check=False, timeout=60)


def run_step(master: str, step: str, params: dict[str, str]) -> bool:
    """Run one step through the master, print its output live; whether it succeeded."""
    body = json.dumps({"method": "arko.v1.Steps.Run", "args": {"step": step, "params": params}})
    print(f"\n== {step}\n$ grpcurl -plaintext -d '{body}' {master} arko.v1.Jobs/Run", flush=True)
    state, error = "", ""
    for event in _events(master, body):
        if "stderr" in event:
            error = event["stderr"]
        elif event.get("kind") == "OUTPUT":
            output = json.loads(event["output"])
            if output["stream"] == "EXIT":
                print(f"[{step}] exit code {output['exitCode']}", flush=True)
            else:
                print(f"[{step}] {output['text']}", flush=True)
        elif event.get("kind") == "FINISHED":
            state = event["job"]["state"]
    print(f"== {step}: {state or 'no answer'}" + (f" ({error})" if error else ""), flush=True)
    return state == "SUCCEEDED"


def main() -> int:
    port, http_port = free_port(), free_port()
    with (
        tempfile.TemporaryDirectory(prefix="arko-dogfood-") as tmp,
        Fleet(Path(tmp)).running() as fleet,
    ):
        master = fleet.master()
        config = ROOT / "dogfood" / "slave.toml"
        fleet.slave(master, "--config", str(config))
        print(f"master on {master.address}, dogfood slave ({config.relative_to(ROOT)}) registered")
        try:
            job_id = run_pipeline(
                master.address, {"port": str(port), "http_port": str(http_port), "source": "image"}
            )
            if not job_id:
                return 1
            show_tree(master.address, job_id)
            deployed = f"127.0.0.1:{port}"
            print(f"\n== the deployed master answers\n$ grpcurl -plaintext {deployed} list")
            done = subprocess.run(
                [grpcurl(), "-plaintext", deployed, "list"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            print(done.stdout or done.stderr, end="")
            return done.returncode
        finally:
            run_step(master.address, "undeploy", {})


if __name__ == "__main__":
    sys.exit(main())
