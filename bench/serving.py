"""Serve an ``Execution`` servicer as a stand-alone process, for the bench's relays."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable, Sequence

import grpc
from grpc_health.v1 import health_pb2

from arko.common.server import create_server
from arko.gen import execution_pb2, execution_pb2_grpc


async def serve_until_signalled(
    host: str, port: int, services: Sequence[tuple[str, Callable[[grpc.aio.Server], None]]]
) -> None:
    """Serve ``services`` (with health and reflection) until SIGTERM or SIGINT."""
    built = create_server(host, port, services)
    await built.server.start()
    await built.health.set("", health_pb2.HealthCheckResponse.SERVING)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await built.server.stop(1.0)


async def serve_execution(
    host: str, port: int, servicer: execution_pb2_grpc.ExecutionServicer
) -> None:
    """Serve ``servicer`` (with health and reflection) until SIGTERM or SIGINT."""
    name = execution_pb2.DESCRIPTOR.services_by_name["Execution"].full_name
    await serve_until_signalled(
        host,
        port,
        [(name, lambda srv: execution_pb2_grpc.add_ExecutionServicer_to_server(servicer, srv))],
    )


def relay_flags(prog: str, description: str | None) -> argparse.ArgumentParser:
    """The flags every relay takes: where to listen and which slave to relay to."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--listen_host", default="127.0.0.1")
    parser.add_argument("--slave", required=True, help="host:port of the slave to relay to")
    return parser
