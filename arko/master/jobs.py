"""Job records and their kept output: every job gets one, and none is lost to a crash.

A job's transitions and output events are appended, as JSON lines, to a
journal file with a plain ``write()`` (into the page cache: no fsync, no
database round trip) before the job goes on, so a ``kill -9`` of the master
cannot lose them. A background flusher folds the journal into the database in
batches, one transaction each, and rotates the journal so it stays small. At
start, any journal left by a crash is replayed, and jobs still queued or
running are marked interrupted.

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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import structlog

from arko.common.lifecycle import cancel_task
from arko.common.redact import REDACTED, is_secret_name, redact_mapping
from arko.master.store import EventRow, JobRow, Store

log = structlog.get_logger("arko.master.jobs")

MAX_STORED_TEXT = 64 * 1024
INTERRUPTED_REASON = "the master stopped while the job was in flight"
FINAL_STATES = frozenset({"succeeded", "failed", "cancelled", "interrupted"})
_TIMES = ("created_at", "started_at", "ended_at")
# Every field of a job line that is not ``id`` or ``state``, for whole lines.
_WHOLE = (
    "method",
    "params",
    "args",
    "slave",
    "result",
    "error_code",
    "error",
    "created_at",
    "started_at",
    "ended_at",
    "cancelled_by",
    "detached",
    "output_bytes",
    "output_truncated",
    "last_seq",
)


def _hide(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` without any secret parameter value in it."""
    for value in secrets:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def _stamp(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)


def _secret_values(values: Mapping[str, Any]) -> list[str]:
    """String values under secret-looking names, at any depth."""
    found: list[str] = []
    for name, value in values.items():
        if is_secret_name(str(name)):
            if isinstance(value, str):
                found.append(value)
            elif value is not None:
                found.append(json.dumps(value))
        elif isinstance(value, Mapping):
            found += _secret_values(value)
        elif isinstance(value, list):
            found += [
                s for item in value if isinstance(item, Mapping) for s in _secret_values(item)
            ]
    return found


class Job:
    """A job in flight: its record as it stands, and the secret values never to store."""

    __slots__ = (
        "args",
        "cancelled_by",
        "created_at",
        "detached",
        "ended_at",
        "error",
        "error_code",
        "id",
        "journal_seq",
        "last_seq",
        "method",
        "output_bytes",
        "output_truncated",
        "params",
        "result",
        "secrets",
        "slave",
        "started_at",
        "state",
    )

    def __init__(
        self,
        job_id: str,
        method: str,
        params: dict[str, str],
        secrets: tuple[str, ...],
        args: dict[str, Any] | None = None,
        detached: bool = False,
    ):
        self.id = job_id
        self.method = method
        self.params = params
        self.args = args or {}
        self.secrets = secrets
        self.detached = detached
        self.state = "queued"
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
        return self.state in FINAL_STATES

    def hide_secrets(self, text: str) -> str:
        """``text`` as anyone but the caller may see it: secret values replaced."""
        return _hide(text, self.secrets) if self.secrets else text

    def scrub(self, text: str) -> str:
        """``text`` as a record field may keep it: secrets replaced, size bounded."""
        return self.hide_secrets(text)[:MAX_STORED_TEXT]

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
            args=self.args,
            cancelled_by=self.cancelled_by,
            detached=self.detached,
            output_bytes=self.output_bytes,
            output_truncated=self.output_truncated,
            last_seq=self.last_seq,
        )


class JobRecorder:
    """Journals job transitions and kept output, and flushes them to the store in batches.

    Args:
        store: Where records end up.
        journal_dir: Folder of the journal files.
        flush_interval: Seconds transitions gather before one database write.
        on_saved: Told the ids of jobs whose records reached the store.
    """

    def __init__(
        self,
        store: Store,
        journal_dir: Path,
        flush_interval: float = 1.0,
        on_saved: Callable[[list[str]], None] | None = None,
    ) -> None:
        self._store = store
        self._dir = journal_dir
        self._interval = flush_interval
        self._on_saved = on_saved
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
                    k: _stamp(v) if k in _TIMES else v for k, v in fields.items()
                }
                rows.append(JobRow(**values))
        if rows or events:
            await self._store.save_jobs(rows, list(events.values()))
        for path in files:
            path.unlink()
        interrupted = await self._store.interrupt_unfinished(INTERRUPTED_REASON)
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
    ) -> Job:
        """A new job with its id, not yet journaled (see :meth:`accepted`, :meth:`running`)."""
        args = dict(args or {})
        found = [v for k, v in params.items() if is_secret_name(k)] + _secret_values(args)
        secrets = tuple(v for v in found if len(v) >= 3)
        stored = {k[:256]: v[:1024] for k, v in redact_mapping(params).items()}
        return Job(
            os.urandom(16).hex(), method[:512], stored, secrets, redact_mapping(args), detached
        )

    def accepted(self, job: Job) -> None:
        """Journal a job that may wait or run without a caller: it has a record from now."""
        self._put(job, {})

    def running(self, job: Job, slave: str) -> None:
        """Journal that the job is being sent to ``slave``."""
        job.state, job.slave, job.started_at = "running", slave, time.time()
        self._put(job, {"slave": slave, "started_at": job.started_at})

    def output(self, job: Job, seq: int, kind: str, data: str) -> None:
        """Journal one kept output event (the caller bounds what it keeps)."""
        self._keep(EventRow(job.id, seq, kind, time.time(), data))

    def _keep(self, event: EventRow) -> None:
        self._write(
            {"e": event.job_id, "s": event.seq, "k": event.kind, "t": event.time, "d": event.data}
        )
        self._events.append(event)
        self._wake.set()

    def succeeded(self, job: Job, result: str, last_seq: int = 0) -> None:
        """Journal the job's success with the slave's (last) reply."""
        job.state, job.result, job.ended_at = "succeeded", job.scrub(result), time.time()
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
        state: str = "failed",
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
        """Write every pending record to the store, then drop the journal that held them."""
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
            await self._store.save_jobs(rows, events)
        except Exception as exc:
            # Carry the batch over to the new journal (unless a newer state of
            # the same job is already there), so the next flush or start has it.
            log.error("job_flush_failed", error=str(exc), jobs=len(batch))
            for job in batch:
                if job.id not in self._pending:
                    self._put(job, {})
            for event in events:
                self._keep(event)
        else:
            if self._on_saved is not None:
                self._on_saved([job.id for job in batch if job.id not in self._pending])
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
