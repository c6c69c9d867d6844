"""JobService driven directly: submit, run, detach, cancel, with a fake executor and store."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.wrappers_pb2 import StringValue

from arko.common.errors import ArkoError, InvalidArgument, NoLiveSlave
from arko.master.jobs.executor import JobInput, Limits, OnMessage, OnStart
from arko.master.jobs.live import ACCEPTED, FINISHED, OUTPUT, STARTED, Event, LiveJobs
from arko.master.jobs.records import JobRecorder
from arko.master.jobs.service import (
    CALLER_GONE,
    JobCancelled,
    JobService,
    Outcome,
    OutputTooLarge,
    Submission,
)
from arko.master.store.rows import EventRow, JobRow

RUN = "MyPipeline.Run"
SLAVE = "127.0.0.1:7001"
JOB_TIMEOUT = 600.0


class FakeStore:
    """Keeps what the recorder saves; answers for jobs no longer in memory."""

    def __init__(self) -> None:
        self.jobs: dict[str, JobRow] = {}

    async def save_jobs(self, jobs: Sequence[JobRow], events: Sequence[EventRow] = ()) -> None:
        self.jobs.update((job.id, job) for job in jobs)

    async def interrupt_unfinished(self, reason: str, master: str | None = None) -> int:
        return 0

    async def get_job(self, job_id: str) -> JobRow | None:
        return self.jobs.get(job_id)


class FakeExecutor:
    """The executor's two calls; the "slave" sends ``replies``, then waits on ``hold``, or fails.

    ``calls`` keeps what each job asked for and the timeout it was given;
    ``cancelled`` says whether a call was cancelled while the slave worked.
    """

    def __init__(
        self,
        replies: Sequence[Message] = (),
        error: Exception | None = None,
        hold: asyncio.Event | None = None,
    ) -> None:
        self.replies = list(replies)
        self.error = error
        self.hold = hold
        self.calls: list[tuple[JobInput, float | None]] = []
        self.started = asyncio.Event()
        self.cancelled = False

    def check(self, job: JobInput) -> None:
        Limits(max_params=2).check(job.params, job.args)
        if "." not in job.method:
            raise InvalidArgument(f"method {job.method!r} is not Service.Method")

    async def execute(
        self,
        job: JobInput,
        timeout: float | None,
        on_start: OnStart,
        on_message: OnMessage,
        *_: Any,
    ) -> bool:
        self.check(job)
        self.calls.append((job, timeout))
        on_start(SLAVE)
        self.started.set()
        try:
            for reply in self.replies:
                await on_message(reply)
            if self.hold is not None:
                await self.hold.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.error is not None:
            raise self.error
        return len(self.replies) > 1


def replies(*texts: str) -> list[Message]:
    return [StringValue(value=t) for t in texts]


class Parts:
    """A job service over a real recorder (journal in ``tmp``), fake store and executor."""

    def __init__(self, tmp: Path, executor: FakeExecutor, max_output: int = 1 << 20) -> None:
        self.store = FakeStore()
        self.executor = executor
        self.live = LiveJobs()
        self.recorder = JobRecorder(self.store, tmp)  # type: ignore[arg-type]
        self.jobs = JobService(
            executor,  # type: ignore[arg-type]
            self.recorder,
            self.store,  # type: ignore[arg-type]
            self.live,
            max_output,
            JOB_TIMEOUT,
        )

    async def __aenter__(self) -> Parts:
        await self.recorder.recover()
        return self

    async def start_held(self, submission: Submission) -> tuple[str, asyncio.Task[Outcome] | None]:
        """Submit a job to a holding slave; once it holds it, the id and an attached run's task."""
        job = self.jobs.submit(submission)
        running = None if submission.detach else asyncio.create_task(job.run())
        await self.executor.started.wait()
        return job.id, running

    async def __aexit__(self, *exc: object) -> None:
        await self.jobs.stop(1)
        await self.recorder.close()


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 10))


