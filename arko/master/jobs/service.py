"""The job service: the one core behind Execution, arko.v1.Jobs (and any other adapter).

It accepts a job, runs it through the executor while turning what happens into
the job's record (:mod:`arko.master.jobs.records`) and its events
(:mod:`arko.master.jobs.live`), answers for any job (in flight here, or from the
store), lets anyone follow a job's events, and cancels jobs. Every adapter
hands a job in the same way, as a :class:`Submission` to :meth:`JobService.submit`;
adapters only convert their wire format to these calls and map ``ArkoError``
to their status codes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import grpc
import structlog
from google.protobuf.message import Message

from arko.common.auth import JOB_ID_HEADER, JOB_MASTER_HEADER, JOB_TOKEN_HEADER
from arko.common.errors import ArkoError, InternalError, InvalidArgument
from arko.master.cluster.coordination import ALONE, Coordinator
from arko.master.jobs.executor import Executor, JobInput
from arko.master.jobs.live import (
    ACCEPTED,
    FINISHED,
    OUTPUT,
    STARTED,
    Event,
    LiveJob,
    LiveJobs,
)
from arko.master.jobs.records import TOP_LEVEL, JobRecorder, Lineage
from arko.master.jobs.render import ReplyTree
from arko.master.jobs.state import FINAL, INTERRUPTED_REASON, JobState
from arko.master.jobs.tokens import JobTokens
from arko.master.secrets.references import NO_VAULT, SecretResolver
from arko.master.store.rows import JobFilter, JobRow, Store

log = structlog.get_logger("arko.master.jobs.service")

MAX_PAGE = 1000
DEFAULT_PAGE = 50
CALLER_GONE = "caller went away"
_STATE_WORDS = frozenset(state.value for state in JobState)
_EVENTS_PAGE = 500
_FOLLOW_POLL = 1.0  # seconds between two reads of a job another master runs
_IN_FLIGHT = (JobState.QUEUED, JobState.RUNNING)

Sink = Callable[[Event], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a job that succeeded gave back."""

    messages: list[Message]
    streaming: bool
    reply: ReplyTree | None = None
    """The last message converted, when it holds no secret value: an adapter
    renders it rather than converting the message again."""


@dataclass(frozen=True, slots=True)
class Submission:
    """One job as an adapter hands it in (gRPC, HTTP, a job's child; triggers later).

    Attributes:
        method: ``Service.Method``, as the caller spelled it.
        params: The string parameters as the caller sent them (secrets in clear).
        args: The typed arguments (a JSON object), or None.
        labels: The slave must carry every one of these labels.
        timeout: Seconds the job itself allows; None for the master's ``job_timeout``.
        deadline: Seconds the waiting caller allows (its gRPC deadline); a
            detached job outlives its caller and ignores it.
        detach: Run in the background: the caller leaves with the job's id.
        collect: Hand back every message (else only the last one); past
            ``max_output_bytes`` of their JSON the job fails.
        refuse_early: A bad name or size is refused with no record (False:
            it is a job that fails at once, on record, like any other).
        lineage: What started the job (a caller, a trigger, a parent job).
    """

    method: str
    params: Mapping[str, str] = field(default_factory=dict)
    args: Mapping[str, Any] | None = None
    labels: Mapping[str, str] | None = None
    timeout: float | None = None
    deadline: float | None = None
    detach: bool = False
    collect: bool = False
    refuse_early: bool = True
    lineage: Lineage = TOP_LEVEL


