"""Run one job: pick a slave, build the request, call it, render the reply, record it.

Invocation is dynamic: request and reply classes come from the slave's
reflection catalog, and the call goes over the slave's cached channel as raw
bytes, so the master holds no generated code of any slave service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import grpc
import structlog
from google.protobuf import json_format
from google.protobuf.message import Message

from arko.common.errors import ArkoError, NoLiveSlave, SlaveCallFailed
from arko.common.methods import parse_method_name
from arko.master.jobs import Job, JobRecorder
from arko.master.params import build_request
from arko.master.registry import Registry
from arko.master.scheduler import Scheduler
from arko.master.slaves import Slave

log = structlog.get_logger("arko.master.executor")


class Unimplemented(ArkoError):
    """The method exists but arko cannot run it (streaming)."""

    code = grpc.StatusCode.UNIMPLEMENTED


class TooLarge(ArkoError):
    """The job's parameters exceed the configured limits."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one job may carry."""

    max_params: int = 256
    max_param_bytes: int = 1024 * 1024

    def check(self, params: Mapping[str, str]) -> None:
        """Raise ``TooLarge`` naming the limit a job's parameters exceed."""
        if len(params) > self.max_params:
            raise TooLarge(f"{len(params)} parameters; the limit is {self.max_params}")
        size = sum(len(k) + len(v) for k, v in params.items())
        if size > self.max_param_bytes:
            raise TooLarge(f"parameters total {size} bytes; the limit is {self.max_param_bytes}")


def render_reply(reply: Message) -> str:
    """The reply as grpcurl prints it: indented JSON, default fields included."""
    return json_format.MessageToJson(reply, always_print_fields_with_no_presence=True)


class Executor:
    """Runs jobs on the slaves of a ``Registry`` chosen by a ``Scheduler``, recording each."""

    def __init__(
        self,
        registry: Registry,
        scheduler: Scheduler,
        recorder: JobRecorder,
        connect_timeout: float,
        limits: Limits | None = None,
    ) -> None:
        self._registry = registry
        self._scheduler = scheduler
        self._recorder = recorder
        self._connect_timeout = connect_timeout
        self._limits = limits or Limits()

    def new_job(self, method: str, params: Mapping[str, str]) -> Job:
        """A job record for this call; its id goes back to the caller."""
        return self._recorder.begin(method, params)

    async def run(self, job: Job, params: Mapping[str, str], timeout: float | None) -> str:
        """Run ``job`` and return the original's status line; record how it ended.

        Args:
            job: From :meth:`new_job`.
            params: Field name -> string value for the request message.
            timeout: Seconds the slave gets for the call, None for no deadline.

        Raises:
            ArkoError: a subclass whose ``code`` is the status to answer with.
        """
        try:
            message = await self._run(job, params, timeout)
        except ArkoError as exc:
            self._recorder.failed(job, exc.code.name, exc.message)
            log.info(
                "job_failed",
                job_id=job.id,
                method=job.method,
                code=exc.code.name,
                reason=job.error,
            )
            raise
        except asyncio.CancelledError:
            self._recorder.failed(job, "CANCELLED", "the caller cancelled or went away")
            log.info("job_cancelled", job_id=job.id, method=job.method, slave=job.slave)
            raise
        self._recorder.succeeded(job, message)
        log.debug("job_succeeded", job_id=job.id, method=job.method, slave=job.slave)
        return message

    async def _run(self, job: Job, params: Mapping[str, str], timeout: float | None) -> str:
        method = job.method
        self._limits.check(params)
        name = parse_method_name(method)
        # A slave we could not even connect to never saw the job, so trying
        # the next one cannot run it twice. Bounded: each pass marks one down.
        for _ in range(len(self._registry.offering(name.dotted)) + 1):
            slave = self._scheduler.pick(name.dotted, self._registry.offering(name.dotted))
            catalog = slave.catalog
            desc = catalog.method(name.service, name.method) if catalog else None
            if catalog is None or desc is None:
                await self._registry.probe(slave)
                continue
            if desc.client_streaming or desc.server_streaming:
                raise Unimplemented(f"{name.dotted} is a streaming method; arko runs unary methods")
            request = build_request(catalog.message_class(desc.input_type), params)
            reply_cls = catalog.message_class(desc.output_type)
            if not await slave.ensure_connected(self._connect_timeout):
                await self._registry.mark_down(slave, "cannot connect to run a job")
                continue
            self._recorder.running(job, slave.address)
            log.debug("job_dispatched", job_id=job.id, method=name.dotted, slave=slave.address)
            reply = await self._call(slave, name.path, request, reply_cls, timeout)
            return f"{method.strip()} done: Job finished with status OK: {render_reply(reply)}"
        raise NoLiveSlave(f"no slave could take {name.dotted}")

    async def _call(
        self,
        slave: Slave,
        path: str,
        request: Message,
        reply_cls: type[Message],
        timeout: float | None,
    ) -> Message:
        call = slave.channel.unary_unary(
            path,
            request_serializer=type(request).SerializeToString,
            response_deserializer=reply_cls.FromString,
        )
        try:
            reply: Message = await call(request, timeout=timeout, metadata=slave.metadata)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                # The slave went away mid-call: not retried (it may have run),
                # but no later job should wait for the next ping to learn it.
                await self._registry.mark_down(slave, f"job failed: {exc.details()}")
            raise SlaveCallFailed(exc.code(), slave.address, exc.details() or "") from None
        return reply
