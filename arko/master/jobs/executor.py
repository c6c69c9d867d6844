"""Dispatch one job: pick a slave, build the request, call it, hand each reply on.

Invocation is dynamic: request and reply classes come from the slave's
reflection catalog, and the call goes over the slave's cached channel as raw
bytes, so the master holds no generated code of any slave service. Unary and
server-streaming methods are both called; each message the slave sends is
handed to the caller's ``on_message`` as it arrives, so a stream is relayed
with gRPC's flow control end to end and never gathered here. Records, events
and logs are the job service's business (:mod:`arko.master.jobs.service`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from google.protobuf.message import Message

from arko.common.capacity import REFUSED_CAPACITY, REFUSED_HEADER
from arko.common.errors import ArkoError, NoLiveSlave, SlaveCallFailed
from arko.common.methods import MethodName, parse_method_name
from arko.common.redact import NO_SECRETS, Secrets
from arko.master.cluster.coordination import ALONE, Coordinator
from arko.master.jobs.params import build_request
from arko.master.jobs.queue import DEFAULT_QUEUE_TIMEOUT, JobQueue
from arko.master.jobs.scheduler import Scheduler
from arko.master.slaves.registry import Registry
from arko.master.slaves.slave import Slave

log = structlog.get_logger("arko.master.jobs.executor")


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

    def check(self, params: Mapping[str, str], args: Mapping[str, Any] | None = None) -> None:
        """Raise ``TooLarge`` naming the limit a job's parameters exceed.

        Typed arguments count as parameters, by their JSON size.
        """
        count = len(params) + len(args or {})
        if count > self.max_params:
            raise TooLarge(f"{count} parameters; the limit is {self.max_params} (--max_params)")
        size = sum(len(k) + len(v) for k, v in params.items())
        if args:
            size += len(json.dumps(args, separators=(",", ":")))
        if size > self.max_param_bytes:
            raise TooLarge(
                f"parameters total {size} bytes; the limit is {self.max_param_bytes} "
                "(--max_param_bytes)"
            )


@dataclass(frozen=True, slots=True)
class JobInput:
    """What a job asks for: the method and its arguments, as the caller gave them."""

    method: str
    params: Mapping[str, str]
    args: Mapping[str, Any] | None = None
    labels: Mapping[str, str] | None = None  # the slave must carry all of them
    secrets: Secrets = NO_SECRETS  # scrubbed out of the slave's errors


OnStart = Callable[[str], None]
OnMessage = Callable[[Message], Awaitable[None]]
Metadata = tuple[tuple[str, str], ...]


class Executor:
    """Runs jobs on the slaves of a ``Registry`` chosen by a ``Scheduler``."""

    def __init__(
        self,
        registry: Registry,
        scheduler: Scheduler,
        connect_timeout: float,
        limits: Limits | None = None,
        queue: JobQueue | None = None,
        coordinator: Coordinator = ALONE,
    ) -> None:
        self._registry = registry
        self._connect_timeout = connect_timeout
        self._limits = limits or Limits()
        self._queue = queue or JobQueue(registry, scheduler, DEFAULT_QUEUE_TIMEOUT, coordinator)
        # A method's max_concurrency also needs a place among all masters.
        self._coordinator = coordinator

    def check(self, job: JobInput) -> None:
        """Refuse at once what can be refused without a slave: size and method name.

        Raises:
            ArkoError: TooLarge or InvalidArgument.
        """
        self._limits.check(job.params, job.args)
        parse_method_name(job.method)

    async def execute(
        self,
        job: JobInput,
        timeout: float | None,
        on_start: OnStart,
        on_message: OnMessage,
        log_context: Mapping[str, str] | None = None,
        on_queued: Callable[[], None] | None = None,
        credentials: Metadata = (),
    ) -> bool:
        """Run ``job`` on a slave, handing each reply message to ``on_message``.

        Returns whether the method was server-streaming.

        Args:
            job: The method and its arguments.
            timeout: Seconds the slave gets for the call, None for no deadline.
            on_start: Told the slave's address once the call is about to be sent.
            on_message: Awaited with each message the slave sends, in order.
            log_context: Fields for this module's log lines (the job id).
            on_queued: Told when the job has to wait in the queue for a place.
            credentials: Metadata sent with the call besides the slave's own:
                the job's id and job token (never logged).

        Raises:
            ArkoError: a subclass whose ``code`` is the status to answer with.
        """
        self.check(job)
        name = parse_method_name(job.method)
        context = dict(log_context or {})
        loop = asyncio.get_running_loop()
        # Slaves restored from the store are not usable until a probe or their
        # registration settles them (a protected slave registers again after a
        # master restart); jobs for them wait that long, within a bound.
        wait_until = loop.time() + self._connect_timeout
        policy = self._queue.policy(name.dotted)
        retries = policy.retries
        # The caller's deadline covers the wait in the queue; the method's own
        # timeout covers the run on the slave.
        deadline = None if timeout is None else loop.time() + timeout
        tries, waited = 0, False
        queued_at, told = loop.time(), False

        def queued() -> None:
            nonlocal told
            if not told:
                told = True
                (on_queued or _nothing)()

        while True:
            try:
                slave = await self._queue.take(name.dotted, job.labels or {}, queued, context)
            except NoLiveSlave:
                left = wait_until - loop.time()
                if left > 0 and any(s.pending for s in self._registry.offering(name.dotted)):
                    if not waited:
                        waited = True
                        log.info(
                            "job_waiting",
                            method=name.dotted,
                            reason="waiting for the slave to register again",
                            **context,
                        )
                    await self._registry.wait_for_change(left)
                    continue
                if not retries:
                    raise
                # The job's policy: a job that never started waits for a slave
                # to come (back) and is tried again, so many times.
                retries -= 1
                log.info("job_retry", method=name.dotted, retries_left=retries, **context)
                await self._registry.wait_for_change(self._connect_timeout)
                continue
            slot = None
            if policy.max_concurrency:
                slot = await self._coordinator.try_slot(name.dotted, policy.max_concurrency)
                if slot is None:  # held by other masters' jobs: wait for a notice
                    self._queue.give_back(slave, name.dotted)
                    left = queued_at + self._queue.timeout - loop.time()
                    if left <= 0:
                        raise self._queue.timed_out(name.dotted)
                    queued()
                    await self._coordinator.wait_for_slot(min(left, 1.0))
                    continue
            # A slave we could not even connect to, or that refused the call
            # as full, never saw the job, so trying again cannot run it twice.
            # Bounded: each pass marks a slave down or full, or finds its
            # channel replaced by a fresh one.
            tries += 1
            try:
                if tries > 2 * len(self._registry.offering(name.dotted)) + 1:
                    raise NoLiveSlave(f"no slave could take {name.dotted}")
                remaining = None if deadline is None else max(deadline - loop.time(), 0.0)
                if policy.timeout_seconds and (
                    remaining is None or policy.timeout_seconds < remaining
                ):
                    remaining = float(policy.timeout_seconds)
                streaming = await self._send(
                    slave, name, job, remaining, on_start, on_message, context, credentials
                )
            except _NeverStarted as why:
                self._queue.give_back(slave, name.dotted, why.refused)
                continue
            except BaseException:
                self._queue.give_back(slave, name.dotted)
                raise
            finally:
                if slot is not None:
                    await self._coordinator.release(slot)
            self._queue.give_back(slave, name.dotted)
            return streaming

    async def _send(
        self,
        slave: Slave,
        name: MethodName,
        job: JobInput,
        timeout: float | None,
        on_start: OnStart,
        on_message: OnMessage,
        context: Mapping[str, str],
        credentials: Metadata,
    ) -> bool:
        """Call ``slave``; raise ``_NeverStarted`` when the job provably never reached it."""
        catalog = slave.catalog
        desc = catalog.method(name.service, name.method) if catalog else None
        if catalog is None or desc is None:
            await self._registry.probe(slave)
            raise _NeverStarted
        if desc.client_streaming:
            raise Unimplemented(
                f"{name.dotted} takes a stream of requests; arko runs unary and "
                "server-streaming methods"
            )
        request = build_request(catalog.message_class(desc.input_type), job.params, job.args)
        reply_cls = catalog.message_class(desc.output_type)
        with slave.lease() as channel:
            if not await slave.ensure_connected(channel, self._connect_timeout):
                if slave.current(channel):
                    await self._registry.mark_down(slave, "cannot connect to run a job")
                raise _NeverStarted  # else the slave registered again: use its new channel
            on_start(slave.address)
            log.debug("job_dispatched", method=name.dotted, slave=slave.address, **context)
            metadata = slave.metadata + credentials
            call = _Call(slave, channel, name.path, request, reply_cls, timeout, metadata)
            try:
                if desc.server_streaming:
                    await call.stream(on_message)
                else:
                    await on_message(await call.unary())
            except grpc.aio.AioRpcError as exc:
                details = job.secrets.text(exc.details() or "")
                if refused_as_full(exc):
                    log.info("job_refused", method=name.dotted, slave=slave.address, **context)
                    raise _NeverStarted(refused=True) from None
                if exc.code() == grpc.StatusCode.UNAVAILABLE:
                    # The slave went away mid-call: not retried (it may
                    # have run), but no later job should wait for the
                    # next ping to learn it.
                    await self._registry.mark_down(slave, f"job failed: {details}")
                raise SlaveCallFailed(exc.code(), slave.address, details) from None
        return desc.server_streaming


class _NeverStarted(Exception):
    """The job did not reach the slave: it may be sent again.

    ``refused``: the slave answered that it is full.
    """

    def __init__(self, refused: bool = False) -> None:
        super().__init__()
        self.refused = refused


def _nothing() -> None:
    """The default ``on_queued``."""


def refused_as_full(exc: grpc.aio.AioRpcError) -> bool:
    """Whether the slave refused the call as full, before running it."""
    if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return False
    trailer = exc.trailing_metadata() or ()
    return any(k == REFUSED_HEADER and v == REFUSED_CAPACITY for k, v in trailer)


@dataclass(frozen=True, slots=True)
class _Call:
    """One call to a slave's method over a leased channel, as raw bytes."""

    slave: Slave
    channel: grpc.aio.Channel
    path: str
    request: Message
    reply_cls: type[Message]
    timeout: float | None
    metadata: Metadata

    async def unary(self) -> Message:
        call = self.slave.multicallable(
            self.channel, self.path, type(self.request), self.reply_cls, streaming=False
        )
        reply: Message = await call(self.request, timeout=self.timeout, metadata=self.metadata)
        return reply

    async def stream(self, on_message: OnMessage) -> None:
        call = self.slave.multicallable(
            self.channel, self.path, type(self.request), self.reply_cls, streaming=True
        )
        stream = call(self.request, timeout=self.timeout, metadata=self.metadata)
        try:
            async for message in stream:
                # The next message is read only once this one is handed on:
                # a slow reader slows the slave through gRPC flow control.
                await on_message(message)
        finally:
            stream.cancel()  # no-op once the stream ended; ends it if we stop early
