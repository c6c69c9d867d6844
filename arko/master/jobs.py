"""Job records: every ExecuteJob gets one, and none is lost to a crash.

A job's transitions are appended, as JSON lines, to a journal file with a plain
``write()`` (into the page cache: no fsync, no database round trip) before the
job goes on, so a ``kill -9`` of the master cannot lose them. A background
flusher folds the journal into the database in batches, one transaction each,
and rotates the journal so it stays small. At start, any journal left by a
crash is replayed, and jobs still queued or running are marked interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from arko.common.redact import REDACTED, is_secret_name, redact_mapping
from arko.master.store import JobRow, Store, now

log = structlog.get_logger("arko.master.jobs")

MAX_STORED_TEXT = 64 * 1024
INTERRUPTED_REASON = "the master stopped while the job was in flight"


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` without any secret parameter value in it, cut to a stored size."""
    for value in secrets:
        text = text.replace(value, REDACTED)
    return text[:MAX_STORED_TEXT]


@dataclass(slots=True)
class Job:
    """A job in flight: its record and the secret values never to store."""

    row: JobRow
    secrets: tuple[str, ...]

    @property
    def id(self) -> str:
        """The job id the caller gets back."""
        return self.row.id


class JobRecorder:
    """Journals job transitions and flushes them to the store in batches."""

    def __init__(self, store: Store, journal_dir: Path, flush_interval: float = 0.05) -> None:
        self._store = store
        self._dir = journal_dir
        self._interval = flush_interval
        self._pending: dict[str, JobRow] = {}
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
        latest: dict[str, JobRow] = {}
        for path in files:
            for line in path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError, TypeError):
                    row = _decode(line)
                    latest[row.id] = row
        if latest:
            await self._store.save_jobs(list(latest.values()))
        for path in files:
            path.unlink()
        interrupted = await self._store.interrupt_unfinished(INTERRUPTED_REASON)
        if files or interrupted:
            log.warning("jobs_recovered", replayed=len(latest), interrupted=interrupted)
        self._seq = int(files[-1].name.split(".")[1]) + 1 if files else 0
        self._open_journal()

    def _open_journal(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        self._fd = os.open(self._journal(self._seq), flags, 0o600)

    def start(self) -> None:
        """Start the background flusher."""
        self._flusher = asyncio.create_task(self._flush_loop(), name="job-flusher")

    def _put(self, row: JobRow) -> None:
        os.write(self._fd, (_encode(row) + "\n").encode())
        self._pending[row.id] = row
        self._wake.set()

    def begin(self, method: str, params: Mapping[str, str]) -> Job:
        """A new job id, for a job not yet journaled (see :meth:`running`)."""
        secrets = tuple(v for k, v in params.items() if is_secret_name(k) and len(v) >= 3)
        row = JobRow(
            id=uuid.uuid4().hex,
            method=method[:512],
            params={k[:256]: v[:1024] for k, v in redact_mapping(params).items()},
            state="queued",
            created_at=now(),
        )
        return Job(row, secrets)

    def running(self, job: Job, slave: str) -> None:
        """Journal that the job is being sent to ``slave``."""
        job.row = dataclasses.replace(job.row, state="running", slave=slave, started_at=now())
        self._put(job.row)

    def succeeded(self, job: Job, result: str) -> None:
        """Journal the job's success with the slave's reply."""
        job.row = dataclasses.replace(
            job.row, state="succeeded", result=_scrub(result, job.secrets), ended_at=now()
        )
        self._put(job.row)

    def failed(self, job: Job, code: str, error: str) -> None:
        """Journal the job's failure with its status code and message."""
        job.row = dataclasses.replace(
            job.row,
            state="failed",
            error_code=code,
            error=_scrub(error, job.secrets),
            ended_at=now(),
        )
        self._put(job.row)

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._interval)  # gather a batch
            await self.flush()

    async def flush(self) -> None:
        """Write every pending record to the store, then drop the journal that held them."""
        self._wake.clear()
        if not self._pending:
            return
        batch, self._pending = list(self._pending.values()), {}
        old_fd, old_seq = self._fd, self._seq
        self._seq += 1
        self._open_journal()
        try:
            await self._store.save_jobs(batch)
        except Exception as exc:
            # Carry the batch over to the new journal (unless a newer state of
            # the same job is already there), so the next flush or start has it.
            log.error("job_flush_failed", error=str(exc), jobs=len(batch))
            for row in batch:
                if row.id not in self._pending:
                    self._put(row)
        finally:
            os.close(old_fd)
            self._journal(old_seq).unlink(missing_ok=True)

    async def close(self) -> None:
        """Stop the flusher and write everything still pending."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()
        if self._fd >= 0:
            os.close(self._fd)
            self._journal(self._seq).unlink(missing_ok=True)
            self._fd = -1


def _encode(row: JobRow) -> str:
    data = dataclasses.asdict(row)
    for key in ("created_at", "started_at", "ended_at"):
        if data[key] is not None:
            data[key] = data[key].isoformat()
    return json.dumps(data, separators=(",", ":"))


def _decode(line: str) -> JobRow:
    data = json.loads(line)
    for key in ("created_at", "started_at", "ended_at"):
        if data.get(key):
            data[key] = dt.datetime.fromisoformat(data[key])
    return JobRow(**data)
