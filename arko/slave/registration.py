"""Registering the slave with its masters, and again whenever one comes back.

After registering, the slave watches the master's health (``Health.Watch`` on
the ``Register`` service). The stream ends when the master stops, crashes or
drains, and the slave then registers again with capped, jittered backoff, so
a restarted master (even one that lost its database) gets its fleet back.

With several masters (``--master a,b,c``) each has a loop of its own, so one
master going away, or refusing the slave, leaves the others alone.
"""

from __future__ import annotations

import asyncio
import collections
import secrets
from collections.abc import Awaitable, Sequence
from typing import NamedTuple, Protocol

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from arko.common.auth import call_secret
from arko.common.retry import Backoff, retry
from arko.common.tls import TlsConfig, open_channel
from arko.gen import register_pb2, register_pb2_grpc

log = structlog.get_logger("arko.slave.registration")

# Codes after which trying again can help: the master is away or busy.
# CANCELLED is what a master that stops in the middle of the call answers (its
# server cancels the calls in flight); this slave's own stop raises
# asyncio.CancelledError instead, so it never reads as a master's answer.
_RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
    }
)


class CallSecret(NamedTuple):
    """What a master must present on each call to this slave, and the nonce it comes from."""

    secret: str
    nonce: str


def new_call_secret(join_token: str | None) -> CallSecret:
    """A fresh call secret for one run of the slave.

    With a join token the secret is derived from it and a random nonce, so
    every master holding the token can call this slave, including masters it
    never registered with, while the shared database keeps only the nonce.
    Without one it is plain random, known only to the masters it registers with.
    """
    if join_token:
        nonce = secrets.token_urlsafe(16)
        return CallSecret(call_secret(join_token, nonce), nonce)
    return CallSecret(secrets.token_urlsafe(32), "")


class MasterLink(Protocol):
    """The slave's view of one master."""

    address: str

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


class RegistrationNonces:
    """The nonces of this slave's latest registrations, so it can confirm them.

    A master takes a registration only after calling the named address back
    and hearing that the slave there sent it: anyone can name a slave's
    address, only the slave knows what it sent. Bounded: a master calls back
    within one registration, and few are ever in flight.
    """

    def __init__(self, kept: int = 64) -> None:
        self._sent: collections.deque[str] = collections.deque(maxlen=kept)

    def stamped(self, config: register_pb2.SlaveConfig) -> register_pb2.SlaveConfig:
        """A copy of ``config`` carrying a fresh nonce, remembered for the call back."""
        nonce = secrets.token_urlsafe(16)
        self._sent.append(nonce)
        attempt = register_pb2.SlaveConfig()
        attempt.CopyFrom(config)
        attempt.registration_nonce = nonce
        return attempt

    def confirm(self, nonce: str) -> bool:
        """True when this slave sent a registration with ``nonce`` (compared in constant time)."""
        return bool(nonce) and any(secrets.compare_digest(nonce, sent) for sent in self._sent)


async def register_until_done(
    link: MasterLink,
    config: register_pb2.SlaveConfig,
    backoff: Backoff,
    nonces: RegistrationNonces | None = None,
) -> str:
    """Register, retrying transient failures with backoff; return the master's answer.

    With ``nonces``, each attempt carries a fresh registration nonce.

    Raises:
        grpc.aio.AioRpcError: the master refused the registration (bad config).
    """

    def on_retry(exc: BaseException, delay: float) -> None:
        code = exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else type(exc).__name__
        log.warning("register_retry", master=link.address, code=code, retry_in=round(delay, 2))

    def attempt() -> Awaitable[str]:
        return link.register(nonces.stamped(config) if nonces is not None else config)

    answer = await retry(attempt, _retryable, backoff, on_retry)
    log.info(
        "registered",
        master=link.address,
        host=config.host or "(from connection)",
        port=config.port,
        answer=answer,
    )
    return answer


async def stay_registered(
    link: MasterLink,
    config: register_pb2.SlaveConfig,
    backoff: Backoff,
    nonces: RegistrationNonces | None = None,
) -> None:
    """Register, watch the master, and register again each time it is lost; forever.

    Raises:
        grpc.aio.AioRpcError: the master refused the registration (bad config).
    """
    while True:
        await register_until_done(link, config, backoff, nonces)
        reason = await link.watch()
        log.warning("master_lost", master=link.address, reason=reason)


async def stay_registered_with_all(
    links: Sequence[MasterLink],
    config: register_pb2.SlaveConfig,
    backoff: Backoff,
    nonces: RegistrationNonces | None = None,
) -> None:
    """Stay registered with every master, each on its own; return once all have refused.

    A refusal (a wrong join token, a bad address) is final for that master:
    it is logged as ``register_refused`` and the others carry on. Only when
    every master has refused is there nothing left to do.
    """

    async def with_one(link: MasterLink) -> None:
        try:
            await stay_registered(link, config, backoff, nonces)
        except grpc.aio.AioRpcError as exc:
            log.error(
                "register_refused",
                master=link.address,
                code=exc.code().name,
                reason=exc.details(),
                masters=len(links),
            )

    async with asyncio.TaskGroup() as group:
        for link in links:
            group.create_task(with_one(link), name=f"register with {link.address}")
