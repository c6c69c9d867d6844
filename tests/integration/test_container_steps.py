"""Build steps in podman containers (``--engine podman``) on real daemons, run as jobs.

The slave serves tests/fixtures/container_steps.toml; each step that names an
image runs in a fresh container of localhost/arko-base (``make image-base``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from arko.testing import Daemon, Fleet, free_port, wait_until
from arko.v1 import jobs_pb2, jobs_pb2_grpc
from tests.containers import containers_named, podman_env, require_podman

pytestmark = pytest.mark.one_pass("the steps run on the slave; the master's database plays no part")

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CONFIG = FIXTURES / "container_steps.toml"
RUN = "arko.v1.Steps.Run"
OUTPUT = jobs_pb2.JobEvent.OUTPUT


@pytest.fixture(scope="module")
def daemons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, Daemon]]:
    """A master and a slave with --engine podman serving the container steps."""
    require_podman()
    with Fleet(tmp_path_factory.mktemp("containers")).running() as fleet:
        master = fleet.master()
        env = {**podman_env(), "ARKO_SLAVE_JOIN_TOKEN": "", "ARKO_SLAVE_RUN_DELAY": "0"}
        slave = fleet.slave(master, "--engine", "podman", "--config", str(CONFIG), env=env)
        yield master, slave


@pytest.fixture
def slave(daemons: tuple[Daemon, Daemon]) -> Daemon:
    return daemons[1]


@pytest.fixture
def jobs(daemons: tuple[Daemon, Daemon]) -> Iterator[jobs_pb2_grpc.JobsStub]:
    with grpc.insecure_channel(daemons[0].address) as channel:
        yield jobs_pb2_grpc.JobsStub(channel)


def _run(jobs: jobs_pb2_grpc.JobsStub, step: str, **params: str) -> Iterator[jobs_pb2.JobEvent]:
    request = jobs_pb2.RunRequest(method=RUN)
    request.args.update({"step": step, "params": params})
    return jobs.Run(request, timeout=120)  # type: ignore[no-any-return]


def _outputs(events: list[jobs_pb2.JobEvent]) -> list[dict[str, object]]:
    return [json.loads(e.output) for e in events if e.kind == OUTPUT]


def _texts(events: list[jobs_pb2.JobEvent]) -> list[object]:
    return [o["text"] for o in _outputs(events) if o["stream"] != "EXIT"]


def _collect(stream: Iterator[jobs_pb2.JobEvent]) -> tuple[list[jobs_pb2.JobEvent], grpc.RpcError]:
    """Every event of a stream that must end with an error, and that error."""
    events: list[jobs_pb2.JobEvent] = []
    with pytest.raises(grpc.RpcError) as caught:
        events.extend(stream)
    return events, caught.value


def _container(slave: Daemon, step: str) -> str:
    """The name of the container the slave last started for ``step``."""

    def started() -> str | None:
        names = [e["container"] for e in slave.events("step_started") if e["step"] == step]
        return names[-1] if names else None

    return wait_until(started, 30, f"the slave to log the container of step {step!r}")


def _first_output(stream: Iterator[jobs_pb2.JobEvent]) -> jobs_pb2.JobEvent:
    """The stream's first event (the job's), once the step has printed a line."""
    first = next(stream)
    for event in stream:
        if event.kind == OUTPUT:
            assert json.loads(event.output)["text"] == "started"
            return first
    raise AssertionError("the step ended without printing")


def test_five_thousand_lines_stream_in_order_and_the_container_is_removed(
    slave: Daemon, jobs: jobs_pb2_grpc.JobsStub
) -> None:
    """Every line arrives in order, numbered, then the exit; --rm leaves no container."""
    events = list(_run(jobs, "lines", count="5000"))
    out = _outputs(events)
    assert [o["text"] for o in out[:-1]] == [f"line {i}" for i in range(1, 5001)]
    assert [o["number"] for o in out[:-1]] == list(range(1, 5001))
    assert all(o["stream"] == "STDOUT" for o in out[:-1])
    assert out[-1]["stream"] == "EXIT" and out[-1]["exitCode"] == 0
    assert events[-1].job.state == jobs_pb2.SUCCEEDED
    assert containers_named(_container(slave, "lines")) == []


def test_step_sees_its_workdir_at_work_and_not_the_hosts_files(
    jobs: jobs_pb2_grpc.JobsStub, tmp_path: Path
) -> None:
    """The workdir is mounted at /work, the cwd; a host file outside it is not there,
    though a step on the host reads it."""
    outside = tmp_path / "outside.txt"
    outside.write_text("on the host only\n")
    for path in ["inside.txt", "/work/inside.txt"]:
        assert _texts(list(_run(jobs, "read", path=path))) == ["inside the workdir"]
    assert _texts(list(_run(jobs, "read-on-host", path=str(outside)))) == ["on the host only"]
    events, error = _collect(_run(jobs, "read", path=str(outside)))
    assert error.code() == grpc.StatusCode.UNKNOWN
    assert "No such file or directory" in str(_texts(events))
    assert _outputs(events)[-1]["exitCode"] == 1


def test_step_gets_its_env_but_nothing_of_the_slaves(jobs: jobs_pb2_grpc.JobsStub) -> None:
    """env is passed into the container; the slave's own variables are not."""
    assert _texts(list(_run(jobs, "env"))) == ["mode=test join=unset in=/work"]


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port listening on the host's loopback."""
    with socket.create_server(("127.0.0.1", free_port())) as server:
        yield server.getsockname()[1]


