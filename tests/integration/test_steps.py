"""The built-in arko.v1.Steps service on real daemons, run through the master's Jobs API."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from arko.testing import Daemon, Fleet, wait_until
from arko.v1 import jobs_pb2, jobs_pb2_grpc

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RUN = "arko.v1.Steps.Run"
OUTPUT = jobs_pb2.JobEvent.OUTPUT


@pytest.fixture
def master(fleet: Fleet) -> Daemon:
    """A master with one slave serving the steps of tests/fixtures/steps.toml."""
    m = fleet.master()
    fleet.slave(
        m,
        "--config",
        str(FIXTURES / "steps.toml"),
        env={"ARKO_SLAVE_JOIN_TOKEN": "", "ARKO_SLAVE_RUN_DELAY": "0"},
    )
    return m


@pytest.fixture
def jobs(master: Daemon) -> Iterator[jobs_pb2_grpc.JobsStub]:
    with grpc.insecure_channel(master.address) as channel:
        yield jobs_pb2_grpc.JobsStub(channel)


def _run(jobs: jobs_pb2_grpc.JobsStub, step: str, **params: str) -> Iterator[jobs_pb2.JobEvent]:
    request = jobs_pb2.RunRequest(method=RUN)
    request.args.update({"step": step, "params": params})
    return jobs.Run(request, timeout=60)  # type: ignore[no-any-return]


def _outputs(events: list[jobs_pb2.JobEvent]) -> list[dict[str, object]]:
    return [json.loads(e.output) for e in events if e.kind == OUTPUT]


def _collect(stream: Iterator[jobs_pb2.JobEvent]) -> tuple[list[jobs_pb2.JobEvent], grpc.RpcError]:
    """Every event of a stream that must end with an error, and that error."""
    events: list[jobs_pb2.JobEvent] = []
    with pytest.raises(grpc.RpcError) as caught:
        events.extend(stream)
    return events, caught.value


def test_five_thousand_lines_stream_in_order(jobs: jobs_pb2_grpc.JobsStub) -> None:
    """Every line of the step arrives, in order, then its exit; the job succeeds."""
    events = list(_run(jobs, "lines", count="5000"))
    out = _outputs(events)
    assert [o["text"] for o in out[:-1]] == [f"line {i}" for i in range(1, 5001)]
    assert all(o["stream"] == "STDOUT" for o in out[:-1])
    assert [o["number"] for o in out[:-1]] == list(range(1, 5001))
    assert out[-1]["stream"] == "EXIT" and out[-1]["exitCode"] == 0
    assert events[-1].job.state == jobs_pb2.SUCCEEDED


def test_exit_code_three_fails_the_job_and_is_recorded(
    master: Daemon, jobs: jobs_pb2_grpc.JobsStub, grpcurl: str
) -> None:
    """A step exiting 3: grpcurl's stream ends in error, the record says exit code 3."""
    body = json.dumps({"method": RUN, "args": {"step": "exit", "params": {"code": "3"}}})
    done = subprocess.run(
        [grpcurl, "-plaintext", "-d", body, master.address, "arko.v1.Jobs/Run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0, done.stdout
    events = [json.loads(chunk) for chunk in done.stdout.replace("}\n{", "}\x00{").split("\x00")]
    outputs = [json.loads(e["output"]) for e in events if e.get("kind") == "OUTPUT"]
    assert sorted((o["stream"], o["text"]) for o in outputs[:-1]) == [
        ("STDERR", "err"),
        ("STDOUT", "out"),
    ]
    assert outputs[-1] == {"stream": "EXIT", "text": "", "number": 2, "exitCode": 3}
    record = jobs.Get(jobs_pb2.GetJobRequest(job_id=events[0]["job_id"]), timeout=10)
    assert record.state == jobs_pb2.FAILED
    assert "exited with code 3" in record.error
    assert "exited with code 3" in done.stderr


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_cancel_kills_the_step_and_every_child(jobs: jobs_pb2_grpc.JobsStub) -> None:
    """Cancelling a step whose children ignore SIGTERM leaves none of their PIDs alive."""
    stream = _run(jobs, "spawn")
    first = next(stream)
    pids: list[int] = []
    for event in stream:
        if event.kind == OUTPUT:
            pids.append(int(json.loads(event.output)["text"].split()[1]))
            if len(pids) == 3:
                break
    assert all(_alive(pid) for pid in pids)
    record = jobs.Cancel(jobs_pb2.CancelRequest(job_id=first.job_id, reason="test"), timeout=30)
    assert record.state == jobs_pb2.CANCELLED
    wait_until(lambda: not any(_alive(pid) for pid in pids), 30, "the step's processes to end")


def test_timeout_kills_the_step(jobs: jobs_pb2_grpc.JobsStub) -> None:
    """A step past its declared timeout is killed and the job fails with DEADLINE_EXCEEDED."""
    events, error = _collect(_run(jobs, "hang"))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "ran past its timeout of 1s" in str(error.details())
    assert _outputs(events)[-1]["exitCode"] == -15  # SIGTERM


@pytest.mark.parametrize(
    ("step", "params", "named"),
    [
        ("deploy-everything", {}, "'deploy-everything'"),
        ("exit", {"code": "1", "argv": "rm -rf /"}, "'argv'"),
        ("exit", {}, "'code'"),
        ("exit", {"code": "1; reboot"}, "'1; reboot'"),
    ],
)
def test_undeclared_step_or_parameter_is_refused(
    jobs: jobs_pb2_grpc.JobsStub, step: str, params: dict[str, str], named: str
) -> None:
    """An undeclared step or parameter, a missing or bad value: INVALID_ARGUMENT naming it."""
    _, error = _collect(_run(jobs, step, **params))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in str(error.details())


@pytest.mark.parametrize("step", ["image", "image-missing-tool"])
def test_missing_container_engine_is_a_failed_precondition(
    jobs: jobs_pb2_grpc.JobsStub, step: str
) -> None:
    """A step whose ``needs`` command fails or is missing is refused with the given reason."""
    events, error = _collect(_run(jobs, step))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no container engine is reachable" in str(error.details())
    assert _outputs(events) == []


def test_step_gets_its_folder_and_env_but_not_the_slaves_secrets(
    jobs: jobs_pb2_grpc.JobsStub,
) -> None:
    """cwd is relative to the config file; env is added; ARKO_SLAVE_* is not passed on."""
    out = _outputs(list(_run(jobs, "env")))
    assert out[0]["text"] == "mode=test join=unset in=fixtures"


def test_list_names_the_steps_and_their_parameters(jobs: jobs_pb2_grpc.JobsStub) -> None:
    """Steps/List, run as a job, tells a caller what it may ask for."""
    request = jobs_pb2.RunRequest(method="arko.v1.Steps.List")
    events = list(jobs.Run(request, timeout=60))
    steps = {s["name"]: s for s in _outputs(events)[0]["steps"]}  # type: ignore[union-attr]
    assert "lines" in steps and "exit" in steps
    assert steps["exit"]["params"] == [
        {
            "name": "code",
            "pattern": "[0-9]{1,3}",
            "choices": [],
            "default": "",
            "required": True,
            "description": "",
        }
    ]
