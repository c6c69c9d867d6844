"""JobService with child jobs: credentials, the parent's deadline, and the cascades."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from arko.master.jobs.executor import JobInput, OnMessage, OnStart
from arko.master.jobs.live import LiveJobs
from arko.master.jobs.records import JobRecorder, Lineage
from arko.master.jobs.service import JobService, Submission
from arko.master.jobs.tokens import token_hash
from tests.unit.master.jobs.test_service import FakeStore

SLAVE = "127.0.0.1:7001"


class HoldingExecutor:
    """Holds each method's calls until that method's event is set, noting what each got."""

    def __init__(self) -> None:
        self.holds: dict[str, asyncio.Event] = {}
        self.timeouts: dict[str, float | None] = {}
        self.credentials: dict[str, dict[str, str]] = {}
        self.cancelled: set[str] = set()
        self.started: dict[str, asyncio.Event] = {}

    def check(self, job: JobInput) -> None:
        pass

    def hold(self, method: str) -> asyncio.Event:
        return self.holds.setdefault(method, asyncio.Event())

    def began(self, method: str) -> asyncio.Event:
        return self.started.setdefault(method, asyncio.Event())

    async def execute(
        self,
        job: JobInput,
        timeout: float | None,
        on_start: OnStart,
        on_message: OnMessage,
        log_context: Any = None,
        on_queued: Any = None,
        credentials: tuple[tuple[str, str], ...] = (),
    ) -> bool:
        self.timeouts[job.method] = timeout
        self.credentials[job.method] = dict(credentials)
        on_start(SLAVE)
        self.began(job.method).set()
        try:
            await self.hold(job.method).wait()
        except asyncio.CancelledError:
            self.cancelled.add(job.method)
            raise
        return False


def _service(tmp: Path, executor: HoldingExecutor) -> tuple[JobService, JobRecorder, LiveJobs]:
    store, live = FakeStore(), LiveJobs()
    recorder = JobRecorder(store, tmp)  # type: ignore[arg-type]
    jobs = JobService(
        executor,  # type: ignore[arg-type]
        recorder,
        store,  # type: ignore[arg-type]
        live,
        1 << 20,
        600.0,
        advertise_address="master.example:10001",
    )
    return jobs, recorder, live


def _run(tmp: Path, scenario: Any) -> None:
    async def main() -> None:
        executor = HoldingExecutor()
        jobs, recorder, live = _service(tmp, executor)
        await recorder.recover()
        try:
            await asyncio.wait_for(scenario(jobs, executor, live), 10)
        finally:
            await jobs.stop(1)
            await recorder.close()

    asyncio.run(main())


async def _started(jobs: JobService, executor: HoldingExecutor, submission: Submission) -> str:
    job = jobs.submit(submission)
    await executor.began(submission.method).wait()
    return job.id


def _child(parent_id: str, method: str, outlive: bool = False, **fields: Any) -> Submission:
    lineage = Lineage("job", parent_id, 1, outlive)
    return Submission(method, detach=True, lineage=lineage, **fields)


def test_each_job_is_sent_with_its_id_token_and_master(tmp_path: Path) -> None:
    """The slave gets the job id, a token whose hash alone is on record, and the master."""

    async def scenario(jobs: JobService, executor: HoldingExecutor, live: LiveJobs) -> None:
        job_id = await _started(jobs, executor, Submission("P.Run", detach=True))
        sent = executor.credentials["P.Run"]
        assert sent["arko-job-id"] == job_id
        assert sent["arko-job-master"] == "master.example:10001"
        record = await jobs.get(job_id)
        assert record.token_hash == token_hash(sent["arko-job-token"])
        assert sent["arko-job-token"] not in repr(record)

    _run(tmp_path, scenario)


def test_a_child_runs_no_longer_than_its_parent_has_left(tmp_path: Path) -> None:
    """A child asking 100 s of a parent with 5 s left gets at most 5 s."""

    async def scenario(jobs: JobService, executor: HoldingExecutor, live: LiveJobs) -> None:
        parent = await _started(jobs, executor, Submission("P.Run", timeout=5, detach=True))
        await _started(jobs, executor, _child(parent, "C.Run", timeout=100))
        child_timeout = executor.timeouts["C.Run"]
        assert child_timeout is not None and child_timeout <= 5

    _run(tmp_path, scenario)


def test_a_parent_that_ends_cancels_its_children_but_those_that_outlive_it(
    tmp_path: Path,
) -> None:
    """A parent that succeeds takes its plain children with it, not outlive_parent ones."""

    async def scenario(jobs: JobService, executor: HoldingExecutor, live: LiveJobs) -> None:
        parent = await _started(jobs, executor, Submission("P.Run", detach=True))
        ends = await _started(jobs, executor, _child(parent, "C.Ends"))
        outlives = await _started(jobs, executor, _child(parent, "C.Outlives", outlive=True))
        executor.hold("P.Run").set()  # the parent succeeds
        async for _ in jobs.watch(ends):
            pass  # to its FINISHED event
        ended = await jobs.get(ends)
        assert (ended.state, ended.cancelled_by) == ("cancelled", f"parent job {parent} ended")
        assert executor.cancelled == {"C.Ends"}
        assert (await jobs.get(outlives)).state == "running"

    _run(tmp_path, scenario)


def test_cancelling_a_job_cancels_every_descendant(tmp_path: Path) -> None:
    """Explicit cancels reach children and grandchildren, those that outlive their parent too."""

    async def scenario(jobs: JobService, executor: HoldingExecutor, live: LiveJobs) -> None:
        parent = await _started(jobs, executor, Submission("P.Run", detach=True))
        child = await _started(jobs, executor, _child(parent, "C.Run", outlive=True))
        grandchild = Submission(
            "G.Run", detach=True, lineage=Lineage("job", child, 2, outlive_parent=True)
        )
        grandchild_id = await _started(jobs, executor, grandchild)
        row = await jobs.cancel(parent, "alice")
        assert (row.state, row.cancelled_by) == ("cancelled", "alice")
        assert executor.cancelled == {"P.Run", "C.Run", "G.Run"}
        for job_id in (child, grandchild_id):
            assert (await jobs.get(job_id)).state == "cancelled"

    _run(tmp_path, scenario)
