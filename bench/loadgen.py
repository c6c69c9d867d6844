"""The load generator: a separate process the bench drives, one command at a time.

Load must not come from the process that measures, nor share its interpreter
with a daemon under test, so ``python -m bench.loadgen`` reads one JSON command
per line on stdin and answers one JSON line on stdout (its own logs and any
library chatter go to stderr). gRPC load uses ``grpc.aio`` with a fixed number
of calls in flight; the Celery peer uses Celery's own client, one app kept (and
warmed) for the process's life, as a gRPC run keeps its channel. Every run stops
at ``count`` calls or ``max_seconds``, whichever comes first.

Commands (``op`` plus arguments):

- ``unary``: ``address``, ``target`` (``execute``: ``Execution/ExecuteJob`` of
  ``MyPipeline.DryRun``, on a master or the naive relay; ``direct``:
  ``MyPipeline/DryRun`` with the generated stub), ``count``, ``inflight``,
  ``max_seconds``, ``warmup``.
- ``register``: ``address``, ``slaves`` ([host, port] pairs), ``concurrency``,
  ``max_seconds``.
- ``celery``: ``redis_url``, ``count``, ``inflight``, ``max_seconds``, ``warmup``.
- ``quit``.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO

import grpc

from arko.gen import (
    execution_pb2,
    execution_pb2_grpc,
    pipeline_pb2,
    pipeline_pb2_grpc,
    register_pb2,
    register_pb2_grpc,
)
from bench.stats import latency_summary

METHOD = "MyPipeline.DryRun"
PARAMS = {"param": "bench"}
CALL_TIMEOUT = 30.0
# A run that fails this often is measuring an error path, not the system.
MAX_ERRORS = 100

Call = Callable[[], Awaitable[object]]


class TooManyErrors(RuntimeError):
    """The run hit ``MAX_ERRORS``; its first error says why."""


def _caller(channel: grpc.aio.Channel, target: str) -> Call:
    """The one call a run repeats, built once so the loop only awaits it."""
    if target == "direct":
        pipeline = pipeline_pb2_grpc.MyPipelineStub(channel)
        config = pipeline_pb2.MyPipelineConfig(**PARAMS)
        return lambda: pipeline.DryRun(config, timeout=CALL_TIMEOUT)
    if target == "execute":
        execution = execution_pb2_grpc.ExecutionStub(channel)
        job = execution_pb2.JobParams(method=METHOD, params=PARAMS)
        return lambda: execution.ExecuteJob(job, timeout=CALL_TIMEOUT)
    raise ValueError(f"unknown target {target!r}")


async def drive(
    call: Call, count: int, inflight: int, max_seconds: float, max_errors: int = MAX_ERRORS
) -> dict[str, Any]:
    """Keep ``inflight`` calls going until ``count`` are issued or time runs out.

    More than ``max_errors`` failures abort the run: it would time an error path.
    """
    latencies: list[int] = []
    errors: list[str] = []
    issued = 0
    deadline = time.perf_counter() + max_seconds

    async def worker() -> None:
        nonlocal issued
        while issued < count and time.perf_counter() < deadline:
            issued += 1
            start = time.perf_counter_ns()
            try:
                await call()
            except grpc.aio.AioRpcError as exc:
                errors.append(f"{exc.code().name}: {exc.details()}")
                if len(errors) >= max_errors:
                    raise TooManyErrors(errors[0]) from None
                continue
            latencies.append(time.perf_counter_ns() - start)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, min(inflight, count)))))
    summary = latency_summary(latencies, len(errors), time.perf_counter() - began)
    summary["first_error"] = errors[0] if errors else ""
    return summary


async def op_unary(
    address: str, target: str, count: int, inflight: int, max_seconds: float, warmup: int
) -> dict[str, Any]:
    """Time ``count`` DryRun jobs at ``inflight`` concurrency, after ``warmup`` untimed ones.

    ``address`` may name several servers (``ipv4:host:port,host:port``): calls
    are then spread over them round-robin, as a client of several masters does.
    """
    options = [("grpc.lb_policy_name", "round_robin")] if "," in address else []
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        call = _caller(channel, target)
        if warmup:
            await drive(call, warmup, inflight, max_seconds)
        return await drive(call, count, inflight, max_seconds)


async def op_register(
    address: str, slaves: list[list[Any]], concurrency: int, max_seconds: float
) -> dict[str, Any]:
    """Register every (host, port) with ``concurrency`` registrants working a shared queue.

    Failed registrations are part of the result (a master refusing under load
    is a finding), so they never abort the run.
    """
    queue = collections.deque((str(h), int(p)) for h, p in slaves)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = register_pb2_grpc.RegisterStub(channel)

        async def call() -> object:
            host, port = queue.popleft()  # drive() issues exactly len(slaves) calls
            return await stub.RegisterNewSlave(
                register_pb2.SlaveConfig(host=host, port=port), timeout=CALL_TIMEOUT
            )

        return await drive(call, len(slaves), concurrency, max_seconds, len(slaves) + 1)


class CeleryClients:
    """One Celery client per Redis URL for the load generator's life, used on one thread.

    The gRPC runs time calls on a channel their warm-up already connected; a
    Celery app built per run would open its broker and result-backend
    connections inside the timed window instead. So the app is built once and
    kept, and every run (warm-up included) goes through one thread: Celery
    keeps its result backend, and that backend's Redis connection, per thread.
    """

    def __init__(self) -> None:
        self._apps: dict[str, Any] = {}
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="celery-client")

    def app(self, redis_url: str) -> Any:
        """The client app for ``redis_url``, built on first use."""
        if redis_url not in self._apps:
            from bench.celery_app import make_app  # celery only where used

            self._apps[redis_url] = make_app(redis_url)
        return self._apps[redis_url]

    def close(self) -> None:
        """Close every app's connections, then the thread."""
        for app in self._apps.values():
            app.close()
        self._apps.clear()
        self.thread.shutdown(wait=True)


