"""Registering the slave with its master, and again whenever the master comes back.

After registering, the slave watches the master's health (``Health.Watch`` on
the ``Register`` service). The stream ends when the master stops, crashes or
drains, and the slave then registers again with capped, jittered backoff, so
a restarted master (even one that lost its database) gets its fleet back.
"""

from __future__ import annotations

from typing import Protocol

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from arko.common.retry import Backoff, retry
from arko.common.tls import TlsConfig, open_channel
from arko.gen import register_pb2, register_pb2_grpc

log = structlog.get_logger("arko.slave.registration")

# Codes after which trying again can help: the master is away or busy.
_RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
    }
)


class MasterLink(Protocol):
    """The slave's view of its master."""

    async def register(self, config: register_pb2.SlaveConfig) -> str:
        """Register once; return the master's answer."""
        ...

    async def watch(self) -> str:
        """Wait while the master is up and serving; return why it no longer is."""
        ...


class GrpcMasterLink:
    """``MasterLink`` over a gRPC channel to the master."""

    def __init__(self, address: str, timeout: float, tls: TlsConfig | None = None) -> None:
        self._channel = open_channel(address, tls)
        self._stub = register_pb2_grpc.RegisterStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._timeout = timeout
        self.address = address

    async def register(self, config: register_pb2.SlaveConfig) -> str:
        reply = await self._stub.RegisterNewSlave(config, timeout=self._timeout)
        return str(reply.message)

    async def watch(self) -> str:
        call = self._health.Watch(health_pb2.HealthCheckRequest(service=REGISTER_SERVICE))
        try:
            async for reply in call:
                if reply.status != health_pb2.HealthCheckResponse.SERVING:
                    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                    return f"master reports {status}"
        except grpc.aio.AioRpcError as exc:
            return f"{exc.code().name}: {exc.details()}"
        finally:
            # End the stream ourselves: a draining master waits for open calls.
            call.cancel()
        return "master ended the health stream"

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()


REGISTER_SERVICE = register_pb2.DESCRIPTOR.services_by_name["Register"].full_name


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in _RETRYABLE


async def register_until_done(
    link: MasterLink, config: register_pb2.SlaveConfig, backoff: Backoff
) -> str:
    """Register, retrying transient failures with backoff; return the master's answer.

    Raises:
        grpc.aio.AioRpcError: the master refused the registration (bad config).
    """

    def on_retry(exc: BaseException, delay: float) -> None:
        code = exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else type(exc).__name__
        log.warning("register_retry", code=code, retry_in=round(delay, 2))

    answer = await retry(lambda: link.register(config), _retryable, backoff, on_retry)
    log.info("registered", host=config.host or "(from connection)", port=config.port, answer=answer)
    return answer


async def stay_registered(
    link: MasterLink, config: register_pb2.SlaveConfig, backoff: Backoff
) -> None:
    """Register, watch the master, and register again each time it is lost; forever.

    Raises:
        grpc.aio.AioRpcError: the master refused the registration (bad config).
    """
    while True:
        await register_until_done(link, config, backoff)
        reason = await link.watch()
        log.warning("master_lost", reason=reason)
