"""``arko.v1.Jobs``: proto in, a call on the job service, proto out.

All logic lives in :class:`arko.master.jobs.service.JobService`; here requests
become its calls, records and events become messages (:mod:`arko.master.api.messages`),
and ``ArkoError`` becomes a status code. A call carrying a job token is a
running job acting on its own children: :class:`arko.master.jobs.tokens.JobTokens`
checks the token and what it reaches.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import structlog
from google.protobuf import json_format

from arko.common.auth import JOB_ID_HEADER
from arko.common.errors import ArkoError, InvalidArgument
from arko.master.api.auth import job_credentials
from arko.master.api.messages import event_message, job_message
from arko.master.api.servicers import abort
from arko.master.jobs.live import FINISHED, Event
from arko.master.jobs.records import TOP_LEVEL
from arko.master.jobs.service import JobService, Submission
from arko.master.jobs.state import wire_name
from arko.master.jobs.tokens import Caller, JobTokens
from arko.v1 import jobs_pb2, jobs_pb2_grpc

log = structlog.get_logger("arko.master.api.jobs")

Context = grpc.aio.ServicerContext[Any, Any]

# Events a Jobs/Run call may hold between the slave's stream and its caller.
# Reading the slave's next message while the last one is being written
# doubles a stream's rate over one-at-a-time relaying; past this many, the
# relay waits for the caller, and gRPC flow control then holds the slave back.
WRITE_AHEAD = 64


class JobsServicer(jobs_pb2_grpc.JobsServicer):
    """``arko.v1.Jobs``: run, read back, follow and cancel jobs."""

    def __init__(self, jobs: JobService, tokens: JobTokens) -> None:
        self._jobs = jobs
        self._tokens = tokens

    async def _caller(self, context: Context) -> Caller | None:
        """The job whose token the call carries (None: an ordinary client).

        Raises:
            Unauthenticated: a wrong token, or one whose job has ended.
        """
        credentials = job_credentials(context.invocation_metadata())
        return None if credentials is None else await self._tokens.verify(*credentials)

    async def _reach(self, context: Context, job_id: str) -> Caller | None:
        """The calling job, once it is allowed to reach ``job_id`` (its descendant)."""
        caller = await self._caller(context)
        if caller is not None:
            await self._tokens.check_descendant(caller, job_id.strip(), self._jobs.find)
        return caller

    async def Run(self, request: jobs_pb2.RunRequest, context: Context) -> None:
        has_timeout = request.HasField("timeout")
        try:
            caller = await self._caller(context)
            lineage = (
                TOP_LEVEL if caller is None else self._tokens.child(caller, request.outlive_parent)
            )
            submission = Submission(
                request.method,
                dict(request.params),
                args=json_format.MessageToDict(request.args) if request.HasField("args") else None,
                labels=dict(request.labels),
                timeout=request.timeout.ToTimedelta().total_seconds() if has_timeout else None,
                deadline=context.time_remaining(),
                detach=request.detach,
                refuse_early=False,  # a bad name or size is a job that fails, on record
                lineage=lineage,
            )
            job = self._jobs.submit(submission)
        except ArkoError as exc:
            await abort(context, exc)
        trailer = ((JOB_ID_HEADER, job.id),)
        if job.submission.detach:
            context.set_trailing_metadata(trailer)
            await context.write(event_message(job.id, job.live.since(0)[0]))
            return

        events: asyncio.Queue[Event] = asyncio.Queue(WRITE_AHEAD)

        async def write() -> None:
            # FINISHED is always the last event of a job that ends with an answer.
            while (event := await events.get()).kind != FINISHED:
                await context.write(event_message(job.id, event))
            await context.write(event_message(job.id, event))

        error: ArkoError | None = None
        # A writer that fails (the caller went away) cancels the job with it;
        # a cancelled call (the same, seen by gRPC first) cancels both.
        async with asyncio.TaskGroup() as group:
            group.create_task(write())
            try:
                await job.run(events.put)
            except ArkoError as exc:
                error = exc
        if error is not None:
            await abort(context, error, trailer)
        context.set_trailing_metadata(trailer)

    async def Get(self, request: jobs_pb2.GetJobRequest, context: Context) -> jobs_pb2.Job:
        try:
            await self._reach(context, request.job_id)
            return job_message(await self._jobs.get(request.job_id))
        except ArkoError as exc:
            await abort(context, exc)

    async def List(
        self, request: jobs_pb2.ListJobsRequest, context: Context
    ) -> jobs_pb2.ListJobsResponse:
        try:
            caller = await self._caller(context)
            if caller is not None:
                self._tokens.check_listing(caller, request.parent_id)
            states = tuple(wire_name(s) for s in request.states)
            rows, token = await self._jobs.list(
                request.method, states, request.page_size, request.page_token, request.parent_id
            )
        except ArkoError as exc:
            await abort(context, exc)
        except ValueError:
            await abort(context, InvalidArgument("states holds a value that is not a JobState"))
        return jobs_pb2.ListJobsResponse(jobs=[job_message(r) for r in rows], next_page_token=token)

    async def Watch(self, request: jobs_pb2.WatchRequest, context: Context) -> None:
        try:
            await self._reach(context, request.job_id)
            async for event in self._jobs.watch(request.job_id, request.from_seq):
                await context.write(event_message(request.job_id.strip(), event))
        except ArkoError as exc:
            await abort(context, exc)

    async def Cancel(self, request: jobs_pb2.CancelRequest, context: Context) -> jobs_pb2.Job:
        try:
            caller = await self._reach(context, request.job_id)
            by = context.peer() if caller is None else f"job {caller.job.id}"
            if request.reason.strip():
                by = f"{by}: {request.reason.strip()[:256]}"
            return job_message(await self._jobs.cancel(request.job_id, by))
        except ArkoError as exc:
            await abort(context, exc)