def test_network_none_cannot_reach_a_port_on_the_host(
    jobs: jobs_pb2_grpc.JobsStub, listener: int
) -> None:
    """With network "none" the host's loopback port is out of reach; on the host's
    network the same step reaches it."""
    ok = list(_run(jobs, "connect-host-network", port=str(listener)))
    assert _texts(ok) == ["reached"]
    events, error = _collect(_run(jobs, "connect", port=str(listener)))
    assert error.code() == grpc.StatusCode.UNKNOWN
    assert "ConnectionRefusedError" in str(_texts(events))


def test_cancel_kills_and_removes_the_container(
    slave: Daemon, jobs: jobs_pb2_grpc.JobsStub
) -> None:
    """Cancelling the job stops the container and removes it: podman ps -a has none."""
    stream = _run(jobs, "sleep")
    first = _first_output(stream)
    name = _container(slave, "sleep")
    assert containers_named(name) == [name]
    record = jobs.Cancel(jobs_pb2.CancelRequest(job_id=first.job_id, reason="test"), timeout=30)
    assert record.state == jobs_pb2.CANCELLED
    wait_until(lambda: not containers_named(name), 60, f"container {name} to be removed")
    assert slave.alive()


def test_timeout_kills_and_removes_the_container(
    slave: Daemon, jobs: jobs_pb2_grpc.JobsStub
) -> None:
    """A step past its timeout fails with DEADLINE_EXCEEDED once its container is gone,
    with no more output than its exit."""
    stream = _run(jobs, "hang")
    _first_output(stream)
    name = _container(slave, "hang")
    assert containers_named(name) == [name]
    events, error = _collect(stream)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "ran past its timeout of 10s" in str(error.details())
    # Its command got SIGTERM (128 + 15); podman had nothing to complain of.
    assert [(o["stream"], o.get("exitCode")) for o in _outputs(events)] == [("EXIT", 143)]
    assert containers_named(name) == []


def test_memory_limit_is_enforced_and_the_slave_survives(
    slave: Daemon, jobs: jobs_pb2_grpc.JobsStub
) -> None:
    """Under its 64m a step holds 16 MiB; past it, 256 MiB, it is killed (137);
    the slave runs the next step."""
    assert _texts(list(_run(jobs, "hog", mib="16"))) == ["held 16 MiB"]
    events, error = _collect(_run(jobs, "hog", mib="256"))
    assert error.code() == grpc.StatusCode.UNKNOWN
    assert "exited with code 137" in str(error.details())
    assert _outputs(events)[-1]["exitCode"] == 137
    assert not (FIXTURES / "oom").exists(), "conmon's oom file was left in the step's folder"
    assert slave.alive()
    assert _texts(list(_run(jobs, "lines", count="2"))) == ["line 1", "line 2"]


def _start_slave(
    tmp_path: Path, config: str, *flags: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Start a slave on ``config`` (a TOML text) that must exit at start-up."""
    path = tmp_path / "slave.toml"
    path.write_text(config)
    return subprocess.run(
        [
            *(sys.executable, "-m", "arko.slave", "--mode", "rpc", "--port", str(free_port())),
            *("--listen_host", "127.0.0.1", "--config", str(path), *flags),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **podman_env(), **(env or {})},
    )


_STEPS = 'service = ["arko.slave.builtin.steps:plugin"]\n[steps.unit]\nargv = ["true"]\n'


@pytest.mark.parametrize(
    ("extra", "flags", "said"),
    [
        (
            'image = "localhost/arko-base:latest"\nmemory = "2gb"\n',
            ["--engine", "podman"],
            "memory '2gb' is not a size such as 512m or 2g",
        ),
        (
            'image = "localhost/arko-base:latest"\n',
            [],
            "step 'unit' names the image localhost/arko-base:latest, but --engine inprocess "
            "runs steps on the host: start the slave with --engine podman",
        ),
        (
            'memory = "1g"\n',
            ["--engine", "podman"],
            "a step without an image has no container to give memory",
        ),
        (
            'image = "localhost/arko-base:latest"\nnetwork = "wifi"\n',
            ["--engine", "podman"],
            "network",
        ),
        (
            'image = "localhost/arko-base:latest"\ncpus = 0\n',
            ["--engine", "podman"],
            "cpus",
        ),
        (
            'image = "localhost/arko-base:latest"\ncpus = 4096\n',
            ["--engine", "podman"],
            "step 'unit' asks for 4096 CPUs",
        ),
    ],
)
def test_bad_container_config_is_refused_at_start_up(
    tmp_path: Path, extra: str, flags: list[str], said: str
) -> None:
    """A bad container setting stops the slave at start-up, saying what is wrong."""
    require_podman()
    done = _start_slave(tmp_path, _STEPS + extra, *flags)
    assert done.returncode != 0
    assert said in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"PATH": "/nonexistent"}, "--engine podman: podman is not on PATH"),
        ({"CONTAINERS_CONF": "/nonexistent/containers.conf"}, "`podman info` failed (exit"),
    ],
)
def test_engine_podman_that_does_not_answer_is_a_start_up_error(
    tmp_path: Path, env: dict[str, str], said: str
) -> None:
    """--engine podman with no podman, or one that cannot work, stops the slave at once."""
    require_podman()
    done = _start_slave(tmp_path, _STEPS, "--engine", "podman", env=env)
    assert done.returncode != 0
    assert said in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
