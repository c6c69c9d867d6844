"""arko.sdk.JobContext over a hand-written fake channel: what a handler sees of the master."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest

from arko.sdk import JobContext, JobFailed, JobRefused, Masters, NotAJob
from arko.v1 import jobs_pb2

JOB_ID, CHILD_ID = "a" * 32, "b" * 32
CREDENTIALS = (("arko-job-id", JOB_ID), ("arko-job-token", "t0ken"))
Answer = Callable[[Any], list[jobs_pb2.JobEvent | grpc.aio.AioRpcError]]


class FakeContext:
    """The two things JobContext reads of a handler's ServicerContext."""

    def __init__(self, metadata: tuple[tuple[str, str], ...], left: float | None = 30.0) -> None:
        self._metadata, self._left = metadata, left

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def time_remaining(self) -> float | None:
        return self._left


class FakeChannel:
    """Answers each streaming call with the events (and errors) ``answer`` gives."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    def unary_stream(self, path: str, **_: Any) -> Callable[..., AsyncIterator[Any]]:
        async def call(request: Any, **kwargs: Any) -> AsyncIterator[Any]:
            self.calls.append((path, request, kwargs))
            for item in self.answer(request):
                if isinstance(item, grpc.aio.AioRpcError):
                    raise item
                yield item

        return call

    def unary_unary(self, path: str, **_: Any) -> None:
        return None


class FakeMasters(Masters):
    def __init__(self, channels: dict[str, FakeChannel]) -> None:
        super().__init__(tuple(channels))
        self.fakes = channels

    def channel(self, address: str) -> Any:
        return self.fakes[address]


def _error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


def _finished(state: int, code: str = "OK", error: str = "") -> jobs_pb2.JobEvent:
    job = jobs_pb2.Job(id=CHILD_ID, method="Ci.Test", state=state, code=code, error=error)
    return jobs_pb2.JobEvent(job_id=CHILD_ID, kind=jobs_pb2.JobEvent.FINISHED, job=job)


def _accepted() -> jobs_pb2.JobEvent:
    return jobs_pb2.JobEvent(job_id=CHILD_ID, kind=jobs_pb2.JobEvent.ACCEPTED)


def _job(answer: Answer, *more: Answer) -> tuple[JobContext, list[FakeChannel]]:
    channels = [FakeChannel(a) for a in (answer, *more)]
    masters = FakeMasters({f"m{i}:1": c for i, c in enumerate(channels)})
    return JobContext.of(FakeContext(CREDENTIALS), masters), channels  # type: ignore[arg-type]


def test_a_call_no_master_sent_is_not_a_job() -> None:
    """Without the job id and token, or any master to reach, of() says why."""
    with pytest.raises(NotAJob, match="only a job sent by an arko master"):
        JobContext.of(FakeContext(()), Masters(("m:1",)))  # type: ignore[arg-type]
    with pytest.raises(NotAJob, match="no master is configured"):
        JobContext.of(FakeContext(CREDENTIALS), Masters())  # type: ignore[arg-type]


def test_the_master_that_sent_the_job_is_dialled_first() -> None:
    context = FakeContext((*CREDENTIALS, ("arko-job-master", "sender:9")))
    masters = FakeMasters({"sender:9": FakeChannel(lambda _: [_finished(jobs_pb2.SUCCEEDED)])})
    masters.addresses = ("registered:1",)
    job = JobContext.of(context, masters)  # type: ignore[arg-type]
    assert job.id == JOB_ID
    assert asyncio.run(job.run("Ci.Test")).id == CHILD_ID


def test_run_sends_the_token_and_time_left_and_returns_the_record() -> None:
    job, [channel] = _job(lambda _: [_accepted(), _finished(jobs_pb2.SUCCEEDED)])
    record = asyncio.run(job.run("Ci.Test", {"a": "1"}, {"n": 2}, {"os": "linux"}))
    assert record.state == jobs_pb2.SUCCEEDED
    [(path, request, kwargs)] = channel.calls
    assert path == "/arko.v1.Jobs/Run" and kwargs["metadata"] == CREDENTIALS
    assert 0 < request.timeout.ToTimedelta().total_seconds() <= 30 and not request.detach
    assert dict(request.params) == {"a": "1"} and request.args["n"] == 2


def test_a_child_that_failed_raises_job_failed_with_its_record() -> None:
    failed = _finished(jobs_pb2.FAILED, "FAILED_PRECONDITION", "boom")
    job, _ = _job(lambda _: [_accepted(), failed, _error(grpc.StatusCode.FAILED_PRECONDITION, "")])
    with pytest.raises(JobFailed) as caught:
        asyncio.run(job.run("Ci.Test"))
    assert caught.value.job.id == CHILD_ID
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    for word in (CHILD_ID, "Ci.Test", "FAILED", "boom"):
        assert word in str(caught.value)


def test_a_child_refused_before_any_record_raises_job_refused() -> None:
    refusal = _error(grpc.StatusCode.FAILED_PRECONDITION, "deeper than --max_job_depth 8")
    job, _ = _job(lambda _: [refusal])
    with pytest.raises(JobRefused, match="max_job_depth") as caught:
        asyncio.run(job.run("Ci.Test"))
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION


def test_an_unreachable_master_gives_way_to_the_next() -> None:
    down = _error(grpc.StatusCode.UNAVAILABLE, "connection refused")
    job, channels = _job(lambda _: [down], lambda _: [_finished(jobs_pb2.SUCCEEDED)])
    assert asyncio.run(job.run("Ci.Test")).state == jobs_pb2.SUCCEEDED
    assert [len(c.calls) for c in channels] == [1, 1]
    job, _ = _job(lambda _: [down], lambda _: [down])
    with pytest.raises(JobRefused, match="no master answered") as caught:
        asyncio.run(job.wait(CHILD_ID))
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE


def test_start_returns_the_id_and_wait_the_record_without_raising() -> None:
    def answer(request: Any) -> list[Any]:
        if isinstance(request, jobs_pb2.RunRequest):
            return [_accepted()]
        return [_accepted(), _finished(jobs_pb2.CANCELLED, "CANCELLED")]

    job, [channel] = _job(answer)

    async def scenario() -> tuple[list[str], jobs_pb2.Job]:
        ids = await asyncio.gather(job.start("Ci.Test"), job.start("Ci.Test", outlive_parent=True))
        return ids, await job.wait(ids[0])

    ids, record = asyncio.run(scenario())
    assert ids == [CHILD_ID, CHILD_ID] and record.state == jobs_pb2.CANCELLED
    started = [request for path, request, _ in channel.calls if path.endswith("/Run")]
    assert [(r.detach, r.outlive_parent) for r in started] == [(True, False), (True, True)]


def test_masters_share_one_channel_per_address_and_close_twice() -> None:
    async def scenario() -> None:
        masters = Masters(("127.0.0.1:1",))
        assert masters.channel("127.0.0.1:1") is masters.channel("127.0.0.1:1")
        await masters.close()
        await masters.close()

    asyncio.run(scenario())
