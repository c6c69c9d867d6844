"""gRPC servicers of the master: proto in, domain call, proto out.

All logic lives in ``Registry`` and ``JobService``; here ``ArkoError`` becomes a
status code in one place and nothing else happens.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import grpc
import structlog
from google.protobuf import json_format
from google.protobuf.message import Message

from arko.common.auth import JOB_ID_HEADER, tokens_match
from arko.common.errors import ArkoError, InternalError, InvalidArgument, Unauthenticated
from arko.gen import execution_pb2, execution_pb2_grpc, register_pb2, register_pb2_grpc
from arko.master.jobs.render import ReplyTree
from arko.master.jobs.service import JobService, Submission
from arko.master.slaves.admission import RateLimit, check_protected, peer_address
from arko.master.slaves.registry import Registry

log = structlog.get_logger("arko.master.api.servicers")


async def abort(
    context: grpc.aio.ServicerContext[Any, Any],
    error: ArkoError,
    trailer: tuple[tuple[str, str], ...] = (),
) -> NoReturn:
    """Answer the call with the error's status code and message."""
    await context.abort(error.code, error.message, trailer)
    raise AssertionError("unreachable: abort raises")


def peer_host(peer: str) -> str:
    """The IP of a gRPC peer string, for a slave that registered with an empty host.

    Raises:
        InvalidArgument: the caller's address is not IP (a Unix socket, say).
    """
    address = peer_address(peer)
    if address is None:
        raise InvalidArgument(f"host is empty and the caller's address {peer!r} is not IP")
    return str(address)


class RegisterServicer(register_pb2_grpc.RegisterServicer):
    """``Register.RegisterNewSlave``: slaves announce themselves."""

    def __init__(
        self,
        registry: Registry,
        join_token: str | None = None,
        protected: bool = False,
        rate_limit: RateLimit | None = None,
    ) -> None:
        self._registry = registry
        self._join_token = join_token
        self._protected = protected  # loopback peers only (no join token, not opened)
        self._rate_limit = rate_limit

    async def RegisterNewSlave(
        self, request: register_pb2.SlaveConfig, context: grpc.aio.ServicerContext[Any, Any]
    ) -> register_pb2.SlaveRegisterStatus:
        try:
            check_protected(context.peer(), self._protected)
            if self._rate_limit is not None:
                self._rate_limit.check(context.peer())
            if self._join_token is not None and not tokens_match(self._join_token, request.token):
                raise Unauthenticated("join token missing or wrong")
            host = request.host or peer_host(context.peer())
            await self._registry.register(
                host,
                request.port,
                request.call_secret,
                request.call_nonce,
                request.registration_nonce,
            )
        except ArkoError as exc:
            log.info("register_refused", peer=context.peer(), reason=exc.message)
            await abort(context, exc)
        return register_pb2.SlaveRegisterStatus(message="done")


class ExecutionServicer(execution_pb2_grpc.ExecutionServicer):
    """``Execution.ExecuteJob``: clients run a method on the fleet, the original way."""

    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    async def ExecuteJob(
        self, request: execution_pb2.JobParams, context: grpc.aio.ServicerContext[Any, Any]
    ) -> execution_pb2.JobStatus:
        submission = Submission(
            request.method, dict(request.params), deadline=context.time_remaining(), collect=True
        )
        try:
            # A malformed name or oversized parameters are the caller's
            # mistake, refused at the door, not a job to list.
            job = self._jobs.submit(submission)
        except ArkoError as exc:
            await abort(context, exc)
        # Trailing, not initial, metadata: it rides with the status, where an
        # early send_initial_metadata cost a tenth of the master's CPU per job.
        trailer = ((JOB_ID_HEADER, job.id),)
        try:
            outcome = await job.run()
        except ArkoError as exc:
            await abort(context, exc, trailer)  # the job service logged and recorded it
        except Exception as exc:
            # Only when recording the failure failed too (say, a full disk).
            log.exception("job_unrecorded", job_id=job.id, method=request.method)
            await abort(context, InternalError(f"{type(exc).__name__}: {exc}"), trailer)
        context.set_trailing_metadata(trailer)
        if outcome.streaming:
            body = json.dumps([_as_dict(m) for m in outcome.messages], indent=2)
        else:
            reply = outcome.reply or ReplyTree.of(outcome.messages[0])
            body = reply.indented()
        message = f"{request.method.strip()} done: Job finished with status OK: {body}"
        return execution_pb2.JobStatus(message=message, job_id=job.id)


def _as_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
