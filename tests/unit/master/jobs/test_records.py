"""JobRecorder: journal, batching, crash recovery and secret scrubbing, on a fake store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from arko.common.errors import Unavailable
from arko.common.redact import Secrets
from arko.master.jobs.records import REFUSED_FILE, Job, JobRecorder
from arko.master.jobs.state import INTERRUPTED_REASON
from arko.master.store.rows import JOB_FIELDS, JOB_TIMES, EventRow, JobRow, RecordRefused
from tests.unit.master.coordinators import NotAlone
from tests.unit.master.job_rows import every_field_set


class FakeStore:
    """Keeps job rows in a dict; can be told to fail writes."""

    def __init__(self) -> None:
        self.jobs: dict[str, JobRow] = {}
        self.events: dict[tuple[str, int], EventRow] = {}
        self.writes = 0
        self.fail = False
        # Records the "database" refuses for what they hold: a job whose
        # slave is this, and events with this data.
        self.refused = "\N{SNOWMAN}"

    async def save_jobs(self, jobs: Sequence[JobRow], events: Sequence[EventRow] = ()) -> None:
        if self.fail:
            raise OSError("disk full")
        if any(j.slave == self.refused for j in jobs) or any(
            e.data == self.refused for e in events
        ):
            raise RecordRefused("value out of range")
        self.writes += 1
        for job in jobs:
            self.jobs[job.id] = job
        for event in events:
            self.events[(event.job_id, event.seq)] = event

    async def interrupt_unfinished(self, reason: str, master: str | None = None) -> int:
        count = 0
        for job_id, row in list(self.jobs.items()):
            if row.state in ("queued", "running") and master in (None, row.master):
                self.jobs[job_id] = replace(row, state="interrupted", error=reason)
                count += 1
        return count


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def restarted(journal_dir: Path) -> FakeStore:
    """A fresh store after a master restarts on ``journal_dir`` and stops."""

    async def restart() -> FakeStore:
        store = FakeStore()
        rec = JobRecorder(store, journal_dir)  # type: ignore[arg-type]
        await rec.recover()
        await rec.close()
        return store

    return run(restart())


async def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.01)


def test_a_job_is_journaled_before_any_flush(tmp_path: Path) -> None:
    """running() writes to the journal at once, before the store sees anything."""

    async def scenario() -> None:
        store = FakeStore()
        rec = JobRecorder(store, tmp_path)  # type: ignore[arg-type]
        await rec.recover()
        job = rec.begin("MyPipeline.Run", {"param": "a"})
        rec.running(job, "127.0.0.1:1")
        lines = [
            json.loads(x) for p in tmp_path.glob("journal.*") for x in p.read_text().splitlines()
        ]
        assert [(x["id"], x["state"]) for x in lines] == [(job.id, "running")]
        assert store.jobs == {}
        await rec.close()
        assert store.jobs[job.id].state == "running"

    run(scenario())


def test_many_jobs_are_flushed_in_one_write(tmp_path: Path) -> None:
    """Transitions gathered within the flush interval reach the store in one batch."""

    async def scenario() -> None:
        store = FakeStore()
        rec = JobRecorder(store, tmp_path, flush_interval=0.05)  # type: ignore[arg-type]
        await rec.recover()
        rec.start()
        jobs = [rec.begin("MyPipeline.DryRun", {}) for _ in range(50)]
        for job in jobs:
            rec.running(job, "s")
            rec.succeeded(job, "ok")
        await eventually(lambda: len(store.jobs) == 50, 5.0, "all 50 jobs to be flushed")
        assert store.jobs.keys() == {job.id for job in jobs}
        assert {r.state for r in store.jobs.values()} == {"succeeded"}
        assert store.writes == 1
        await rec.close()
        assert list(tmp_path.glob("journal.*")) == []

    run(scenario())


def test_crash_journal_is_replayed_and_unfinished_jobs_interrupted(tmp_path: Path) -> None:
    """A journal left by a killed master is replayed; running jobs become interrupted."""

    async def crashed_run() -> tuple[str, str]:
        store = FakeStore()
        rec = JobRecorder(store, tmp_path)  # type: ignore[arg-type]
        await rec.recover()
        done = rec.begin("A.B", {})
        rec.running(done, "s")
        rec.succeeded(done, "fine")
        cut = rec.begin("A.B", {})
        rec.running(cut, "s")
        return done.id, cut.id  # no close(): the process "dies" here

    done_id, cut_id = run(crashed_run())

    store = restarted(tmp_path)
    assert store.jobs[done_id].state == "succeeded"
    assert store.jobs[cut_id].state == "interrupted"
    assert store.jobs[cut_id].error == INTERRUPTED_REASON


def test_a_record_round_trips_through_a_job_in_flight_and_the_journal(tmp_path: Path) -> None:
    """row -> Job -> row keeps every field, and so does the journal a crash leaves."""
    row = every_field_set()
    job = Job(row.id, row.method, row.params, Secrets.of({}, {}))
    for name in JOB_FIELDS:
        value = getattr(row, name)
        setattr(job, name, value.timestamp() if name in JOB_TIMES else value)
    assert job.row() == row

    async def crashed_run() -> None:
        rec = JobRecorder(FakeStore(), tmp_path)  # type: ignore[arg-type]
        await rec.recover()
        rec.accepted(job)  # no close(): the process "dies" here

    run(crashed_run())
    assert restarted(tmp_path).jobs == {row.id: row}


def test_secret_values_never_reach_the_journal_or_store(tmp_path: Path) -> None:
    """Secret-named parameters are redacted, and their values scrubbed from results."""

    async def scenario() -> FakeStore:
        store = FakeStore()
        rec = JobRecorder(store, tmp_path)  # type: ignore[arg-type]
        await rec.recover()
        job = rec.begin(
            "MyPipeline.Run", {"param": "one", "password": "hunter22", "api_token": "t0k3n"}
        )
        rec.running(job, "s")
        journal = "".join(p.read_text() for p in tmp_path.glob("journal.*"))
        assert "hunter22" not in journal and "t0k3n" not in journal
        rec.succeeded(job, "job execution done with: one hunter22")
        journal = "".join(p.read_text() for p in tmp_path.glob("journal.*"))
        assert "hunter22" not in journal and "t0k3n" not in journal
        assert "job execution done with: one ***" in journal
        await rec.close()
        return store

    store = run(scenario())
    (row,) = store.jobs.values()
    assert row.params == {"param": "one", "password": "***", "api_token": "***"}
    assert "hunter22" not in row.result and "***" in row.result


def test_failed_flush_keeps_records_for_the_next_try(tmp_path: Path) -> None:
    """When the store cannot write, records stay journaled and are written later."""

    async def scenario() -> None:
        store = FakeStore()
        rec = JobRecorder(store, tmp_path)  # type: ignore[arg-type]
        await rec.recover()
        job = rec.begin("A.B", {})
        rec.running(job, "s")
        store.fail = True
        await rec.flush()
        assert store.jobs == {}
        journal = "".join(p.read_text() for p in tmp_path.glob("journal.*"))
        assert job.id in journal
        store.fail = False
        await rec.close()
        assert store.jobs[job.id].state == "running"

    run(scenario())


def test_a_refused_record_is_set_aside_and_holds_back_nothing(tmp_path: Path) -> None:
    """A record the database refuses for what it holds (unlike an outage) is
    written to refused.jsonl and logged; the rest of its batch and every later
    record reach the store."""

    ids: list[str] = []

    async def scenario() -> tuple[FakeStore, list[str]]:
        store = FakeStore()
        rec = JobRecorder(store, tmp_path)  # type: ignore[arg-type]
        await rec.recover()
        for slave in ("a:1", store.refused, "c:3"):
            job = rec.begin("A.B", {})
            rec.running(job, slave)
            ids.append(job.id)
        rec.output(job, 1, "OUTPUT", store.refused)
        rec.output(job, 2, "OUTPUT", "fine")
        with capture_logs() as logs:
            await rec.flush()
        later = rec.begin("A.B", {})
        rec.running(later, "d:4")
        ids.append(later.id)
        await rec.flush()
        await rec.close()
        return store, [x["event"] for x in logs]

    store, logged = run(scenario())
    assert sorted(store.jobs) == sorted([ids[0], ids[2], ids[3]])
    assert list(store.events) == [(ids[2], 2)]
    assert logged == ["job_record_refused", "job_record_refused"]
    kept = [json.loads(x) for x in (tmp_path / REFUSED_FILE).read_text().splitlines()]
    assert [k["refused"] for k in kept] == ["value out of range"] * 2
    assert kept[0]["records"][0]["id"] == ids[1]
    assert kept[1]["records"][0] == {
        "job_id": ids[2],
        "seq": 1,
        "kind": "OUTPUT",
        "time": kept[1]["records"][0]["time"],
        "data": store.refused,
    }
    assert (tmp_path / REFUSED_FILE).stat().st_mode & 0o777 == 0o600


def test_a_refused_record_in_a_crash_journal_does_not_stop_the_start(tmp_path: Path) -> None:
    """Replaying a journal whose record the database refuses sets it aside and starts."""

    async def crashed_run() -> tuple[str, str]:
        rec = JobRecorder(FakeStore(), tmp_path)  # type: ignore[arg-type]
        await rec.recover()
        bad, good = rec.begin("A.B", {}), rec.begin("A.B", {})
        rec.running(bad, FakeStore().refused)
        rec.running(good, "s")
        return bad.id, good.id  # no close(): the process "dies" here

    bad_id, good_id = run(crashed_run())

    store = restarted(tmp_path)
    assert list(store.jobs) == [good_id]
    assert store.jobs[good_id].state == "interrupted"
    assert bad_id in (tmp_path / REFUSED_FILE).read_text()


@pytest.mark.parametrize("state", ["succeeded", "failed"])
def test_final_state_wins_over_running(tmp_path: Path, state: str) -> None:
    """The last transition of a job is the one stored."""

    async def scenario() -> FakeStore:
        store = FakeStore()
        rec = JobRecorder(store, tmp_path)  # type: ignore[arg-type]
        await rec.recover()
        job = rec.begin("A.B", {})
        rec.running(job, "s")
        if state == "succeeded":
            rec.succeeded(job, "ok")
        else:
            rec.failed(job, "NOT_FOUND", "nope")
        await rec.close()
        return store

    (row,) = run(scenario()).jobs.values()
    assert row.state == state


def test_a_job_spanning_a_journal_rotation_replays_whole(tmp_path: Path) -> None:
    """A job flushed as running, then finished in the next journal, replays as finished."""

    async def crashed_run() -> str:
        store = FakeStore()
        rec = JobRecorder(store, tmp_path)  # type: ignore[arg-type]
        await rec.recover()
        job = rec.begin("A.B", {"param": "x"})
        rec.running(job, "s")
        await rec.flush()  # rotates the journal
        rec.succeeded(job, "fine")
        return job.id  # killed before the next flush

    job_id = run(crashed_run())
    store = FakeStore()
    store.jobs[job_id] = JobRow(id=job_id, method="A.B", params={}, state="running")

    async def restart() -> None:
        rec = JobRecorder(store, tmp_path)  # type: ignore[arg-type]
        await rec.recover()
        await rec.close()

    run(restart())
    row = store.jobs[job_id]
    assert (row.state, row.result, row.method, row.params) == (
        "succeeded",
        "fine",
        "A.B",
        {"param": "x"},
    )


def test_shared_database_gets_each_job_before_it_is_sent_in_group_commits(
    tmp_path: Path,
) -> None:
    """With a shared database, persist() returns once the job's row is written;
    jobs arriving together share writes, each stamped with the master's name, and
    a failed write is UNAVAILABLE for every job in it. Alone, persist() writes nothing."""

    async def scenario() -> None:
        store = FakeStore()
        writes: list[list[JobRow]] = []

        async def commit(rows: list[JobRow]) -> None:
            writes.append(rows)
            await asyncio.sleep(0.01)  # a round trip: later jobs gather meanwhile
            await store.save_jobs(rows)

        rec = JobRecorder(store, tmp_path, coordinator=NotAlone("m1", commit))  # type: ignore[arg-type]
        await rec.recover()
        jobs = [rec.begin("MyPipeline.Run", {}) for _ in range(20)]
        await asyncio.gather(*(rec.persist(job) for job in jobs[:10]))
        assert {j.id for j in jobs[:10]} <= store.jobs.keys()
        assert {store.jobs[j.id].master for j in jobs[:10]} == {"m1"}
        assert len(writes) == 1
        waiting = [asyncio.create_task(rec.persist(job)) for job in jobs[10:15]]
        await asyncio.sleep(0)
        waiting += [asyncio.create_task(rec.persist(job)) for job in jobs[15:]]
        await asyncio.gather(*waiting)
        assert sum(len(w) for w in writes) == 20 and len(writes) <= 3
        store.fail = True
        broken = rec.begin("MyPipeline.Run", {})
        with pytest.raises(Unavailable, match="could not be recorded"):
            await rec.persist(broken)
        store.fail = False
        await rec.close()
        alone = JobRecorder(FakeStore(), tmp_path / "alone")  # type: ignore[arg-type]
        await alone.recover()
        await alone.persist(alone.begin("MyPipeline.Run", {}))
        assert alone._store.jobs == {}  # type: ignore[attr-defined]
        await alone.close()

    run(scenario())


@pytest.mark.parametrize(
    "data",
    ['{"number": 1, "text": "a \\"quoted\\" line"}', "snow \N{SNOWMAN}\n\t\x00 \ud800", ""],
)
def test_an_output_event_is_journaled_on_one_line_that_reads_back(
    tmp_path: Path, data: str
) -> None:
    """Quotes, controls, non-ASCII and a lone surrogate (orjson refuses it: json writes
    that line) all read back as written."""

    async def scenario() -> None:
        rec = JobRecorder(FakeStore(), tmp_path)  # type: ignore[arg-type]
        await rec.recover()
        job = rec.begin("MyPipelineLogs.Stream", {})
        rec.output(job, 2, "OUTPUT", data)
        (line,) = [line for p in tmp_path.glob("journal.*") for line in p.read_bytes().splitlines()]
        fields = json.loads(line)
        assert (fields["e"], fields["s"], fields["k"], fields["d"]) == (job.id, 2, "OUTPUT", data)
        await rec.close()

    run(scenario())
