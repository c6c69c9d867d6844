"""Job records: every ExecuteJob gets one, and none is lost to a crash.

A job's transitions are appended, as JSON lines, to a journal file with a plain
``write()`` (into the page cache: no fsync, no database round trip) before the
job goes on, so a ``kill -9`` of the master cannot lose them. A background
flusher folds the journal into the database in batches, one transaction each,
and rotates the journal so it stays small. At start, any journal left by a
crash is replayed, and jobs still queued or running are marked interrupted.

This is on every job's path, so a transition costs one small ``json.dumps`` of
the fields that changed and one ``write()``; nothing is copied or converted
until the flusher turns pending jobs into rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from arko.common.lifecycle import cancel_task
from arko.common.redact import REDACTED, is_secret_name, redact_mapping
from arko.master.store import JobRow, Store

log = structlog.get_logger("arko.master.jobs")

MAX_STORED_TEXT = 64 * 1024
INTERRUPTED_REASON = "the master stopped while the job was in flight"
_TIMES = ("created_at", "started_at", "ended_at")


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` without any secret parameter value in it, cut to a stored size."""
    for value in secrets:
        text = text.replace(value, REDACTED)
    return text[:MAX_STORED_TEXT]


def _final_fields(job: Job) -> dict[str, Any]:
    """Every field a later transition may have set, to re-journal a job whole."""
    return {
        "result": job.result,
        "error_code": job.error_code,
        "error": job.error,
        "ended_at": job.ended_at,
    }


def _stamp(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)


class Job:
    """A job in flight: its record as it stands, and the secret values never to store."""

    __slots__ = (
        "created_at",
        "ended_at",
        "error",
        "error_code",
        "id",
        "journal_seq",
        "method",
        "params",
        "result",
        "secrets",
        "slave",
        "started_at",
        "state",
    )

    def __init__(self, job_id: str, method: str, params: dict[str, str], secrets: tuple[str, ...]):
        self.id = job_id
        self.method = method
        self.params = params
        self.secrets = secrets
        self.state = "queued"
        self.slave = ""
        self.result = ""
        self.error_code = ""
        self.error = ""
        self.created_at = time.time()
        self.started_at: float | None = None
        self.ended_at: float | None = None
        # The journal holding this job's full record; later lines in the same
        # journal carry only what changed. After a rotation the next line is
        # whole again, so every journal replays on its own.
        self.journal_seq = -1

    def row(self) -> JobRow:
        """The record as the store keeps it."""
        return JobRow(
            id=self.id,
            method=self.method,
            params=self.params,
            state=self.state,
            slave=self.slave,
            result=self.result,
            error_code=self.error_code,
            error=self.error,
            created_at=_stamp(self.created_at),
            started_at=_stamp(self.started_at),
            ended_at=_stamp(self.ended_at),
        )


class JobRecorder:
    """Journals job transitions and flushes them to the store in batches."""

    def __init__(self, store: Store, journal_dir: Path, flush_interval: float = 1.0) -> None:
        self._store = store
        self._dir = journal_dir
        self._interval = flush_interval
        self._pending: dict[str, Job] = {}
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
        for path in files:
            for line in path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    fields = json.loads(line)
                    latest.setdefault(fields["id"], {}).update(fields)
        rows = []
        for fields in latest.values():
            with contextlib.suppress(ValueError, TypeError, KeyError):
                values: dict[str, Any] = {
                    k: _stamp(v) if k in _TIMES else v for k, v in fields.items()
                }
                rows.append(JobRow(**values))
        if rows:
            await self._store.save_jobs(rows)
        for path in files:
            path.unlink()
        interrupted = await self._store.interrupt_unfinished(INTERRUPTED_REASON)
        if files or interrupted:
            log.warning("jobs_recovered", replayed=len(rows), interrupted=interrupted)
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
            fields.update(_final_fields(job))
            fields.update(
                method=job.method,
                params=job.params,
                created_at=job.created_at,
                started_at=job.started_at,
                slave=job.slave,
            )
            job.journal_seq = self._seq
        fields["id"] = job.id
        fields["state"] = job.state
        os.write(self._fd, json.dumps(fields, separators=(",", ":")).encode() + b"\n")
        self._pending[job.id] = job
        self._wake.set()

    def begin(self, method: str, params: Mapping[str, str]) -> Job:
        """A new job with its id, not yet journaled (see :meth:`running`)."""
        secrets = tuple(v for k, v in params.items() if is_secret_name(k) and len(v) >= 3)
        stored = {k[:256]: v[:1024] for k, v in redact_mapping(params).items()}
        return Job(os.urandom(16).hex(), method[:512], stored, secrets)

    def running(self, job: Job, slave: str) -> None:
        """Journal that the job is being sent to ``slave``."""
        job.state, job.slave, job.started_at = "running", slave, time.time()
        self._put(job, {"slave": slave, "started_at": job.started_at})

    def succeeded(self, job: Job, result: str) -> None:
        """Journal the job's success with the slave's reply."""
        job.state, job.result, job.ended_at = "succeeded", _scrub(result, job.secrets), time.time()
        self._put(job, {"result": job.result, "ended_at": job.ended_at})

    def failed(self, job: Job, code: str, error: str) -> None:
        """Journal the job's failure with its status code and message."""
        job.state, job.error_code = "failed", code
        job.error, job.ended_at = _scrub(error, job.secrets), time.time()
        self._put(job, {"error_code": code, "error": job.error, "ended_at": job.ended_at})

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
        rows = [job.row() for job in batch]
        old_fd, old_seq = self._fd, self._seq
        self._seq += 1
        self._open_journal()
        try:
            await self._store.save_jobs(rows)
        except Exception as exc:
            # Carry the batch over to the new journal (unless a newer state of
            # the same job is already there), so the next flush or start has it.
            log.error("job_flush_failed", error=str(exc), jobs=len(batch))
            for job in batch:
                if job.id not in self._pending:
                    self._put(job, {})
        finally:
            os.close(old_fd)
            self._journal(old_seq).unlink(missing_ok=True)

    async def close(self) -> None:
        """Stop the flusher and write everything still pending."""
        await cancel_task(self._flusher)
        await self.flush()
        if self._fd >= 0:
            os.close(self._fd)
            self._journal(self._seq).unlink(missing_ok=True)
            self._fd = -1
