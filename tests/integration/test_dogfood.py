"""arko builds arko: the shipped dogfood/slave.toml steps, run through a master.

One test on purpose: building a wheel and installing it (twice, into fresh
virtualenvs) is the slow part, and each step depends on the one before.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from arko.testing import Daemon, Fleet, free_port, wait_until
from arko.v1 import jobs_pb2, jobs_pb2_grpc
from tests.locks import checkout_build

ROOT = Path(__file__).resolve().parents[2]
RUN = "arko.v1.Steps.Run"


def _step(address: str, step: str, **params: str) -> list[str]:
    """Run a step through the master at ``address``; its lines, once it succeeded."""
    with grpc.insecure_channel(address) as channel:
        request = jobs_pb2.RunRequest(method=RUN)
        request.args.update({"step": step, "params": params})
        events = list(jobs_pb2_grpc.JobsStub(channel).Run(request, timeout=600))
    assert events[-1].job.state == jobs_pb2.SUCCEEDED, events[-1].job
    return [json.loads(e.output)["text"] for e in events if e.kind == jobs_pb2.JobEvent.OUTPUT]


def _deployed_pid(state: Path) -> int:
    return int(json.loads((state / "deploy" / "master.json").read_text())["pid"])


def _serving(address: str) -> bool:
    """Whether the master at ``address`` answers its gRPC health check with SERVING."""
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """The dogfood state folder; a master deployed there is stopped by its PID at the end."""
    folder = tmp_path / "dogfood"
    yield folder
    record = folder / "deploy" / "master.json"
    if record.exists():
        pid = _deployed_pid(folder)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.one_pass("its subject is the build and deploy steps; the master deployed is on SQLite")
@pytest.mark.timeout(600)  # builds a wheel and installs it twice with its dependencies
def test_wheel_then_deploy_twice_keeps_the_database(
    fleet: Fleet, state: Path, tmp_path: Path
) -> None:
    """wheel builds an installable wheel; deploy starts a healthy master from it; a second
    deploy replaces that master and keeps its job history; undeploy stops it."""
    master = fleet.master()
    fleet.slave(
        master,
        "--config",
        str(ROOT / "dogfood" / "slave.toml"),
        env={"ARKO_DOGFOOD_DIR": str(state)},
    )
    with checkout_build():  # the step builds in the checkout
        lines = _step(master.address, "wheel")
    wheels = list((state / "wheels").glob("arko_ci-*.whl"))
    assert len(wheels) == 1 and f"wheel: {wheels[0]}" in lines

    port, http_port = free_port(), free_port()
    lines = _step(master.address, "deploy", port=str(port), http_port=str(http_port))
    assert "health: SERVING" in lines
    # The wheel carries the built web UI, which the deployed master serves.
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/", timeout=10) as page:
        assert page.read() == (ROOT / "ui" / "dist" / "index.html").read_bytes()
    deployed = Daemon("master", port, [], tmp_path / "unused.log")  # for its address only
    assert _serving(deployed.address)
    first_pid = _deployed_pid(state)

    # One job in the deployed master's history, run on a slave of this checkout.
    helper = fleet.slave(deployed, "--run_delay", "0")
    with grpc.insecure_channel(deployed.address) as channel:
        jobs = jobs_pb2_grpc.JobsStub(channel)
        events = list(jobs.Run(jobs_pb2.RunRequest(method="MyPipeline.DryRun"), timeout=60))
        job_id = events[0].job_id
        assert events[-1].job.state == jobs_pb2.SUCCEEDED
    helper.stop()

    lines = _step(master.address, "deploy", port=str(port), http_port=str(http_port))
    assert "health: SERVING" in lines
    second_pid = _deployed_pid(state)
    assert second_pid != first_pid
    wait_until(lambda: not _alive(first_pid), 30, "the first master to end")
    with grpc.insecure_channel(deployed.address) as channel:
        record = jobs_pb2_grpc.JobsStub(channel).Get(
            jobs_pb2.GetJobRequest(job_id=job_id), timeout=10
        )
    assert record.state == jobs_pb2.SUCCEEDED
    # The installed wheel ships arko's protos for arko-protoc.
    venv = Path(json.loads((state / "deploy" / "master.json").read_text())["venv"])
    assert list(venv.glob("lib/python3*/site-packages/arko/sdk/include/arko/v1/options.proto"))

    _step(master.address, "undeploy")
    wait_until(lambda: not _alive(second_pid), 30, "the deployed master to end")


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
