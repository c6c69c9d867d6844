"""Executor driven directly: slaves of a real Registry and JobQueue, calls on fake channels."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import Message

from arko.common.capacity import REFUSED_CAPACITY, REFUSED_HEADER
from arko.common.errors import InvalidArgument, SlaveCallFailed
from arko.common.redact import Secrets
from arko.gen import pipeline_pb2
from arko.master.jobs.executor import Executor, JobInput, Limits, TooLarge
from arko.master.jobs.queue import JobQueue
from arko.master.jobs.scheduler import FirstLiveScheduler
from arko.master.slaves.discovery import Catalog
from arko.master.slaves.probe import Prober
from arko.master.slaves.registry import Registry
from arko.master.slaves.slave import Slave
from arko.master.store.rows import STATUS_LIVE, SlaveRow

RUN = "MyPipeline.Run"
STREAM = "MyPipelineLogs.Stream"

# What a fake slave does with one call: the messages it sends, or an error it raises.
Answer = Callable[[Message, float | None], Sequence[Message]]


def refuse_as_full(request: Message, timeout: float | None) -> Sequence[Message]:
    """What a slave at its capacity answers (arko.slave.capacity)."""
    raise rpc_error(
        grpc.StatusCode.RESOURCE_EXHAUSTED, "full", ((REFUSED_HEADER, REFUSED_CAPACITY),)
    )


def rpc_error(
    code: grpc.StatusCode, details: str, trailer: tuple[tuple[str, str], ...] = ()
) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailer), details=details
    )


def status(text: str) -> Answer:
    return lambda request, timeout: [pipeline_pb2.PipelineStatus(message=text)]


class FakeStream:
    """A server stream: the slave's messages one at a time, and whether it was cancelled."""

    def __init__(self, messages: Sequence[Message], channel: FakeChannel) -> None:
        self._messages = messages
        self._channel = channel

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        for message in self._messages:
            await asyncio.sleep(0)
            yield message
        if self._channel.hold is not None:
            await self._channel.hold.wait()

    def cancel(self) -> bool:
        self._channel.cancelled = True
        return True


class FakeChannel:
    """A channel that is always READY and answers calls with ``answer``."""

    def __init__(self, answer: Answer, hold: asyncio.Event | None = None) -> None:
        self.answer = answer
        self.hold = hold
        self.calls: list[tuple[str, Message, float | None]] = []
        self.cancelled = False

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return grpc.ChannelConnectivity.READY

    def unary_unary(self, path: str, **_: Any) -> Callable[..., Any]:
        async def call(request: Message, timeout: float | None = None, **__: Any) -> Message:
            self.calls.append((path, request, timeout))
            (reply,) = self.answer(request, timeout)
            return reply

        return call

    def unary_stream(self, path: str, **_: Any) -> Callable[..., FakeStream]:
        def call(request: Message, timeout: float | None = None, **__: Any) -> FakeStream:
            self.calls.append((path, request, timeout))
            return FakeStream(self.answer(request, timeout), self)

        return call

    async def close(self) -> None:
        pass


class FakeStore:
    """Just enough of ``Store`` for the registry."""

    def __init__(self, rows: Sequence[SlaveRow]) -> None:
        self.rows = list(rows)
        self.updates: list[tuple[int, int, str]] = []

    async def list_slaves(self) -> list[SlaveRow]:
        return self.rows

    async def update_slave(self, slave_id: int, status: int, methods: Any, reason: str) -> None:
        self.updates.append((slave_id, status, reason))


def catalog() -> Catalog:
    """The example slave's services, as discovery would hold them."""
    pool = descriptor_pool.DescriptorPool()
    proto = descriptor_pb2.FileDescriptorProto()
    pipeline_pb2.DESCRIPTOR.CopyToProto(proto)
    pool.Add(proto)
    return Catalog("v1", pool, (RUN, STREAM), b"")


async def fleet(
    *channels: FakeChannel, limits: Limits | None = None
) -> tuple[Executor, list[Slave]]:
    """An executor over live slaves, one per channel, offering RUN and STREAM."""
    rows = [
        SlaveRow(n + 1, "127.0.0.1", 7000 + n, STATUS_LIVE, (RUN, STREAM))
        for n in range(len(channels))
    ]
    by_address = {f"127.0.0.1:{7000 + n}": c for n, c in enumerate(channels)}
    registry = Registry(
        FakeStore(rows),  # type: ignore[arg-type]
        Prober(1, dial=lambda address: by_address[address]),  # type: ignore[arg-type,return-value]
    )
    await registry.load()
    slaves = list(registry.slaves())
    for slave in slaves:
        slave.pending, slave.catalog = False, catalog()
    scheduler = FirstLiveScheduler()
    queue = JobQueue(registry, scheduler, 30)
    return Executor(registry, scheduler, 5, limits, queue), slaves


