"""Job records and their kept output: every job gets one, and none is lost to a crash.

A job's transitions and output events are appended, as JSON lines, to a
journal file with a plain ``write()`` (into the page cache: no fsync, no
database round trip) before the job goes on, so a ``kill -9`` of the master
cannot lose them. A background flusher folds the journal into the database in
batches, one transaction each, and rotates the journal so it stays small. At
start, any journal left by a crash is replayed, and jobs still queued or
running are marked interrupted. A record the database refuses for what it
holds is set aside in ``refused.jsonl`` beside the journal, so it cannot hold
back the records after it.

This is on every job's path, so a transition costs one small ``json.dumps`` of
the fields that changed and one ``write()``; nothing is copied or converted
until the flusher turns pending jobs into rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import operator
import os
import time
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring_ascii as json_text
from pathlib import Path
from typing import Any

import structlog
from google.protobuf.message import Message

from arko.common.errors import Unavailable
from arko.common.lifecycle import cancel_task
from arko.common.redact import Secrets, redact_mapping
from arko.master.cluster.coordination import ALONE, Coordinator
from arko.master.jobs.state import FINAL, INTERRUPTED_REASON, JobState
from arko.master.store.rows import JOB_FIELDS, JOB_TIMES, EventRow, JobRow, RecordRefused, Store

log = structlog.get_logger("arko.master.jobs.records")

MAX_STORED_TEXT = 64 * 1024
# Beside the journal: records the database refused, one JSON line per write.
REFUSED_FILE = "refused.jsonl"
# Every field of a job line that is not ``id`` or ``state``, for whole lines.
_WHOLE = tuple(name for name in JOB_FIELDS if name not in ("id", "state"))
_GET_FIELDS = operator.attrgetter(*JOB_FIELDS)
_TIME_AT = tuple(JOB_FIELDS.index(name) for name in JOB_TIMES)


def _stamp(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class Lineage:
    """Where a job comes from: a caller, a trigger, or a parent job (a child)."""

    trigger: str = "api"
    parent_id: str = ""
    depth: int = 0
    outlive_parent: bool = False


TOP_LEVEL = Lineage()


class Job:
    """A job in flight: its record as it stands, and the secret values never to store."""

    # A JobRow's fields (times as Unix seconds while in flight), and what
    # only a job in flight has.
    __slots__ = (*JOB_FIELDS, "journal_seq", "secrets")

    def __init__(
        self,
        job_id: str,
        method: str,
        params: dict[str, str],
        secrets: Secrets,
        args: dict[str, Any] | None = None,
        detached: bool = False,
        master: str = "",
        lineage: Lineage | None = None,
    ):
        self.id = job_id
        self.master = master
        self.method = method
        self.params = params
        self.args = args or {}
        self.secrets = secrets
        self.detached = detached
        lineage = lineage or TOP_LEVEL
        self.parent_id = lineage.parent_id
        self.trigger = lineage.trigger
        self.depth = lineage.depth
        self.outlive_parent = lineage.outlive_parent
        self.token_hash = ""
        self.state = JobState.QUEUED
        self.slave = ""
        self.result = ""
        self.error_code = ""
        self.error = ""
        self.cancelled_by = ""
        self.output_bytes = 0
        self.output_truncated = False
        self.last_seq = 0
        self.created_at = time.time()
        self.started_at: float | None = None
        self.ended_at: float | None = None
        # The journal holding this job's full record; later lines in the same
        # journal carry only what changed. After a rotation the next line is
        # whole again, so every journal replays on its own.
        self.journal_seq = -1

    @property
    def finished(self) -> bool:
        """Whether the job reached a final state."""
        return self.state in FINAL

    def hide_secrets(self, text: str) -> str:
        """``text`` as anyone but the caller may see it: secret values replaced."""
        return self.secrets.text(text)

    def hide_reply(self, reply: Message) -> Message:
        """A slave's reply as anyone but the caller may see it, to render (not its JSON)."""
        return self.secrets.message(reply)

    def scrub(self, text: str) -> str:
        """``text`` as a record field may keep it: secrets replaced, size bounded."""
        return self.hide_secrets(text)[:MAX_STORED_TEXT]

    def row(self) -> JobRow:
        """The record as the store keeps it."""
        values = list(_GET_FIELDS(self))
        for i in _TIME_AT:
            values[i] = _stamp(values[i])
        return JobRow(*values)