def _celery_run(app: Any, count: int, inflight: int, max_seconds: float) -> dict[str, Any]:
    """Sliding window of ``inflight`` tasks; each result is awaited oldest first.

    The solo worker runs tasks in arrival order, so waiting for the oldest
    never holds back a finished younger one for long.
    """
    from bench.celery_app import TASK_NAME

    latencies: list[int] = []
    errors: list[str] = []
    window: collections.deque[tuple[int, Any]] = collections.deque()
    issued = 0
    began = time.perf_counter()
    deadline = began + max_seconds
    while window or (issued < count and time.perf_counter() < deadline):
        while len(window) < inflight and issued < count and time.perf_counter() < deadline:
            window.append((time.perf_counter_ns(), app.send_task(TASK_NAME, args=["bench"])))
            issued += 1
        start, result = window.popleft()
        try:
            result.get(timeout=CALL_TIMEOUT)
        except Exception as exc:  # Celery raises the task's errors and its own
            errors.append(f"{type(exc).__name__}: {exc}")
            if len(errors) >= MAX_ERRORS:
                raise TooManyErrors(errors[0]) from None
            continue
        latencies.append(time.perf_counter_ns() - start)
    summary = latency_summary(latencies, len(errors), time.perf_counter() - began)
    summary["first_error"] = errors[0] if errors else ""
    return summary


async def op_celery(
    clients: CeleryClients,
    redis_url: str,
    count: int,
    inflight: int,
    max_seconds: float,
    warmup: int,
) -> dict[str, Any]:
    """Celery's client is blocking: run it on its own thread so this loop stays responsive.

    The warm-up runs on the same app and thread as the timed run, so the timed
    run finds its connections open, as the gRPC runs do.
    """
    loop = asyncio.get_running_loop()
    app = clients.app(redis_url)
    if warmup:
        await loop.run_in_executor(clients.thread, _celery_run, app, warmup, inflight, max_seconds)
    return await loop.run_in_executor(
        clients.thread, _celery_run, app, count, inflight, max_seconds
    )


async def serve(commands: TextIO, replies: TextIO) -> None:
    """Answer commands until ``quit`` or end of input."""
    clients = CeleryClients()
    ops: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
        "unary": op_unary,
        "register": op_register,
        "celery": functools.partial(op_celery, clients),
    }
    try:
        while True:
            line = await asyncio.to_thread(commands.readline)
            if not line or not line.strip():
                return
            command = json.loads(line)
            op = command.pop("op")
            if op == "quit":
                return
            try:
                reply = {"ok": True, "result": await ops[op](**command)}
            except Exception as exc:  # the bench gets any failure back as data
                reply = {"ok": False, "error": f"{op}: {type(exc).__name__}: {exc}"}
            replies.write(json.dumps(reply) + "\n")
            replies.flush()
    finally:
        clients.close()


def main() -> None:
    """Keep the real stdout for replies; send everything else printed to stderr."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    asyncio.run(serve(sys.stdin, replies))


if __name__ == "__main__":
    main()