class Seen:
    """What the executor told the job service: where it started and each message."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.messages: list[Message] = []
        self.got_one = asyncio.Event()

    def on_start(self, slave: str) -> None:
        self.started.append(slave)

    async def on_message(self, message: Message) -> None:
        self.messages.append(message)
        self.got_one.set()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_a_unary_job_reaches_the_slave_with_its_request_and_deadline() -> None:
    """The request is built from the parameters; the slave's call carries the timeout."""

    async def scenario() -> None:
        channel = FakeChannel(status("ok"))
        executor, (slave,) = await fleet(channel)
        seen = Seen()
        streaming = await executor.execute(
            JobInput(RUN, {"param": "x"}), 5.0, seen.on_start, seen.on_message
        )
        assert not streaming and seen.started == [slave.address]
        assert seen.messages == [pipeline_pb2.PipelineStatus(message="ok")]
        ((path, request, timeout),) = channel.calls
        assert path == "/MyPipeline/Run"
        assert (
            request.SerializeToString()
            == pipeline_pb2.MyPipelineConfig(param="x").SerializeToString()
        )
        assert timeout is not None and 0 < timeout <= 5.0
        assert slave.running == 0

    run(scenario())


def test_without_a_timeout_the_slaves_call_has_no_deadline() -> None:
    """None means no deadline on the slave's call, not a default one."""

    async def scenario() -> None:
        channel = FakeChannel(status("ok"))
        executor, _ = await fleet(channel)
        seen = Seen()
        await executor.execute(JobInput(RUN, {}), None, seen.on_start, seen.on_message)
        assert channel.calls[0][2] is None

    run(scenario())


def test_a_stream_is_handed_on_message_by_message_in_order() -> None:
    """A server-streaming method: every message, in order; execute says it streamed."""

    async def scenario() -> None:
        lines = [pipeline_pb2.LogLine(number=n) for n in range(1, 251)]
        channel = FakeChannel(lambda request, timeout: lines)
        executor, _ = await fleet(channel)
        seen = Seen()
        streaming = await executor.execute(
            JobInput(STREAM, {}, {"lines": 250}), None, seen.on_start, seen.on_message
        )
        assert streaming and seen.messages == lines
        sent = channel.calls[0][1].SerializeToString()
        assert sent == pipeline_pb2.LogsRequest(lines=250).SerializeToString()

    run(scenario())


def test_a_slave_refusing_as_full_never_ran_the_job_so_another_runs_it() -> None:
    """RESOURCE_EXHAUSTED with arko's capacity trailer: the job goes to the next slave."""

    async def scenario() -> None:
        full, free = FakeChannel(refuse_as_full), FakeChannel(status("ran"))
        executor, (first, second) = await fleet(full, free)
        seen = Seen()
        await executor.execute(JobInput(RUN, {}), 5.0, seen.on_start, seen.on_message)
        assert len(full.calls) == 1 and len(free.calls) == 1
        assert seen.started[-1] == second.address
        assert seen.messages == [pipeline_pb2.PipelineStatus(message="ran")]
        assert first.refused and first.live  # full, not down
        assert first.running == 0 and second.running == 0

    run(scenario())


def test_resource_exhausted_without_the_capacity_trailer_is_the_jobs_failure() -> None:
    """The method itself ran out of something: the job fails, it is not sent elsewhere."""

    async def scenario() -> None:
        def exhausted(request: Message, timeout: float | None) -> Sequence[Message]:
            raise rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "disk full")

        failing, other = FakeChannel(exhausted), FakeChannel(status("never"))
        executor, _ = await fleet(failing, other)
        seen = Seen()
        with pytest.raises(SlaveCallFailed) as caught:
            await executor.execute(JobInput(RUN, {}), 5.0, seen.on_start, seen.on_message)
        assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "disk full" in caught.value.message and not other.calls

    run(scenario())


def test_a_slaves_error_is_passed_on_with_its_code_and_secrets_scrubbed() -> None:
    """The slave's status code is the job's; a secret it echoes never reaches the caller."""

    async def scenario() -> None:
        def fails(request: Message, timeout: float | None) -> Sequence[Message]:
            raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "bad password hunter2")

        executor, _ = await fleet(FakeChannel(fails))
        seen = Seen()
        params = {"password": "hunter2"}
        job = JobInput(RUN, params, secrets=Secrets.of(params))
        with pytest.raises(SlaveCallFailed) as caught:
            await executor.execute(job, 5.0, seen.on_start, seen.on_message)
        assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert "hunter2" not in caught.value.message

    run(scenario())


def test_a_cancelled_job_cancels_the_slaves_stream_and_frees_its_place() -> None:
    """Cancelling execute() ends the call to the slave and gives its place back."""

    async def scenario() -> None:
        channel = FakeChannel(lambda r, t: [pipeline_pb2.LogLine(number=1)], asyncio.Event())
        executor, (slave,) = await fleet(channel)
        seen = Seen()
        task = asyncio.create_task(
            executor.execute(JobInput(STREAM, {}), None, seen.on_start, seen.on_message)
        )
        await seen.got_one.wait()
        assert slave.running == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert channel.cancelled and slave.running == 0

    run(scenario())


@pytest.mark.parametrize(
    ("job", "error"),
    [
        (JobInput("NoDot", {}), InvalidArgument),
        (JobInput(RUN, {"a": "1", "b": "2"}), TooLarge),
        (JobInput(RUN, {}, {"param": "x" * 100}), TooLarge),
    ],
)
def test_check_refuses_without_asking_a_slave(job: JobInput, error: type[Exception]) -> None:
    """A bad name or oversized parameters fail before any slave is called."""

    async def scenario() -> None:
        channel = FakeChannel(status("never"))
        executor, _ = await fleet(channel, limits=Limits(max_params=1, max_param_bytes=64))
        seen = Seen()
        with pytest.raises(error):
            await executor.execute(job, 5.0, seen.on_start, seen.on_message)
        assert not channel.calls and not seen.started

    run(scenario())