Runner = Callable[[LiveJob, Submission, Sink | None], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class Submitted:
    """An accepted job: its live view, and for an attached job the run to await."""

    live: LiveJob
    submission: Submission
    _runner: Runner

    @property
    def id(self) -> str:
        """The job's id, known to the caller before any slave is asked."""
        return self.live.id

    async def run(self, sink: Sink | None = None) -> Outcome:
        """Run the attached job to its end in this task; return the slave's messages.

        Every event from ACCEPTED to FINISHED is awaited in ``sink`` (when
        given) before the next message is read, so a slow caller slows the
        slave through gRPC flow control.

        Raises:
            ArkoError: the job failed; ``code`` is the status to answer with.
        """
        if self.submission.detach:
            raise RuntimeError(f"job {self.id} is detached: it runs on its own")
        return await self._runner(self.live, self.submission, sink)


def _check_timeout(submission: Submission) -> None:
    if submission.timeout is not None and submission.timeout <= 0:
        raise InvalidArgument(f"timeout must be positive, not {submission.timeout:g}s")


class JobNotFound(ArkoError):
    """No job has this id."""

    code = grpc.StatusCode.NOT_FOUND


class JobCancelled(ArkoError):
    """The job was cancelled through the API."""

    code = grpc.StatusCode.CANCELLED


class OutputTooLarge(ArkoError):
    """More output than a caller that takes it all at once may be given."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class JobInterrupted(ArkoError):
    """The master stopped while the job was in flight; it may be run again."""

    code = grpc.StatusCode.ABORTED


def check_job_id(job_id: str) -> str:
    """A job id as arko makes them (32 hex digits).

    Raises:
        InvalidArgument: anything else.
    """
    job_id = job_id.strip()
    if len(job_id) != 32 or any(c not in "0123456789abcdef" for c in job_id):
        raise InvalidArgument(f"job id {job_id[:64]!r} is not 32 lowercase hex digits")
    return job_id


def _page_token(row: JobRow) -> str:
    assert row.created_at is not None, "stored jobs have a creation time"
    raw = f"{row.created_at.timestamp():.6f}/{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_token(token: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        stamp, job_id = raw.split("/")
        return dt.datetime.fromtimestamp(float(stamp), dt.UTC), check_job_id(job_id)
    except (ValueError, UnicodeDecodeError, binascii.Error, OverflowError, ArkoError):
        raise InvalidArgument("page_token is not one this master handed out") from None


def _accepted(row: JobRow) -> Event:
    """The ACCEPTED event of a stored job: its record as it was when accepted."""
    created = row.created_at.timestamp() if row.created_at else 0.0
    record = JobRow(
        id=row.id,
        method=row.method,
        params=row.params,
        state=JobState.QUEUED,
        args=row.args,
        created_at=row.created_at,
        detached=row.detached,
    )
    return Event(0, ACCEPTED, created, JobState.QUEUED, record=record)


class JobService:
    """Accepts, runs, answers for, follows and cancels jobs.

    Args:
        executor: Dispatches a job to a slave.
        recorder: Journals records and kept output.
        store: Answers for jobs no longer in memory.
        live: Jobs in flight on this master.
        max_output_bytes: Output kept per job (the rest is live only).
        job_timeout: Deadline of a job whose caller set none (and of detached jobs).
        coordinator: The other masters on the database, if any.
        on_finished: Told of every job that ends here (e.g. metrics).
        secrets: Replaces ``${secret:NAME}`` in what is sent to the slave.
        advertise_address: Sent with each job (``arko-job-master``): where
            its child jobs reach this master ("" lets the slave choose).
    """

    def __init__(
        self,
        executor: Executor,
        recorder: JobRecorder,
        store: Store,
        live: LiveJobs,
        max_output_bytes: int,
        job_timeout: float | None,
        coordinator: Coordinator = ALONE,
        on_finished: Callable[[LiveJob], None] | None = None,
        secrets: SecretResolver = NO_VAULT,
        advertise_address: str = "",
    ) -> None:
        self._executor = executor
        self._secrets = secrets
        self._advertise = advertise_address
        # Children in flight here, by parent id: a parent that ends (or is
        # cancelled) cancels them without a scan of every live job.
        self._children: dict[str, set[str]] = {}
        # Children here of a parent on another master: each follows its
        # parent's record, to end with it.
        self._followers: dict[str, asyncio.Task[None]] = {}
        # Several masters: jobs running on another one are followed through
        # the store (woken by its notices) and cancelled by asking it.
        self._coordinator = coordinator
        coordinator.on_cancel_asked(self.cancel_here)
        self._recorder = recorder
        self._store = store
        self._live = live
        self._max_output = max_output_bytes
        self._job_timeout = job_timeout
        self._detached: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._on_finished = on_finished

    # -- running -----------------------------------------------------------

    def check(self, submission: Submission) -> None:
        """Refuse at once what would fail before reaching a slave (timeout, size, name).

        :meth:`submit` checks too; this is for an adapter that vets a
        submission further in between (the HTTP API reads the method's
        descriptor).

        Raises:
            ArkoError: TooLarge or InvalidArgument.
        """
        _check_timeout(submission)
        self._executor.check(JobInput(submission.method, submission.params, submission.args))

    def submit(self, submission: Submission) -> Submitted:
        """Accept a job: the one way in for every adapter.

        Nothing is sent to a slave here. A detached job then runs in the
        background and ends on its own, by :meth:`cancel` or at its timeout;
        an attached one runs when its adapter awaits :meth:`Submitted.run`.

        Raises:
            ArkoError: the submission is refused with no record: a timeout
                that is not positive, or (``refuse_early``) a bad name or size.
        """
        _check_timeout(submission)
        # An attached job that may fail on record is checked as it runs
        # (Executor.execute): checking here too would cost every Jobs/Run twice.
        if submission.refuse_early or submission.detach:
            try:
                self.check(submission)
            except ArkoError:
                if submission.refuse_early:
                    raise
                # Run it attached: it fails at once, with a record and a status.
                submission = replace(submission, detach=False)
        live = self._accept(submission)
        submitted = Submitted(live, submission, self._run)
        if submission.detach:
            task = asyncio.create_task(self._run_detached(submitted), name=f"job-{live.id}")
            self._detached.add(task)
            task.add_done_callback(self._detached.discard)
        return submitted

    def _accept(self, submission: Submission) -> LiveJob:
        """A new job with its id and ACCEPTED event."""
        job = self._recorder.begin(
            submission.method,
            submission.params,
            submission.args,
            submission.detach,
            submission.lineage,
        )
        token = JobTokens.issue(job)
        timeout = self._timeout(submission)
        deadline = None if timeout is None else time.monotonic() + timeout
        credentials = (
            (JOB_ID_HEADER, job.id),
            (JOB_TOKEN_HEADER, token),
            (JOB_MASTER_HEADER, self._advertise),
        )
        live = LiveJob(job, self._recorder.output, self._max_output, deadline, credentials)
        self._live.add(live)
        if job.parent_id:
            self._adopt(live)
        live.add(ACCEPTED, record=job.row())
        if submission.detach:
            self._recorder.accepted(job)
        return live

    def _timeout(self, submission: Submission) -> float | None:
        """Seconds the slave gets: the job's timeout or, while a caller waits, its
        deadline, whichever ends first; with neither, ``job_timeout``."""
        deadline = None if submission.detach else submission.deadline
        bounds = [t for t in (submission.timeout, deadline) if t is not None]
        # A child runs no longer than its parent (when the parent runs here;
        # the SDK also sends the handler's own time left as the timeout).
        parent = self._live.get(submission.lineage.parent_id)
        if parent is not None and parent.deadline is not None:
            bounds.append(max(parent.deadline - time.monotonic(), 0.0))
        return min(bounds) if bounds else self._job_timeout

    async def _run_detached(self, submitted: Submitted) -> None:
        with contextlib.suppress(ArkoError):  # recorded and logged by _run()
            await self._run(submitted.live, submitted.submission, None)

    async def _run(self, live: LiveJob, submission: Submission, sink: Sink | None) -> Outcome:
        """Run an accepted job to its end in this task; return the slave's messages.

        Each event is added to the live job and, when ``sink`` is given,
        awaited there (ACCEPTED first) before the next message is read. Whatever
        happens, the record ends in a final state, a FINISHED event is added
        and one ``job_finished`` line is logged; an exception that is not an
        ``ArkoError`` is a bug, recorded and raised as ``InternalError``.

        Raises:
            ArkoError: the job failed; ``code`` is the status to answer with.
        """
        collect = submission.collect
        job = live.job
        live.task = asyncio.current_task()
        started = time.monotonic()
        messages: list[Message] = []

        def on_start(slave: str) -> None:
            self._recorder.running(job, slave)
            event = live.add(STARTED, slave)
            pending.append(event)

        def on_queued() -> None:
            if not job.detached:  # a detached job has its record already
                self._recorder.accepted(job)  # QUEUED in the record while it waits

        collected = 0
        # The last message, converted once: its text is the record's result,
        # and its tree (when it holds no secret) the adapter's reply.
        last_text, last_tree = "", None

        async def on_message(message: Message) -> None:
            nonlocal collected, last_text, last_tree
            while pending and sink is not None:
                await sink(pending.pop(0))
            hidden = job.hide_reply(message)  # scrubbed before it is rendered
            tree = ReplyTree.of(hidden)
            text = last_text = tree.compact()
            last_tree = tree if hidden is message else None
            if collect:
                messages.append(message)
                collected += len(text)
                if collected > self._max_output:
                    raise OutputTooLarge(
                        f"the output passed {self._max_output} bytes (--max_output_bytes); "
                        "stream it with arko.v1.Jobs/Run instead"
                    )
            else:
                messages[:] = [message]
            first = live.next_seq
            live.add(OUTPUT, text)
            if sink is not None:
                for event in live.since(first):  # the output, after a TRUNCATED marker
                    await sink(event)

        pending: list[Event] = []
        error: ArkoError | None = None
        streaming = False
        try:
            # Several masters: in the database before anyone learns its id.
            await self._recorder.persist(job)
            if sink is not None:
                await sink(live.since(0)[0])  # ACCEPTED: the caller learns the id first
            # ${secret:NAME} becomes its value here only: the record keeps the reference.
            inputs = await self._secrets.resolve(job.method, submission.params, submission.args)
            job.secrets = job.secrets.adding(inputs.values)
            streaming = await self._executor.execute(
                JobInput(job.method, inputs.params, inputs.args, submission.labels, job.secrets),
                self._timeout(submission),
                on_start,
                on_message,
                {"job_id": job.id},
                on_queued,
                live.credentials,
            )
        except ArkoError as exc:
            error = exc
            # The caller's status too: a typed argument's parse error quotes its value.
            exc.message = job.hide_secrets(exc.message)
            self._recorder.failed(job, exc.code.name, exc.message, live.next_seq)
        except asyncio.CancelledError:
            error = self._cancelled(live)
            if error is None:  # the caller went away, or the master stops: nothing to answer
                self._finish(live, started)
                raise
        except Exception as exc:
            log.exception("job_crashed", job_id=job.id, method=job.method, slave=job.slave)
            error = InternalError(f"arko could not run the job: {type(exc).__name__}: {exc}")
            self._recorder.failed(job, error.code.name, error.message, live.next_seq)
        else:
            self._recorder.succeeded(job, last_text, live.next_seq)
        finished = self._finish(live, started)
        if sink is not None:
            for event in [*pending, finished]:
                await sink(event)
        if error is not None:
            raise error
        return Outcome(messages, streaming, last_tree)

    def _cancelled(self, live: LiveJob) -> ArkoError | None:
        """Record a cancelled job; the error to answer with if its caller is still there."""
        job, task = live.job, asyncio.current_task()
        if live.cancel_requested:
            state, by = live.cancel_state, live.cancel_requested
            code = "CANCELLED" if state == JobState.CANCELLED else "ABORTED"
            reason = f"cancelled by {by}" if state == JobState.CANCELLED else INTERRUPTED_REASON
            self._recorder.failed(job, code, reason, live.next_seq, state, by)
            if task is not None and task.uncancel() == 0:
                if state == JobState.CANCELLED:
                    return JobCancelled(f"job {job.id} was {reason}")
                return JobInterrupted(f"job {job.id}: {reason}")
            return None
        if self._stopping:
            self._recorder.failed(
                job, "ABORTED", INTERRUPTED_REASON, live.next_seq, JobState.INTERRUPTED
            )
        else:
            self._recorder.failed(
                job,
                "CANCELLED",
                "the caller cancelled or went away",
                live.next_seq,
                JobState.CANCELLED,
                CALLER_GONE,
            )
        return None

    def _finish(self, live: LiveJob, started: float) -> Event:
        """Add the FINISHED event and log the access line: one per job, however it ended."""
        job = live.job
        event = live.add(FINISHED, record=job.row())
        self._end_family(live)
        if self._on_finished is not None:
            self._on_finished(live)
        log.info(
            "job_finished",
            job_id=job.id,
            method=job.method,
            slave=job.slave,
            state=job.state,
            code=job.error_code or "OK",
            seconds=round(time.monotonic() - started, 4),
            **({"reason": job.error} if job.error else {}),
        )
        return event

    # -- parents and children ----------------------------------------------

    def _adopt(self, live: LiveJob) -> None:
        """Tie a new child to its parent, so the parent's end reaches it."""
        job = live.job
        self._children.setdefault(job.parent_id, set()).add(job.id)
        if self._coordinator.alone or job.outlive_parent or self._live.get(job.parent_id):
            return
        # The parent runs on another master: follow its record to its end.
        task = asyncio.create_task(self._end_with_parent(live), name=f"parent-of-{job.id}")
        self._followers[job.id] = task

    def _end_family(self, live: LiveJob) -> None:
        """A job ended: forget its token, leave its parent, and end its children.

        Its children that were not started with ``outlive_parent`` are
        cancelled (each one's end then reaches its own children).
        """
        job = live.job
        live.credentials = ()  # the token dies with its job
        follower = self._followers.pop(job.id, None)
        if follower is not None:
            follower.cancel()
        siblings = self._children.get(job.parent_id)
        if siblings is not None:
            siblings.discard(job.id)
            if not siblings:
                del self._children[job.parent_id]
        for child_id in tuple(self._children.get(job.id, ())):
            self._cancel_orphan(child_id, job.id)

    def _cancel_orphan(self, child_id: str, parent_id: str) -> None:
        child = self._live.get(child_id)
        if child is None or child.job.outlive_parent:
            return
        if child.cancel(f"parent job {parent_id} ended"):
            log.info("job_cancel_requested", job_id=child_id, by=f"parent job {parent_id} ended")

    async def _end_with_parent(self, live: LiveJob) -> None:
        """Cancel a child here once its parent, on another master, has ended."""
        parent_id = live.job.parent_id
        try:
            while not live.job.finished:
                row = await self._store.get_job(parent_id)
                if row is None or row.state in FINAL:
                    self._cancel_orphan(live.id, parent_id)
                    return
                await self._coordinator.wait_saved(parent_id, _FOLLOW_POLL)
        except Exception as exc:  # the child runs on; only its tie to the parent is lost
            log.warning("parent_follow_failed", job_id=live.id, parent_id=parent_id, error=str(exc))

    async def _in_flight_children(self, job_id: str) -> set[str]:
        """The queued and running children of a job: here, and (several masters) in the store.

        Another master's children are in the store before they are sent
        (``JobRecorder.persist``), so a cancel finds them however new.
        """
        found = set(self._children.get(job_id, ()))  # left here by each child's end
        if not self._coordinator.alone:
            rows = await self._store.list_jobs(
                JobFilter(states=_IN_FLIGHT, limit=MAX_PAGE, parent_id=job_id)
            )
            found.update(row.id for row in rows)
        return found

    # -- reading -----------------------------------------------------------

    async def get(self, job_id: str) -> JobRow:
        """One job's record, wherever it is.

        Raises:
            InvalidArgument: the id is malformed.
            JobNotFound: no job has it.
        """
        job_id = check_job_id(job_id)
        live = self._live.get(job_id)
        if live is not None:
            return live.job.row()
        row = await self._store.get_job(job_id)
        if row is None:
            raise JobNotFound(f"no job {job_id}")
        return row

    async def find(self, job_id: str) -> JobRow | None:
        """One job's record, wherever it is; None when no job has this id (or it is malformed)."""
        try:
            return await self.get(job_id)
        except (JobNotFound, InvalidArgument):
            return None

    async def list(
        self,
        method: str = "",
        states: tuple[str, ...] = (),
        page_size: int = 0,
        token: str = "",
        parent_id: str = "",
        trigger: str = "",
    ) -> tuple[list[JobRow], str]:
        """Jobs newest first, and the token of the next page ("" on the last).

        Raises:
            InvalidArgument: a bad state, page size or token.
        """
        unknown = [s for s in states if s not in _STATE_WORDS]
        if unknown:
            raise InvalidArgument(f"unknown job states {unknown}: use {', '.join(JobState)}")
        if page_size < 0 or page_size > MAX_PAGE:
            raise InvalidArgument(f"page_size {page_size} is outside 0..{MAX_PAGE}")
        limit = page_size or DEFAULT_PAGE
        after = _parse_token(token) if token else None
        await self._recorder.flush()  # so jobs of the last second are listed too
        wanted = tuple(JobState(s) for s in states)
        parent = check_job_id(parent_id) if parent_id.strip() else ""
        rows = await self._store.list_jobs(
            JobFilter(method.strip(), wanted, limit + 1, after, parent, trigger.strip())
        )
        more = len(rows) > limit
        return rows[:limit], _page_token(rows[limit - 1]) if more else ""

    async def watch(self, job_id: str, from_seq: int = 0) -> AsyncIterator[Event]:
        """A job's events from ``from_seq``: those held or stored, then live ones, to the end.

        Raises:
            InvalidArgument: a malformed id or a negative sequence number.
            JobNotFound: no job has this id.
        """
        job_id = check_job_id(job_id)
        if from_seq < 0:
            raise InvalidArgument(f"from_seq {from_seq} is negative")
        live = self._live.get(job_id)
        if live is not None:
            async for event in live.follow(from_seq):
                yield event
            return
        row = await self._store.get_job(job_id)
        if row is None:
            raise JobNotFound(f"no job {job_id}")
        async for event in self._stored(row, from_seq):
            yield event

    async def _stored(self, row: JobRow, from_seq: int) -> AsyncIterator[Event]:
        """A stored job's events: ACCEPTED, STARTED and FINISHED come from its record.

        A job still running on another master (several share the store) is
        followed: its record and kept output are read again each time that
        master says it wrote them (at most ``--job_flush_interval`` late),
        or every second, until it ends.
        """
        seen, seq, started = 0, max(from_seq, 2), False
        if from_seq == 0:
            yield _accepted(row)
        while True:
            if not started and row.started_at is not None:
                started, seen = True, 1
                if from_seq <= 1:
                    yield Event(1, STARTED, row.started_at.timestamp(), JobState.RUNNING, row.slave)
            if started or row.state in FINAL:
                while True:
                    page = await self._store.list_events(row.id, seq, _EVENTS_PAGE)
                    for kept in page:
                        yield Event(kept.seq, kept.kind, kept.time, JobState.RUNNING, kept.data)
                        seen, seq = kept.seq, kept.seq + 1
                    if len(page) < _EVENTS_PAGE:
                        break
            if row.state in FINAL:
                last = max(row.last_seq, seen + 1, from_seq)
                ended = row.ended_at.timestamp() if row.ended_at else 0.0
                yield Event(last, FINISHED, ended, row.state, record=row)
                return
            if self._coordinator.alone:
                return  # this master's own job, ended by a crash before it was recorded
            await self._coordinator.wait_saved(row.id, _FOLLOW_POLL)
            fresh = await self._store.get_job(row.id)
            if fresh is None:
                return
            row = fresh

    # -- cancelling and stopping -------------------------------------------

    async def cancel(self, job_id: str, by: str) -> JobRow:
        """Cancel a queued or running job and its children; return its record once it has ended.

        Its queued and running children are cancelled with it, at any depth
        and on any master, those started with ``outlive_parent`` included
        (they outlive their parent's end, not its cancellation). A job that
        already ended is answered as it is.

        Raises:
            InvalidArgument: a malformed id.
            JobNotFound: no job has this id.
        """
        job_id = check_job_id(job_id)
        children = await self._in_flight_children(job_id)
        if not children:
            return await self._cancel_one(job_id, by)
        # Side by side: each child is asked in the same turn as its parent,
        # before the parent's handler can notice and start another one.
        ended, *_ = await asyncio.gather(
            self._cancel_one(job_id, by), *(self.cancel(child, by) for child in children)
        )
        return ended

    async def _cancel_one(self, job_id: str, by: str) -> JobRow:
        live = self._live.get(job_id)
        if live is None:
            row = await self.get(job_id)
            if self._coordinator.alone or row.state in FINAL:
                return row
            # Running on another master: ask it, and follow the record to its end.
            await self._coordinator.ask_cancel(job_id, by)
            log.info("job_cancel_requested", job_id=job_id, by=by, master=row.master)
            async for event in self._stored(row, row.last_seq + 2):
                if event.kind == FINISHED and event.record is not None:
                    return event.record
            return await self.get(job_id)
        if live.cancel(by):
            log.info("job_cancel_requested", job_id=job_id, by=by)
            async for _ in live.follow(live.next_seq):
                pass  # until FINISHED
        return live.job.row()

    def cancel_here(self, job_id: str, by: str) -> None:
        """Cancel ``job_id`` if it runs on this master (another master asked)."""
        live = self._live.get(job_id)
        if live is not None and live.cancel(by):
            log.info("job_cancel_requested", job_id=job_id, by=by)

    async def stop(self, grace: float) -> None:
        """Let detached jobs finish within ``grace`` seconds, then interrupt them.

        Jobs with a caller are the server's: it drains them within the same
        grace and then cancels them, which records them interrupted too.
        """
        self._stopping = True
        if not self._detached:
            return
        await asyncio.wait(set(self._detached), timeout=grace)
        for live in self._live.running():
            if live.task in self._detached:
                live.cancel("the master stopping", JobState.INTERRUPTED)
        if self._detached:
            await asyncio.wait(set(self._detached), timeout=5)
