"""arko's own images: built from this checkout by the dogfood ``image`` step, run with podman.

One test on purpose: each part needs the one before (the wheel, the images
built from it, a container of each). It goes through a real slave serving
``dogfood/slave.toml``, so the step's ``needs`` and parameters are the ones
shipped. The images get a tag of their own and every container a name of its
own; all are removed by name at the end, whatever happened.

Never skipped quietly: with no podman, or no base image (``make image-base``),
the test fails saying so, unless ``ARKO_TEST_CONTAINERS=off`` says this
machine runs no containers on purpose. On hosts like the project's, podman
needs ``CONTAINERS_CONF=containers/containers.conf`` (runc, ulimits).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from arko.testing import Fleet, free_port, wait_until
from arko.v1 import jobs_pb2, jobs_pb2_grpc
from tests.locks import checkout_build

ROOT = Path(__file__).resolve().parents[2]
BASE = "localhost/arko-base:latest"
SLAVE_PORT = 10002  # the slave's default port, where its image listens


def _podman(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *argv], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def podman() -> None:
    """Fail, naming what is missing, when this machine cannot build arko's images."""
    if os.environ.get("ARKO_TEST_CONTAINERS") == "off":
        pytest.skip("ARKO_TEST_CONTAINERS=off: this machine runs no containers, on purpose")
    if shutil.which("podman") is None:
        pytest.fail("podman is missing: install podman and runc, or set ARKO_TEST_CONTAINERS=off")
    probe = _podman("image", "exists", BASE)
    if probe.returncode != 0:
        pytest.fail(f"podman has no {BASE} ({probe.stderr.strip()}): run make image-base")


@pytest.fixture
def tag(podman: None) -> Iterator[str]:
    """A tag of this test's own; its images and containers (named after it) go at the end."""
    tag = f"test-{os.getpid()}-{secrets.token_hex(3)}"
    yield tag
    names = _podman("ps", "--all", "--filter", f"name={tag}", "--format", "{{.Names}}")
    for name in names.stdout.split():
        _podman("rm", "--force", "--ignore", "--time", "5", name)
    _podman("rmi", "--ignore", f"localhost/arko-master:{tag}", f"localhost/arko-slave:{tag}")


def _step(address: str, step: str, **params: str) -> list[str]:
    """Run a step through the master at ``address``; its lines, once it succeeded."""
    with grpc.insecure_channel(address) as channel:
        request = jobs_pb2.RunRequest(method="arko.v1.Steps.Run")
        request.args.update({"step": step, "params": params})
        events = list(jobs_pb2_grpc.JobsStub(channel).Run(request, timeout=900))
    lines = [json.loads(e.output).get("text") for e in events if e.kind == jobs_pb2.JobEvent.OUTPUT]
    assert events[-1].job.state == jobs_pb2.SUCCEEDED, (events[-1].job, lines[-20:])
    return lines


def _serving(address: str) -> bool:
    """Whether ``grpc.health.v1.Health/Check`` at ``address`` answers SERVING (False while
    it cannot be reached)."""
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _containers(name: str) -> list[str]:
    """The containers named ``name`` in ``podman ps -a``, running or not."""
    found = _podman("ps", "--all", "--filter", f"name=^{name}$", "--format", "{{.Names}}")
    assert found.returncode == 0, found.stderr
    return found.stdout.split()


@pytest.mark.slow
@pytest.mark.one_pass("its subject is the images; the masters it starts are on SQLite")
@pytest.mark.timeout(900)  # a wheel, the wheels of its dependencies, two image builds
def test_images_built_from_the_checkout_serve(fleet: Fleet, tag: str, tmp_path: Path) -> None:
    """The image step builds both images from the checkout's wheel; deploy source=image
    runs the master's as a non-root container answering its health check; undeploy
    removes it; a container of the slave's image registers with a master and runs a job."""
    master = fleet.master()
    state = tmp_path / "dogfood"
    fleet.slave(
        master,
        "--config",
        str(ROOT / "dogfood" / "slave.toml"),
        env={"ARKO_DOGFOOD_DIR": str(state)},
    )
    with checkout_build():  # the wheel step builds in the checkout
        _step(master.address, "wheel")
    lines = _step(master.address, "image", tag=tag)
    for kind in ("master", "slave"):
        assert any(f"built localhost/arko-{kind}:{tag} in" in line for line in lines), lines
        assert _podman("image", "exists", f"localhost/arko-{kind}:{tag}").returncode == 0

    port, http_port = free_port(), free_port()
    params = {"port": str(port), "http_port": str(http_port), "source": "image", "tag": tag}
    assert "health: SERVING" in _step(master.address, "deploy", **params)
    container = json.loads((state / "deploy" / "master.json").read_text())["container"]
    assert _serving(f"127.0.0.1:{port}")
    user = _podman("exec", container, "id", "-un")
    assert user.stdout.strip() == "arko", user
    _step(master.address, "undeploy")
    assert _containers(container) == []

    # The slave's image: on the host's network so it reaches the test's master on
    # loopback (registration from loopback needs no join token).
    slave_port = free_port()
    name = f"arko-slave-{tag}"
    started = _podman(
        "run", "--detach", "--name", name, "--network=host", f"localhost/arko-slave:{tag}",
        "--listen_host", "127.0.0.1", "--port", str(slave_port),
        "--master", master.address, "--run_delay", "0",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    wait_until(lambda: _serving(f"127.0.0.1:{slave_port}"), 60, "the slave's container to serve")
    registered = master.wait_for_event("slave_registered", timeout=60, count=2)
    assert registered["slave"].endswith(f":{slave_port}"), registered
    # MyPipeline is served by the container's slave only (the dogfood slave serves steps).
    with grpc.insecure_channel(master.address) as channel:
        request = jobs_pb2.RunRequest(method="MyPipeline.DryRun")
        events = list(jobs_pb2_grpc.JobsStub(channel).Run(request, timeout=60))
    assert events[-1].job.state == jobs_pb2.SUCCEEDED, events[-1].job
    assert events[-1].job.slave.endswith(f":{slave_port}"), events[-1].job
    assert _podman("rm", "--force", "--time", "5", name).returncode == 0
    assert _containers(name) == []
