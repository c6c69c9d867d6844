"""The original's example pipeline service, served through the plug-in path.

``Run`` echoes its password in the reply, exactly as the original demo did:
that is this example's own choice, not something arko does with secrets.
"""

from __future__ import annotations

import asyncio
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


def plugin(settings: SlaveSettings) -> list[Service]:
    """Plug-in entry: ``--service arko.slave.mypipeline:plugin`` (the default)."""
    servicer = MyPipeline(settings.run_delay)
    return [
        Service.of(
            pipeline_pb2.DESCRIPTOR,
            "MyPipeline",
            servicer,
            pipeline_pb2_grpc.add_MyPipelineServicer_to_server,
        )
    ]
