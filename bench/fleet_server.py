"""Many slave addresses from one process: ``python -m bench.fleet_server --ports N``.

A fleet-scale ping sweep needs a thousand slaves, but a thousand slave
processes would not fit on a 2-core machine. One grpc.aio server can listen on
many ports, and to the master each port is a slave: it answers health,
reflection and ``MyPipeline`` exactly like ``arko-slave`` (same servicer, same
``create_server``). Once bound, it prints one JSON line
``{"event": "fleet_serving", "ports": [...]}`` so the bench (through
``arko.testing.Daemon.wait_for_event``) learns the ports. SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from grpc_health.v1 import health_pb2

from arko.common.server import create_server
from arko.gen import pipeline_pb2, pipeline_pb2_grpc
from arko.slave.mypipeline import MyPipeline
from arko.slave.plugins import Service

READY_EVENT = "fleet_serving"


async def serve(host: str, count: int, grace: float) -> None:
    """Listen on ``count`` fresh ports of ``host`` until SIGTERM or SIGINT."""
    service = Service.of(
        pipeline_pb2.DESCRIPTOR,
        "MyPipeline",
        MyPipeline(run_delay=0.0),
        pipeline_pb2_grpc.add_MyPipelineServicer_to_server,
    )
    built = create_server(host, 0, [(service.name, service.add)])
    # Port 0 each time: the kernel hands out distinct ports, with no race
    # against other processes picking "free" ports.
    ports = [built.port]
    for _ in range(count - 1):
        port = built.server.add_insecure_port(f"{host}:0")
        if port == 0:
            raise SystemExit(f"fleet_server: could not bind port {len(ports) + 1} of {count}")
        ports.append(port)
    await built.server.start()
    await built.health.set("", health_pb2.HealthCheckResponse.SERVING)
    await built.health.set(service.name, health_pb2.HealthCheckResponse.SERVING)
    print(json.dumps({"event": READY_EVENT, "ports": ports}), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await built.health.enter_graceful_shutdown()
    await built.server.stop(grace)


def main(argv: list[str] | None = None) -> None:
    """Parse flags and serve."""
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_server", description=__doc__)
    parser.add_argument("--ports", type=int, required=True, help="how many ports to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--grace", type=float, default=1.0, help="seconds to finish calls on stop")
    args = parser.parse_args(argv)
    if args.ports < 1:
        parser.error("--ports must be at least 1")
    asyncio.run(serve(args.host, args.ports, args.grace))
    sys.exit(0)


if __name__ == "__main__":
    main()
