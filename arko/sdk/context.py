"""``JobContext``: a pipeline handler starting, following and waiting for child jobs.

A method that an arko master runs as a job receives the job's id and job
token in its call's metadata. ``JobContext.of(context)`` reads them, and
starts children through ``arko.v1.Jobs`` on the master that sent the job
(``arko-job-master``) or else on the masters the slave registered with. The
token lets the handler start and read its own children, nothing else, and
only while its job runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import grpc
from google.protobuf import struct_pb2

from arko.common.auth import JOB_ID_HEADER, JOB_MASTER_HEADER, JOB_TOKEN_HEADER
from arko.sdk.errors import JobFailed, JobRefused, NotAJob
from arko.sdk.masters import Masters, current
from arko.v1 import jobs_pb2, jobs_pb2_grpc

T = TypeVar("T")
FINISHED = jobs_pb2.JobEvent.FINISHED
# Below this many seconds left, a child is still sent with a (tiny) positive timeout.
_MIN_TIMEOUT = 0.001


class _Unreached(Exception):
    """A master that could not be reached before anything was sent: try the next."""

    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        super().__init__(error.details())
        self.error = error


class JobContext:
    """The running job a handler serves, able to run child jobs.

    Use :meth:`of` rather than the constructor.
    """

    def __init__(
        self,
        job_id: str,
        token: str,
        masters: tuple[str, ...],
        channels: Masters,
        time_remaining: Callable[[], float | None],
    ) -> None:
        self._id = job_id
        self._metadata = ((JOB_ID_HEADER, job_id), (JOB_TOKEN_HEADER, token))
        self._masters = masters
        self._channels = channels
        self._time_remaining = time_remaining

    @classmethod
    def of(
        cls, context: grpc.aio.ServicerContext[Any, Any], masters: Masters | None = None
    ) -> JobContext:
        """The job a handler's call belongs to.

        Args:
            context: The handler's ``grpc.aio.ServicerContext``.
            masters: Where to reach the masters (default: as the slave
                daemon configured at start).

        Raises:
            NotAJob: the call carries no ``arko-job-id`` and ``arko-job-token``,
                so no arko master sent it as a job (a direct call, say).
        """
        metadata = {k: str(v) for k, v in context.invocation_metadata() or ()}
        job_id = metadata.get(JOB_ID_HEADER, "")
        token = metadata.get(JOB_TOKEN_HEADER, "")
        if not job_id or not token:
            raise NotAJob(
                "this call carries no arko-job-id and arko-job-token: only a job sent by "
                "an arko master can run child jobs"
            )
        channels = masters or current()
        candidates = channels.candidates(metadata.get(JOB_MASTER_HEADER, "").strip())
        if not candidates:
            raise NotAJob(
                f"job {job_id} did not say which master sent it (arko-master "
                "--advertise_address) and no master is configured (arko.sdk.configure)"
            )
        return cls(job_id, token, candidates, channels, context.time_remaining)

    @property
    def id(self) -> str:
        """The job's id."""
        return self._id

    async def run(
        self,
        method: str,
        params: Mapping[str, str] | None = None,
        args: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> jobs_pb2.Job:
        """Run a child job and return its record once it has succeeded.

        The child is attached: should this handler be cancelled, so is the
        child. ``asyncio.gather`` over several calls runs them side by side.

        Raises:
            JobFailed: the child ended without succeeding (``.job`` is its record).
            JobRefused: the master would not start it (no record).
        """
        request = self._request(method, params, args, labels, detach=False)

        async def attempt(stub: jobs_pb2_grpc.JobsStub) -> jobs_pb2.Job:
            return await self._until_finished(
                stub.Run(request, metadata=self._metadata, timeout=self._left())
            )

        job = await self._on_a_master(attempt)
        if job.state != jobs_pb2.SUCCEEDED:
            raise JobFailed(job)
        return job

    async def start(
        self,
        method: str,
        params: Mapping[str, str] | None = None,
        args: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        outlive_parent: bool = False,
    ) -> str:
        """Start a child job and return its id at once; :meth:`wait` for it later.

        The child still ends when this job ends, unless ``outlive_parent``.

        Raises:
            JobRefused: the master would not start it.
        """
        request = self._request(method, params, args, labels, detach=True)
        request.outlive_parent = outlive_parent

        async def attempt(stub: jobs_pb2_grpc.JobsStub) -> str:
            call = stub.Run(request, metadata=self._metadata, timeout=self._left())
            async with contextlib.aclosing(_events(call)) as events:
                async for event in events:  # the first: ACCEPTED, with the id
                    return event.job_id
            raise JobRefused(grpc.StatusCode.INTERNAL, f"the master said nothing of {method}")

        return await self._on_a_master(attempt)

    async def wait(self, child_id: str) -> jobs_pb2.Job:
        """A child's record once it has ended, whatever its state (no raise).

        Raises:
            JobRefused: the master would not show it (not a child of this job, say).
        """
        request = jobs_pb2.WatchRequest(job_id=child_id)

        async def attempt(stub: jobs_pb2_grpc.JobsStub) -> jobs_pb2.Job:
            return await self._until_finished(stub.Watch(request, metadata=self._metadata))

        return await self._on_a_master(attempt)

    def _left(self) -> float | None:
        left = self._time_remaining()
        return None if left is None else max(left, _MIN_TIMEOUT)

    def _request(
        self,
        method: str,
        params: Mapping[str, str] | None,
        args: Mapping[str, Any] | None,
        labels: Mapping[str, str] | None,
        detach: bool,
    ) -> jobs_pb2.RunRequest:
        request = jobs_pb2.RunRequest(
            method=method, params=dict(params or {}), labels=dict(labels or {}), detach=detach
        )
        if args is not None:
            request.args.CopyFrom(_struct(args))
        left = self._left()
        if left is not None:  # the child runs no longer than this handler may
            request.timeout.FromNanoseconds(int(left * 1e9))
        return request

    async def _until_finished(self, call: AsyncIterator[jobs_pb2.JobEvent]) -> jobs_pb2.Job:
        """Read a Run or Watch stream to its FINISHED event; return the record it carries.

        A job that failed ends its Run call with an error status after the
        FINISHED event: the record says all, so that status is not raised.
        """
        async with contextlib.aclosing(_events(call, finished_is_enough=True)) as events:
            async for event in events:
                if event.kind == FINISHED:
                    return event.job
        raise JobRefused(grpc.StatusCode.INTERNAL, "the master ended the call with no FINISHED")

    async def _on_a_master(self, attempt: Callable[[jobs_pb2_grpc.JobsStub], Awaitable[T]]) -> T:
        """``attempt`` on the first master that answers (in order)."""
        last: grpc.aio.AioRpcError | None = None
        for address in self._masters:
            try:
                return await attempt(jobs_pb2_grpc.JobsStub(self._channels.channel(address)))
            except _Unreached as unreached:
                last = unreached.error
        assert last is not None, "JobContext.of checks there is a master"
        raise JobRefused(
            last.code(), f"no master answered ({', '.join(self._masters)}): {last.details()}"
        )


async def _events(
    call: AsyncIterator[jobs_pb2.JobEvent], finished_is_enough: bool = False
) -> AsyncGenerator[jobs_pb2.JobEvent, None]:
    """A call's events, its errors as SDK errors.

    UNAVAILABLE before the first event means the master was not reached:
    another one may be tried. After a FINISHED event (``finished_is_enough``)
    the call's closing status adds nothing.
    """
    seen = finished = False
    try:
        async for event in call:
            seen = True
            finished = event.kind == FINISHED
            yield event
    except grpc.aio.AioRpcError as exc:
        if finished and finished_is_enough:
            return
        if not seen and exc.code() == grpc.StatusCode.UNAVAILABLE:
            raise _Unreached(exc) from None
        raise JobRefused(exc.code(), exc.details() or exc.code().name) from None


def _struct(args: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(dict(args))
    return struct
