"""arko.v1.Steps/Pipeline on real daemons: declared steps run as child jobs of one job."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from arko.testing import Daemon, Fleet
from arko.v1 import jobs_pb2, jobs_pb2_grpc

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PIPELINE = "arko.v1.Steps.Pipeline"
OUTPUT = jobs_pb2.JobEvent.OUTPUT


@pytest.fixture
def master(fleet: Fleet) -> Daemon:
    """A master with one slave serving the steps and pipelines of tests/fixtures/steps.toml."""
    m = fleet.master()
    fleet.slave(m, "--config", str(FIXTURES / "steps.toml"), env={"ARKO_SLAVE_RUN_DELAY": "0"})
    return m


@pytest.fixture
def jobs(master: Daemon) -> Iterator[jobs_pb2_grpc.JobsStub]:
    with grpc.insecure_channel(master.address) as channel:
        yield jobs_pb2_grpc.JobsStub(channel)


def _pipeline(jobs: jobs_pb2_grpc.JobsStub, name: str, **params: str) -> list[jobs_pb2.JobEvent]:
    """Every event of the pipeline's job; an error ending the stream is raised."""
    request = jobs_pb2.RunRequest(method=PIPELINE)
    request.args.update({"pipeline": name, "params": params})
    events: list[jobs_pb2.JobEvent] = []
    try:
        events.extend(jobs.Run(request, timeout=120))
    except grpc.RpcError as exc:
        exc.events = events  # type: ignore[attr-defined]
        raise
    return events


def _children(jobs: jobs_pb2_grpc.JobsStub, parent: str) -> dict[str, jobs_pb2.Job]:
    """The parent's children by step name (from their typed arguments)."""
    listed = jobs.List(jobs_pb2.ListJobsRequest(parent_id=parent), timeout=10)
    return {job.args["step"]: job for job in listed.jobs}


def test_stages_run_as_child_jobs_in_order(jobs: jobs_pb2_grpc.JobsStub) -> None:
    """Each step is a child job with its own record and output; stages run in order."""
    events = _pipeline(jobs, "checks", count="3", code="0")
    parent = events[-1].job
    assert parent.state == jobs_pb2.SUCCEEDED, parent
    progress = [json.loads(e.output) for e in events if e.kind == OUTPUT]
    told = [(p["step"], p["state"]) for p in progress]
    first = {("lines", "QUEUED"), ("env", "QUEUED"), ("lines", "SUCCEEDED"), ("env", "SUCCEEDED")}
    assert set(told[:4]) == first and told[4:] == [("exit", "QUEUED"), ("exit", "SUCCEEDED")]

    children = _children(jobs, parent.id)
    assert sorted(children) == ["env", "exit", "lines"]
    for child in children.values():
        assert child.parent_id == parent.id and child.trigger == "job" and child.depth == 1
        assert child.state == jobs_pb2.SUCCEEDED
    # The pipeline's parameters went to the steps declaring them, and only there.
    assert dict(children["lines"].args["params"]) == {"count": "3"}
    assert dict(children["env"].args["params"]) == {}
    # The third stage began once the first two steps had ended.
    ends = [children[s].ended_at.ToNanoseconds() for s in ("lines", "env")]
    assert children["exit"].started_at.ToNanoseconds() >= max(ends)
    # A step's output is kept with its own job.
    watched = jobs.Watch(jobs_pb2.WatchRequest(job_id=children["lines"].id), timeout=10)
    texts = [json.loads(e.output).get("text") for e in watched if e.kind == OUTPUT]
    assert texts[:3] == ["line 1", "line 2", "line 3"]


def test_a_failing_step_fails_the_pipeline_and_the_next_stage_never_runs(
    jobs: jobs_pb2_grpc.JobsStub,
) -> None:
    """exit 3 in the last stage: the pipeline ends FAILED_PRECONDITION naming the step."""
    with pytest.raises(grpc.RpcError) as caught:
        _pipeline(jobs, "checks", count="1", code="3")
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "step 'exit' of pipeline 'checks' ended FAILED" in str(caught.value.details())
    parent = caught.value.events[-1].job  # type: ignore[attr-defined]
    assert parent.state == jobs_pb2.FAILED
    children = _children(jobs, parent.id)
    assert children["exit"].state == jobs_pb2.FAILED
    assert "exited with code 3" in children["exit"].error


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("nope", {}, "no pipeline named 'nope'; declared pipelines: checks"),
        ("checks", {"colour": "red"}, "no step of pipeline 'checks' has a parameter 'colour'"),
    ],
)
def test_bad_pipeline_requests_are_refused_before_any_step(
    jobs: jobs_pb2_grpc.JobsStub, name: str, params: dict[str, str], expected: str
) -> None:
    """An unknown pipeline or parameter: INVALID_ARGUMENT, and no child job."""
    with pytest.raises(grpc.RpcError) as caught:
        _pipeline(jobs, name, **params)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expected in str(caught.value.details())
    parent = caught.value.events[-1].job  # type: ignore[attr-defined]
    assert _children(jobs, parent.id) == {}


def test_a_pipeline_naming_an_undeclared_step_stops_the_slave_at_start(
    fleet: Fleet, tmp_path: Path
) -> None:
    """The mistake is a start-up error naming the pipeline and the step, not a failed build."""
    config = tmp_path / "slave.toml"
    config.write_text(
        'service = ["arko.slave.builtin.steps:plugin"]\n'
        '[steps.a]\nargv = ["true"]\n'
        '[pipelines.p]\nstages = [["a", "b"]]\n'
    )
    slave = fleet.slave(None, "--config", str(config), wait=False)
    assert slave.proc is not None
    assert slave.proc.wait(30) != 0
    assert "pipeline 'p' names undeclared steps: b" in slave.log_text()
