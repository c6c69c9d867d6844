"""Run one job: pick a slave, build the request, call it, render the reply, record it.

Invocation is dynamic: request and reply classes come from the slave's
reflection catalog, and the call goes over the slave's cached channel as raw
bytes, so the master holds no generated code of any slave service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

import grpc
import structlog
from google.protobuf import json_format
from google.protobuf.message import Message

from arko.common.errors import ArkoError, InternalError, NoLiveSlave, SlaveCallFailed
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

        Whatever happens, the job's record ends in a final state and one
        ``job_finished`` line is logged: an exception that is not an
        ``ArkoError`` is a bug in the master, recorded and answered as
        INTERNAL, never left to escape as UNKNOWN with no record.

        Args:
            job: From :meth:`new_job`.
            params: Field name -> string value for the request message.
            timeout: Seconds the slave gets for the call, None for no deadline.

        Raises:
            ArkoError: a subclass whose ``code`` is the status to answer with.
        """
        started = time.monotonic()
        try:
            message = await self._run(job, params, timeout)
        except ArkoError as exc:
            self._recorder.failed(job, exc.code.name, exc.message)
            self._finished(job, started)
            raise
        except asyncio.CancelledError:
            self._recorder.failed(job, "CANCELLED", "the caller cancelled or went away")
            self._finished(job, started)
            raise
        except Exception as exc:
            log.exception("job_crashed", job_id=job.id, method=job.method, slave=job.slave)
            error = InternalError(f"arko could not run the job: {type(exc).__name__}: {exc}")
            self._recorder.failed(job, error.code.name, error.message)
            self._finished(job, started)
            raise error from exc
        self._recorder.succeeded(job, message)
        self._finished(job, started)
        return message

    @staticmethod
    def _finished(job: Job, started: float) -> None:
        """The access log: one line per job, however it ended."""
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

    async def _run(self, job: Job, params: Mapping[str, str], timeout: float | None) -> str:
        method = job.method
        self._limits.check(params)
        name = parse_method_name(method)
        loop = asyncio.get_running_loop()
        # Slaves restored from the store are not usable until a probe or their
        # registration settles them (a protected slave registers again after a
        # master restart); jobs for them wait that long, within a bound.
        wait_until = loop.time() + self._connect_timeout
        tries, waited = 0, False
        while True:
            offering = self._registry.offering(name.dotted)
            try:
                slave = self._scheduler.pick(name.dotted, offering)
            except NoLiveSlave:
                left = wait_until - loop.time()
                if left <= 0 or not any(s.pending for s in offering):
                    raise
                if not waited:
                    waited = True
                    log.info(
                        "job_waiting",
                        job_id=job.id,
                        method=name.dotted,
                        reason="waiting for the slave to register again",
                    )
                await self._registry.wait_for_change(left)
                continue
            # A slave we could not even connect to never saw the job, so trying
            # again cannot run it twice. Bounded: each pass marks a slave down
            # or finds its channel replaced by a fresh one.
            tries += 1
            if tries > 2 * len(offering) + 1:
                raise NoLiveSlave(f"no slave could take {name.dotted}")
            catalog = slave.catalog
            desc = catalog.method(name.service, name.method) if catalog else None
            if catalog is None or desc is None:
                await self._registry.probe(slave)
                continue
            if desc.client_streaming or desc.server_streaming:
                raise Unimplemented(f"{name.dotted} is a streaming method; arko runs unary methods")
            request = build_request(catalog.message_class(desc.input_type), params)
            reply_cls = catalog.message_class(desc.output_type)
            with slave.lease() as channel:
                if not await slave.ensure_connected(channel, self._connect_timeout):
                    if slave.current(channel):
                        await self._registry.mark_down(slave, "cannot connect to run a job")
                    continue  # else the slave registered again meanwhile: use its new channel
                self._recorder.running(job, slave.address)
                log.debug("job_dispatched", job_id=job.id, method=name.dotted, slave=slave.address)
                reply = await self._call(slave, channel, name.path, request, reply_cls, timeout)
            return f"{method.strip()} done: Job finished with status OK: {render_reply(reply)}"

    async def _call(
        self,
        slave: Slave,
        channel: grpc.aio.Channel,
        path: str,
        request: Message,
        reply_cls: type[Message],
        timeout: float | None,
    ) -> Message:
        call = channel.unary_unary(
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