def test_an_attached_job_runs_and_every_event_reaches_the_sink(tmp_path: Path) -> None:
    """ACCEPTED, STARTED, one OUTPUT per message and FINISHED, in order; the record succeeded."""

    async def scenario() -> None:
        async with Parts(tmp_path, FakeExecutor(replies("a", "b"))) as parts:
            job = parts.jobs.submit(Submission(RUN, {"param": "x"}))
            seen: list[Event] = []

            async def sink(event: Event) -> None:
                seen.append(event)

            outcome = await job.run(sink)
            assert [e.kind for e in seen] == [ACCEPTED, STARTED, OUTPUT, OUTPUT, FINISHED]
            assert [e.seq for e in seen] == [0, 1, 2, 3, 4]
            assert seen[1].data == SLAVE
            assert [e.data for e in seen if e.kind == OUTPUT] == ['"a"', '"b"']
            assert outcome.streaming and outcome.messages == replies("b")
            row = await parts.jobs.get(job.id)
            assert (row.state, row.slave, row.result, row.detached) == (
                "succeeded",
                SLAVE,
                '"b"',
                False,
            )
            ((asked, _),) = parts.executor.calls
            assert (asked.method, dict(asked.params)) == (RUN, {"param": "x"})

    run(scenario())


def test_collect_keeps_every_message_and_fails_past_the_output_limit(tmp_path: Path) -> None:
    """A collecting caller gets all messages; past max_output_bytes the job fails as too large."""

    async def scenario() -> None:
        async with Parts(tmp_path, FakeExecutor(replies("a", "b")), max_output=100) as parts:
            outcome = await parts.jobs.submit(Submission(RUN, collect=True)).run()
            assert outcome.messages == replies("a", "b")
        async with Parts(tmp_path, FakeExecutor(replies("x" * 60, "y" * 60)), 100) as parts:
            job = parts.jobs.submit(Submission(RUN, collect=True))
            with pytest.raises(OutputTooLarge) as caught:
                await job.run()
            assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            row = await parts.jobs.get(job.id)
            assert (row.state, row.error_code) == ("failed", "RESOURCE_EXHAUSTED")

    run(scenario())


@pytest.mark.parametrize(
    ("timeout", "deadline", "detach", "expected"),
    [
        (None, None, False, JOB_TIMEOUT),  # neither: the master's job_timeout
        (None, 5.0, False, 5.0),  # the caller's deadline
        (30.0, 5.0, False, 5.0),  # whichever ends first
        (3.0, 5.0, False, 3.0),
        (30.0, 5.0, True, 30.0),  # a detached job outlives its caller's deadline
        (None, 5.0, True, JOB_TIMEOUT),
    ],
)
def test_the_slave_gets_the_earliest_of_the_jobs_timeout_and_the_callers_deadline(
    tmp_path: Path, timeout: float | None, deadline: float | None, detach: bool, expected: float
) -> None:
    """The timeout handed to the executor (and so to the slave's call)."""

    async def scenario() -> None:
        async with Parts(tmp_path, FakeExecutor(replies("ok"))) as parts:
            submission = Submission(RUN, timeout=timeout, deadline=deadline, detach=detach)
            job = parts.jobs.submit(submission)
            if detach:
                await asyncio.wait_for(parts.executor.started.wait(), 5)
            else:
                await job.run()
            assert parts.executor.calls[0][1] == expected

    run(scenario())


def test_a_failed_job_is_recorded_and_raised_with_the_slaves_code(tmp_path: Path) -> None:
    """The executor's ArkoError reaches the adapter; the record keeps its code and message."""

    async def scenario() -> None:
        async with Parts(tmp_path, FakeExecutor(error=NoLiveSlave("nobody home"))) as parts:
            job = parts.jobs.submit(Submission(RUN))
            with pytest.raises(NoLiveSlave):
                await job.run()
            row = await parts.jobs.get(job.id)
            assert (row.state, row.error_code, row.error) == (
                "failed",
                "UNAVAILABLE",
                "nobody home",
            )

    run(scenario())


def test_a_bug_in_the_executor_is_an_internal_error_on_record(tmp_path: Path) -> None:
    """An exception that is not an ArkoError fails the job as INTERNAL, never leaves it running."""

    async def scenario() -> None:
        async with Parts(tmp_path, FakeExecutor(error=KeyError("oops"))) as parts:
            job = parts.jobs.submit(Submission(RUN))
            with pytest.raises(ArkoError) as caught:
                await job.run()
            assert caught.value.code == grpc.StatusCode.INTERNAL
            assert (await parts.jobs.get(job.id)).error_code == "INTERNAL"

    run(scenario())


