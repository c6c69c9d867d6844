"""The floor of any one-hop design: a bare relay with generated stubs.

``Execution/ExecuteJob`` straight to ``MyPipeline/DryRun`` over one cached
channel, with nothing else: no scheduling, no dynamic messages, no records, no
reply rendering. The issue's targets were set against this kind of relay, so
the bench measures it beside the master in the same run.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from arko.gen import execution_pb2, execution_pb2_grpc, pipeline_pb2, pipeline_pb2_grpc
from bench.serving import relay_flags, serve_execution


class BareRelay(execution_pb2_grpc.ExecutionServicer):
    """Relays every job to one slave's ``MyPipeline/DryRun``."""

    def __init__(self, stub: pipeline_pb2_grpc.MyPipelineStub) -> None:
        self._stub = stub

    async def ExecuteJob(
        self, request: execution_pb2.JobParams, context: grpc.aio.ServicerContext[Any, Any]
    ) -> execution_pb2.JobStatus:
        reply = await self._stub.DryRun(
            pipeline_pb2.MyPipelineConfig(param=request.params.get("param", ""))
        )
        return execution_pb2.JobStatus(message=reply.message)


async def serve(host: str, port: int, slave: str) -> None:
    """Serve the relay until SIGTERM or SIGINT."""
    async with grpc.aio.insecure_channel(slave) as channel:
        servicer = BareRelay(pipeline_pb2_grpc.MyPipelineStub(channel))
        await serve_execution(host, port, servicer)


def main(argv: list[str] | None = None) -> None:
    """Parse flags and serve."""
    args = relay_flags("python -m bench.relay", __doc__).parse_args(argv)
    asyncio.run(serve(args.listen_host, args.port, args.slave))


if __name__ == "__main__":
    main()
