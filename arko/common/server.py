"""Build a grpc.aio server the way both daemons need it.

Both serve ``grpc.health.v1`` and server reflection (listing health too, so
``grpcurl ... grpc.health.v1.Health/Check`` works without a proto file), and
both must fail loudly when their port is taken: gRPC turns SO_REUSEPORT on by
default, which would let two daemons share a port silently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from arko.common.errors import StartupError
from arko.common.tls import TlsConfig, is_loopback, server_credentials

log = structlog.get_logger("arko.server")

DEFAULT_MAX_MESSAGE = 4 * 1024 * 1024


@dataclass(slots=True)
class BuiltServer:
    """A bound, not yet started server and what its owner needs to drive it."""

    server: grpc.aio.Server
    port: int
    health: health.HealthServicer


def create_server(
    host: str,
    port: int,
    services: Sequence[tuple[str, Callable[[grpc.aio.Server], None]]],
    tls: TlsConfig | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    max_message_bytes: int = DEFAULT_MAX_MESSAGE,
) -> BuiltServer:
    """Create a server with health and reflection, bound to ``host:port``.

    Args:
        host: Address to listen on ("[::]" for all interfaces).
        port: TCP port; 0 picks a free one (returned in ``BuiltServer.port``).
        services: (full service name, function adding its servicer) pairs.
        tls: Serve TLS (mutual TLS when it has a CA) instead of plaintext.
        interceptors: Server interceptors, outermost first.
        max_message_bytes: Larger requests are refused with RESOURCE_EXHAUSTED.

    Raises:
        StartupError: the port is taken or the address cannot be bound.
    """
    options = [
        ("grpc.so_reuseport", 0),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]
    server = grpc.aio.server(options=options, interceptors=list(interceptors))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [name for name, _ in services]
    for _, add in services:
        add(server)
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    address = f"{host}:{port}"
    try:
        if tls is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, server_credentials(tls))
    except RuntimeError as exc:
        raise StartupError(f"cannot listen on {address}: port in use or address invalid") from exc
    if bound == 0:
        raise StartupError(f"cannot listen on {address}: port in use or address invalid")
    if tls is None and not is_loopback(host):
        log.warning(
            "plaintext_listener",
            address=f"{host}:{bound}",
            hint="anyone on the network can read and send calls; use --tls",
        )
    return BuiltServer(server=server, port=bound, health=health_servicer)