@pytest.mark.parametrize(
    "submission",
    [
        Submission("NoDot"),
        Submission(RUN, {"a": "1", "b": "2", "c": "3"}),  # over the fake's max_params=2
        Submission(RUN, timeout=0),
        Submission(RUN, timeout=-2, refuse_early=False),  # a bad timeout is never a job
    ],
)
def test_a_refused_submission_leaves_no_record(tmp_path: Path, submission: Submission) -> None:
    """Refused at the door: an error and no job, for ExecuteJob and HTTP (refuse_early)."""

    async def scenario() -> None:
        async with Parts(tmp_path, FakeExecutor()) as parts:
            with pytest.raises(ArkoError) as caught:
                parts.jobs.submit(submission)
            assert caught.value.code in (
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            )
            assert len(parts.live) == 0 and not parts.executor.calls

    run(scenario())


@pytest.mark.parametrize("detach", [False, True])
def test_without_refuse_early_a_bad_submission_is_a_failed_job_on_record(
    tmp_path: Path, detach: bool
) -> None:
    """arko.v1.Jobs: a bad name fails a job the caller sees end, even if it asked to detach."""

    async def scenario() -> None:
        async with Parts(tmp_path, FakeExecutor()) as parts:
            job = parts.jobs.submit(Submission("NoDot", detach=detach, refuse_early=False))
            assert not job.submission.detach
            with pytest.raises(InvalidArgument):
                await job.run()
            row = await parts.jobs.get(job.id)
            assert (row.state, row.error_code, row.detached) == (
                "failed",
                "INVALID_ARGUMENT",
                False,
            )

    run(scenario())


def test_a_detached_job_runs_on_its_own_and_cannot_be_run_again(tmp_path: Path) -> None:
    """submit() starts it; its record says detached and ends succeeded; run() refuses."""

    async def scenario() -> None:
        async with Parts(tmp_path, FakeExecutor(replies("done"))) as parts:
            job = parts.jobs.submit(Submission(RUN, detach=True))
            assert (await parts.jobs.get(job.id)).state == "queued"
            events = [e async for e in parts.jobs.watch(job.id)]
            assert [e.kind for e in events] == [ACCEPTED, STARTED, OUTPUT, FINISHED]
            row = await parts.jobs.get(job.id)
            assert (row.state, row.detached, row.result) == ("succeeded", True, '"done"')
            with pytest.raises(RuntimeError):
                await job.run()

    run(scenario())


def held(tmp_path: Path) -> Parts:
    """Parts whose slave sends nothing and holds every call until it is cancelled."""
    return Parts(tmp_path, FakeExecutor(hold=asyncio.Event()))


def test_cancel_stops_the_slaves_call_and_answers_the_caller_cancelled(tmp_path: Path) -> None:
    """Cancel reaches the executor's call; the caller gets JobCancelled; the record says who."""

    async def scenario() -> None:
        async with held(tmp_path) as parts:
            job_id, running = await parts.start_held(Submission(RUN))
            row = await parts.jobs.cancel(job_id, "alice")
            assert parts.executor.cancelled
            assert (row.state, row.cancelled_by, row.error_code) == (
                "cancelled",
                "alice",
                "CANCELLED",
            )
            with pytest.raises(JobCancelled):
                await running  # type: ignore[misc]

    run(scenario())


def test_cancel_stops_a_detached_job(tmp_path: Path) -> None:
    """A detached job has no caller: Cancel still ends the slave's call and the record."""

    async def scenario() -> None:
        async with held(tmp_path) as parts:
            job_id, _ = await parts.start_held(Submission(RUN, detach=True))
            row = await parts.jobs.cancel(job_id, "bob")
            assert parts.executor.cancelled
            assert (row.state, row.cancelled_by) == ("cancelled", "bob")

    run(scenario())


def test_a_caller_that_goes_away_cancels_its_job(tmp_path: Path) -> None:
    """Cancelling the adapter's task (the caller left) cancels the call and records why."""

    async def scenario() -> None:
        async with held(tmp_path) as parts:
            job_id, running = await parts.start_held(Submission(RUN))
            assert running is not None
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
            row = await parts.jobs.get(job_id)
            assert parts.executor.cancelled
            assert (row.state, row.cancelled_by) == ("cancelled", CALLER_GONE)

    run(scenario())


def test_stopping_interrupts_a_detached_job_past_the_grace(tmp_path: Path) -> None:
    """stop() lets detached jobs run for the grace, then records them interrupted."""

    async def scenario() -> None:
        async with held(tmp_path) as parts:
            job_id, _ = await parts.start_held(Submission(RUN, detach=True))
            await parts.jobs.stop(0)
            row = await parts.jobs.get(job_id)
            assert parts.executor.cancelled
            assert (row.state, row.error_code) == ("interrupted", "ABORTED")

    run(scenario())
