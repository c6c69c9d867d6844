"""The original's example pipeline service, served through the plug-in path.

``Run`` echoes its password in the reply, exactly as the original demo did:
that is this example's own choice, not something arko does with secrets.
``MyPipelineLogs.Stream`` is arko's addition: a build log sent line by line,
so streamed jobs have something real to show.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import structlog

from arko.gen import pipeline_pb2, pipeline_pb2_grpc
from arko.slave.plugins import Service

if TYPE_CHECKING:
    from arko.slave.settings import SlaveSettings

log = structlog.get_logger("arko.slave.mypipeline")


class MyPipeline(pipeline_pb2_grpc.MyPipelineServicer):
    """``Run`` waits ``run_delay`` seconds (the original: 5); the others answer at once."""

    def __init__(self, run_delay: float) -> None:
        self._run_delay = run_delay

    async def Run(
        self, request: pipeline_pb2.MyPipelineConfig, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pipeline_pb2.PipelineStatus:
        await asyncio.sleep(self._run_delay)
        log.info("pipeline_run", param=request.param)
        return pipeline_pb2.PipelineStatus(
            message=f"job execution done with: {request.param} {request.password}"
        )

    async def DryRun(
        self, request: pipeline_pb2.MyPipelineConfig, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pipeline_pb2.PipelineStatus:
        return pipeline_pb2.PipelineStatus(message="job execution done")

    async def Rollback(
        self, request: pipeline_pb2.MyPipelineConfig, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pipeline_pb2.PipelineStatus:
        log.info("pipeline_rollback", param=request.param)
        return pipeline_pb2.PipelineStatus(message="job execution done")


class MyPipelineLogs(pipeline_pb2_grpc.MyPipelineLogsServicer):
    """``Stream`` sends ``lines`` numbered lines, ``interval`` seconds apart."""

    async def Stream(
        self, request: pipeline_pb2.LogsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pipeline_pb2.LogLine]:
        lines = request.lines or 10
        if lines < 0 or request.interval < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "lines and interval must be >= 0")
        log.info("logs_started", lines=lines)
        sent = 0
        try:
            for number in range(1, lines + 1):
                if request.interval:
                    await asyncio.sleep(request.interval)
                yield pipeline_pb2.LogLine(
                    number=number, text=f"{request.prefix}line {number} of {lines}"
                )
                sent = number
        finally:
            # A cancelled call ends the generator with CancelledError (while it
            # sleeps) or GeneratorExit (while gRPC holds it at a yield).
            if sent < lines:
                log.info("logs_cancelled", sent=sent)
        log.info("logs_done", lines=lines)


def plugin(settings: SlaveSettings) -> list[Service]:
    """Plug-in entry: ``--service arko.slave.mypipeline:plugin`` (the default)."""
    return [
        Service.of(
            pipeline_pb2.DESCRIPTOR,
            "MyPipeline",
            MyPipeline(settings.run_delay),
            pipeline_pb2_grpc.add_MyPipelineServicer_to_server,
        ),
        Service.of(
            pipeline_pb2.DESCRIPTOR,
            "MyPipelineLogs",
            MyPipelineLogs(),
            pipeline_pb2_grpc.add_MyPipelineLogsServicer_to_server,
        ),
    ]
