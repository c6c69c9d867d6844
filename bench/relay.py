"""The floor of any one-hop design: a bare relay with generated stubs.

``Execution/ExecuteJob`` straight to ``MyPipeline/DryRun`` over one cached
channel, with nothing else: no scheduling, no dynamic messages, no records, no
reply rendering. The issue's targets were set against this kind of relay, so
the bench measures it beside the master in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from arko.common.server import create_server
from arko.gen import execution_pb2, execution_pb2_grpc, pipeline_pb2, pipeline_pb2_grpc


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
    channel = grpc.aio.insecure_channel(slave)
    servicer = BareRelay(pipeline_pb2_grpc.MyPipelineStub(channel))
    name = execution_pb2.DESCRIPTOR.services_by_name["Execution"].full_name
    built = create_server(
        host,
        port,
        [(name, lambda srv: execution_pb2_grpc.add_ExecutionServicer_to_server(servicer, srv))],
    )
    await built.server.start()
    await built.health.set("", health_pb2.HealthCheckResponse.SERVING)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await built.server.stop(1.0)
    await channel.close()


def main(argv: list[str] | None = None) -> None:
    """Parse flags and serve."""
    parser = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--listen_host", default="127.0.0.1")
    parser.add_argument("--slave", required=True, help="host:port of the slave to relay to")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.listen_host, args.port, args.slave))


if __name__ == "__main__":
    main()