def event_line(event: EventRow) -> bytes:
    """An output event's journal line: what ``json.dumps`` writes (compact), built directly.

    One is written per streamed line, and ``json.dumps`` with its own
    separators sets up an encoder on every call: this costs a third of that.
    """
    return (
        f'{{"e":{json_text(event.job_id)},"s":{event.seq:d},"k":{json_text(event.kind)},'
        f'"t":{event.time!r},"d":{json_text(event.data)}}}\n'
    ).encode()


class JobRecorder:
    """Journals job transitions and kept output, and flushes them to the store in batches.

    Args:
        store: Where records end up.
        journal_dir: Folder of the journal files.
        flush_interval: Seconds transitions gather before one database write.
        on_saved: Told the ids of jobs whose records reached the store.
        coordinator: The other masters on the database. Unless alone, jobs
            carry this master's name, a restart interrupts only its own
            unfinished jobs, and :meth:`persist` writes a job through the
            coordinator before it is sent (so another master can answer for
            it, or take it over).
    """

    def __init__(
        self,
        store: Store,
        journal_dir: Path,
        flush_interval: float = 1.0,
        on_saved: Callable[[list[str]], None] | None = None,
        coordinator: Coordinator = ALONE,
    ) -> None:
        self._store = store
        self._dir = journal_dir
        self._interval = flush_interval
        self._on_saved = on_saved
        self._master = coordinator.name
        self._coordinator = coordinator
        # Jobs waiting for :meth:`persist`'s next group commit, and its outcome.
        self._durable: list[Job] = []
        self._committed: asyncio.Future[None] | None = None
        self._commit_task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._pending: dict[str, Job] = {}
        self._events: list[EventRow] = []
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._fd = -1
        self._seq = 0

    def _journal(self, seq: int) -> Path:
        return self._dir / f"journal.{seq:012d}.jsonl"

    async def recover(self) -> None:
        """Replay a crashed run's journals, then mark unfinished jobs interrupted."""
        self._dir.mkdir(parents=True, exist_ok=True)
        files = sorted(self._dir.glob("journal.*.jsonl"))
        latest: dict[str, dict[str, Any]] = {}
        events: dict[tuple[str, int], EventRow] = {}
        for path in files:
            for line in path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    fields = json.loads(line)
                    if "e" in fields:
                        event = EventRow(
                            fields["e"], fields["s"], fields["k"], fields["t"], fields["d"]
                        )
                        events[(event.job_id, event.seq)] = event
                    else:
                        latest.setdefault(fields["id"], {}).update(fields)
        rows = []
        for fields in latest.values():
            with contextlib.suppress(ValueError, TypeError, KeyError):
                values: dict[str, Any] = {
                    k: _stamp(v) if k in JOB_TIMES else v for k, v in fields.items()
                }
                values["state"] = JobState(values["state"])
                rows.append(JobRow(**values))
        if rows or events:
            await self._save(rows, list(events.values()))
        for path in files:
            path.unlink()
        interrupted = await self._store.interrupt_unfinished(INTERRUPTED_REASON, self._master)
        if files or interrupted:
            log.warning(
                "jobs_recovered", replayed=len(rows), events=len(events), interrupted=interrupted
            )
        self._seq = int(files[-1].name.split(".")[1]) + 1 if files else 0
        self._open_journal()

    def _open_journal(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        self._fd = os.open(self._journal(self._seq), flags, 0o600)

    def start(self) -> None:
        """Start the background flusher."""
        self._flusher = asyncio.create_task(self._flush_loop(), name="job-flusher")

    def _put(self, job: Job, fields: dict[str, Any]) -> None:
        """Journal the fields that changed (all of them once per journal) and queue the job."""
        if job.journal_seq != self._seq:
            fields.update((name, getattr(job, name)) for name in _WHOLE)
            job.journal_seq = self._seq
        fields["id"] = job.id
        fields["state"] = job.state
        self._write(fields)
        self._pending[job.id] = job
        self._wake.set()

    def _write(self, fields: dict[str, Any]) -> None:
        os.write(self._fd, json.dumps(fields, separators=(",", ":")).encode() + b"\n")

    def begin(
        self,
        method: str,
        params: Mapping[str, str],
        args: Mapping[str, Any] | None = None,
        detached: bool = False,
        lineage: Lineage | None = None,
    ) -> Job:
        """A new job with its id, not yet journaled (see :meth:`accepted`, :meth:`running`)."""
        args = dict(args or {})
        secrets = Secrets.of(params, args)
        stored = {k[:256]: v[:1024] for k, v in redact_mapping(params).items()}
        return Job(
            os.urandom(16).hex(),
            method[:512],
            stored,
            secrets,
            redact_mapping(args),
            detached,
            self._master or "",
            lineage,
        )

    def accepted(self, job: Job) -> None:
        """Journal a job that may wait or run without a caller: it has a record from now."""
        self._put(job, {})

    async def persist(self, job: Job) -> None:
        """Journal the job as accepted and wait until its row is in the database.

        Only when the database is shared: a job another master can see
        before it is sent can be answered for, or marked interrupted should
        this master die, even if this master never comes back. Jobs arriving
        together share one write (group commit), so the cost is one database
        round trip per burst, not per job.
        """
        if self._coordinator.alone:
            return
        self.accepted(job)
        self._durable.append(job)
        if self._committed is None:
            self._committed = asyncio.get_running_loop().create_future()
        done = self._committed
        if self._commit_task is None or self._commit_task.done():
            self._commit_task = asyncio.create_task(self._commit_loop(), name="job-commit")
        await asyncio.shield(done)

    async def _commit_loop(self) -> None:
        """Write the waiting jobs, one write at a time; those arriving meanwhile go next."""
        await asyncio.sleep(0)  # let the jobs of this loop iteration join
        while self._durable and self._committed is not None:
            batch, done = self._durable, self._committed
            self._durable, self._committed = [], None
            try:
                await self._coordinator.commit_jobs([job.row() for job in batch])
            except Exception as exc:
                log.error("job_commit_failed", error=str(exc), jobs=len(batch))
                error = Unavailable(f"the job could not be recorded in the database: {exc}")
                done.set_exception(error)
                done.exception()  # retrieved: each waiter raises it on its own
            else:
                done.set_result(None)

    def running(self, job: Job, slave: str) -> None:
        """Journal that the job is being sent to ``slave``."""
        job.state, job.slave, job.started_at = JobState.RUNNING, slave, time.time()
        self._put(job, {"slave": slave, "started_at": job.started_at})

    def output(self, job: Job, seq: int, kind: str, data: str) -> None:
        """Journal one kept output event (the caller bounds what it keeps)."""
        self._keep(EventRow(job.id, seq, kind, time.time(), data))

    def _keep(self, event: EventRow) -> None:
        os.write(self._fd, event_line(event))
        self._events.append(event)
        self._wake.set()

    def succeeded(self, job: Job, result: str, last_seq: int = 0) -> None:
        """Journal the job's success with the slave's (last) reply."""
        job.state, job.result, job.ended_at = JobState.SUCCEEDED, job.scrub(result), time.time()
        job.last_seq = last_seq
        self._put(
            job,
            {
                "result": job.result,
                "ended_at": job.ended_at,
                "last_seq": last_seq,
                "output_bytes": job.output_bytes,
                "output_truncated": job.output_truncated,
            },
        )

    def failed(
        self,
        job: Job,
        code: str,
        error: str,
        last_seq: int = 0,
        state: JobState = JobState.FAILED,
        cancelled_by: str = "",
    ) -> None:
        """Journal the job's failure (or cancellation) with its status code and message."""
        job.state, job.error_code = state, code
        job.error, job.ended_at, job.last_seq = job.scrub(error), time.time(), last_seq
        job.cancelled_by = cancelled_by[:512]
        self._put(
            job,
            {
                "error_code": code,
                "error": job.error,
                "ended_at": job.ended_at,
                "last_seq": last_seq,
                "cancelled_by": job.cancelled_by,
                "result": job.result,
                "output_bytes": job.output_bytes,
                "output_truncated": job.output_truncated,
            },
        )

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._interval)  # gather a batch
            await self.flush()

    async def flush(self) -> None:
        """Write every pending record to the store, then drop the journal that held them.

        One flush at a time (listings and Admin flush too): on a database
        with parallel writers, an older snapshot of a job written after a
        newer one would undo it.
        """
        async with self._flush_lock:
            await self._flush()

    async def _flush(self) -> None:
        self._wake.clear()
        if not self._pending and not self._events:
            return
        batch, self._pending = list(self._pending.values()), {}
        events, self._events = self._events, []
        rows = [job.row() for job in batch]
        old_fd, old_seq = self._fd, self._seq
        self._seq += 1
        self._open_journal()
        try:
            await self._save(rows, events)
        except BaseException as exc:
            # Carry the batch over to the new journal (unless a newer state of
            # the same job is already there), so the next flush or start has
            # it: after a failed write, and after a flush cancelled mid-write
            # by close(), whose own flush then writes it.
            if isinstance(exc, Exception):
                log.error("job_flush_failed", error=str(exc), jobs=len(batch))
            for job in batch:
                if job.id not in self._pending:
                    self._put(job, {})
            for event in events:
                self._keep(event)
            if not isinstance(exc, Exception):
                raise
        else:
            if self._on_saved is not None:
                self._on_saved([job.id for job in batch if job.id not in self._pending])
        finally:
            os.close(old_fd)
            self._journal(old_seq).unlink(missing_ok=True)

    async def _save(self, rows: list[JobRow], events: list[EventRow]) -> None:
        """Write a batch; should the database refuse a record for what it
        holds, write the batch record by record and set the refused ones aside.

        One refused record must not hold back every later one: the batch
        would be carried over and refused again at each flush, and at each
        start (the master could not start at all). An outage is not a
        refusal: it raises, and the batch is tried again later.
        """
        try:
            await self._store.save_jobs(rows, events)
        except RecordRefused:
            for row in rows:
                await self._save_or_set_aside([row], [])
            for event in events:
                await self._save_or_set_aside([], [event])

    async def _save_or_set_aside(self, rows: list[JobRow], events: list[EventRow]) -> None:
        try:
            await self._store.save_jobs(rows, events)
        except RecordRefused as exc:
            # Kept on disk, out of the journal's way, for an operator to read:
            # the journal lines hold the same fields.
            fields = [dataclasses.asdict(r) for r in rows] + [dataclasses.asdict(e) for e in events]
            line = json.dumps({"refused": str(exc), "records": fields}, default=str)
            path = self._dir / REFUSED_FILE
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line.encode() + b"\n")
            finally:
                os.close(fd)
            log.error(
                "job_record_refused",
                job_id=rows[0].id if rows else events[0].job_id,
                event_seq=None if rows else events[0].seq,
                error=str(exc),
                kept_in=str(path),
            )

    async def close(self) -> None:
        """Stop the flusher and write everything still pending."""
        await cancel_task(self._flusher)
        await self.flush()
        if self._fd >= 0:
            os.close(self._fd)
            self._journal(self._seq).unlink(missing_ok=True)
            self._fd = -1
