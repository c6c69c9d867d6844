"""The executor in-process against a real slave server: channel races and the safety net.

These drive ``Registry`` and ``Executor`` directly (no master process), with a
real grpc.aio slave server on a loopback port, so a race can be staged step by
step instead of hoped for under load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from structlog.testing import capture_logs

from arko.common.errors import InternalError
from arko.common.server import BuiltServer, create_server
from arko.gen import pipeline_pb2, pipeline_pb2_grpc
from arko.master.jobs.executor import Executor
from arko.master.jobs.live import LiveJobs
from arko.master.jobs.records import JobRecorder
from arko.master.jobs.scheduler import FirstLiveScheduler
from arko.master.jobs.service import JobService, Submission
from arko.master.slaves.probe import Prober
from arko.master.slaves.registry import Registry
from arko.master.slaves.slave import Slave
from arko.master.store.sql import DatabaseStore, open_store
from arko.slave.mypipeline import MyPipeline
from arko.testing import LOOPBACK, free_port

C = TypeVar("C")


async def _serve(port: int) -> BuiltServer:
    """A slave's gRPC surface (MyPipeline, health, reflection) on ``port``."""
    servicer = MyPipeline(run_delay=0)
    built = create_server(
        LOOPBACK,
        port,
        [
            (
                pipeline_pb2.DESCRIPTOR.services_by_name["MyPipeline"].full_name,
                lambda srv: pipeline_pb2_grpc.add_MyPipelineServicer_to_server(servicer, srv),
            )
        ],
    )
    await built.server.start()
    return built


class Parts:
    """A registry, recorder, executor and job service on a real store (the pass's database)."""

    def __init__(self, store: DatabaseStore, tmp: Path, scheduler: Any) -> None:
        self.store = store
        self.registry = Registry(store, Prober(2))
        live = LiveJobs()
        self.recorder = JobRecorder(store, tmp / "journal", on_saved=live.saved)
        executor = Executor(self.registry, scheduler, connect_timeout=5)
        self.jobs = JobService(executor, self.recorder, store, live, 1 << 20, 60)
        self.job_id = ""

    async def run(self, method: str) -> tuple[str, str, str]:
        """Run a job with no parameters: (its id, its state, the reply's JSON)."""
        job = self.jobs.submit(Submission(method, timeout=10))
        try:
            outcome = await job.run()
        finally:
            self.job_id = job.id
        return job.id, job.live.job.state, outcome.messages[0].SerializeToString().decode()


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_job_waiting_to_connect_survives_the_slave_registering_again(
    tmp_path: Path, master_db: str
) -> None:
    """The slave restarts while a job waits for its channel: the job runs, never UNKNOWN.

    Registering again retires the slave's channel; a job still waiting on that
    channel must neither find it closed under it nor be lost.
    """

    async def scenario() -> None:
        store = await open_store(master_db)
        parts = Parts(store, tmp_path, FirstLiveScheduler())
        await parts.recorder.recover()
        port = free_port()
        server = await _serve(port)
        try:
            await parts.registry.register(LOOPBACK, port)
            await server.server.stop(0)  # the slave dies; the master has not noticed
            waiting = asyncio.Event()
            original = Slave.ensure_connected

            async def spy(self: Slave, *args: Any) -> bool:
                waiting.set()
                return await original(self, *args)

            Slave.ensure_connected = spy  # type: ignore[method-assign]
            try:
                run = asyncio.create_task(parts.run("MyPipeline.DryRun"))
                await asyncio.wait_for(waiting.wait(), 5)
                server = await _serve(port)  # it comes back on its port ...
                await parts.registry.register(LOOPBACK, port)  # ... and registers again
                _, state, reply = await asyncio.wait_for(run, 15)
            finally:
                Slave.ensure_connected = original  # type: ignore[method-assign]
            assert "job execution done" in reply
            assert state == "succeeded"
        finally:
            await server.server.stop(0)
            await parts.registry.close()
            await parts.recorder.close()
            await store.close()

    _run(scenario())


class ExplodingScheduler:
    """A scheduler with a bug: the kind of plug-in the safety net is for."""

    def pick(self, method: str, slaves: Sequence[C]) -> C:
        raise RuntimeError("scheduler bug")


def test_an_unexpected_exception_is_recorded_and_answered_internal(
    tmp_path: Path, master_db: str
) -> None:
    """A bug in the job path: INTERNAL naming the exception, a failed record, one traceback."""

    async def scenario() -> None:
        store = await open_store(master_db)
        parts = Parts(store, tmp_path, ExplodingScheduler())
        await parts.recorder.recover()
        port = free_port()
        server = await _serve(port)
        try:
            await parts.registry.register(LOOPBACK, port)
            with capture_logs() as logs, pytest.raises(InternalError) as err:
                await parts.run("MyPipeline.DryRun")
            assert "RuntimeError: scheduler bug" in err.value.message
            await parts.recorder.flush()
            row = await store.get_job(parts.job_id)
            assert row is not None
            assert (row.state, row.error_code) == ("failed", "INTERNAL")
            assert "RuntimeError: scheduler bug" in row.error
            crashed = [e for e in logs if e["event"] == "job_crashed"]
            assert len(crashed) == 1 and crashed[0].get("exc_info")
            finished = [e for e in logs if e["event"] == "job_finished"]
            assert [(e["state"], e["code"]) for e in finished] == [("failed", "INTERNAL")]
        finally:
            await server.server.stop(0)
            await parts.registry.close()
            await parts.recorder.close()
            await store.close()

    _run(scenario())
