"""Job tokens: the credential a job carries to start and read its own child jobs.

Each job sent to a slave gets a fresh random token, in the call's metadata
with the job's id. Only the token's SHA-256 is kept (on the record, so any
master on a shared database can check it); the token itself lives in memory
for the dispatch and is never stored or logged. A token is good while its job
is QUEUED or RUNNING, and only for that job's children: starting them, and
reading, following, cancelling or listing them (at any depth).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc

from arko.common.auth import tokens_match
from arko.common.errors import ArkoError, PermissionDenied, Unauthenticated
from arko.master.jobs.live import LiveJobs
from arko.master.jobs.records import Job, Lineage
from arko.master.jobs.state import JobState
from arko.master.store.rows import JobRow

# What a refusal of a job token's reach says, wherever it is refused.
ONLY_CHILDREN = "a job token may only start and read its own child jobs"
_IN_FLIGHT = frozenset({JobState.QUEUED, JobState.RUNNING})

GetRow = Callable[[str], Awaitable[JobRow | None]]


class TooDeep(ArkoError):
    """A child job would nest deeper than ``--max_job_depth``."""

    code = grpc.StatusCode.FAILED_PRECONDITION


def token_hash(token: str) -> str:
    """The SHA-256 (hex) of a token: what the record keeps instead of it."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Caller:
    """A call made with a valid job token: the job it belongs to, as it stands."""

    job: JobRow
    #: Monotonic seconds at which the job's deadline passes, when known here.
    deadline: float | None = None


class JobTokens:
    """Issues job tokens and checks the ones presented to this master.

    Args:
        live: Jobs in flight here (their records and deadlines, read first).
        get_stored: A job's stored record: a job another master runs, or
            one that ended here and left memory (to say it ended).
        max_depth: ``--max_job_depth``: how deep children may nest.
    """

    def __init__(self, live: LiveJobs, get_stored: GetRow, max_depth: int) -> None:
        self._live = live
        self._get_stored = get_stored
        self._max_depth = max_depth

    @staticmethod
    def issue(job: Job) -> str:
        """A fresh token for ``job``; the job keeps only its hash."""
        token = secrets.token_urlsafe(32)
        job.token_hash = token_hash(token)
        return token

    async def verify(self, job_id: str, token: str) -> Caller:
        """The job a token belongs to, while it is queued or running.

        Raises:
            Unauthenticated: no such job, a token that is not its own, or a
                job that has ended (its token died with it).
        """
        live = self._live.get(job_id)
        if live is not None:
            row, deadline = live.job.row(), live.deadline
        else:
            stored = await self._get_stored(job_id) if len(job_id) == 32 else None
            if stored is None:
                raise Unauthenticated("wrong job token: no job has this id")
            row, deadline = stored, None
        if not row.token_hash or not tokens_match(row.token_hash, token_hash(token)):
            raise Unauthenticated(f"wrong job token for job {job_id}")
        if row.state not in _IN_FLIGHT:
            raise Unauthenticated(
                f"job {job_id} has ended ({row.state.value}): its job token is no longer valid"
            )
        return Caller(row, deadline)

    def child(self, caller: Caller, outlive_parent: bool) -> Lineage:
        """Where a child started by ``caller`` comes from.

        Raises:
            TooDeep: the child would nest deeper than ``--max_job_depth``.
        """
        depth = caller.job.depth + 1
        if depth > self._max_depth:
            raise TooDeep(
                f"job {caller.job.id} is at depth {caller.job.depth}: a child would nest "
                f"deeper than --max_job_depth {self._max_depth}"
            )
        return Lineage("job", caller.job.id, depth, outlive_parent)

    async def check_descendant(self, caller: Caller, job_id: str, get: GetRow) -> None:
        """Let ``caller`` reach ``job_id`` only if it is one of its children, at any depth.

        ``get`` reads a job's record (in flight or stored); the walk up the
        parents stops at the caller's own depth, so it is bounded by
        ``--max_job_depth`` reads.

        Raises:
            PermissionDenied: ``job_id`` is not below the caller's job.
        """
        row = await get(job_id)
        while row is not None and row.depth > caller.job.depth and row.parent_id:
            if row.parent_id == caller.job.id:
                return
            row = await get(row.parent_id)
        raise PermissionDenied(f"{ONLY_CHILDREN}: job {job_id} is not a child of {caller.job.id}")

    @staticmethod
    def check_listing(caller: Caller, parent_id: str) -> None:
        """A job token lists only its own job's children.

        Raises:
            PermissionDenied: ``parent_id`` is not the caller's job.
        """
        if parent_id.strip() != caller.job.id:
            raise PermissionDenied(f"{ONLY_CHILDREN}: list with parent_id {caller.job.id}")
