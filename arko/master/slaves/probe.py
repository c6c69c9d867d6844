"""Probing slaves: what the master asks a slave, and the sweep that asks them all.

:class:`Prober` makes the calls: the health check, the ``arko.v1.Slave/Status``
read (capacity, labels, version), the discovery refresh, and the two
questions registration asks. It returns what it found and keeps no state of
any slave, so the registry alone decides what a finding means for its records.
:class:`Pinger` is the ping loop: every interval it has the registry probe
each slave this master pings, then forget the long-dead ones.

Slaves without the Status service (the original Go slave, any gRPC server
with reflection) answer UNIMPLEMENTED: they get no limit and no labels, and
work exactly as before; slaves without a health service are judged by
reflection alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from arko.master.slaves.discovery import Catalog, Catalogs, DiscoveryError, discover
from arko.master.slaves.slave import Dialer, Slave, plaintext
from arko.v1 import slave_pb2, slave_pb2_grpc

log = structlog.get_logger("arko.master.slaves.probe")

Metadata = tuple[tuple[str, str], ...]
NOT_SERVING = "health check answers NOT_SERVING"
UNREACHABLE = "not reachable as a gRPC slave (the master's log says why)"


def shown_reason(detail: str | None) -> str | None:
    """What callers of Admin/ListSlaves learn of why a slave is down.

    The probe's own words tell a closed port from a silent one and from a
    server that does not speak gRPC: anyone allowed to register could scan
    ports with them. Callers get one reason; the master's log has the detail.
    """
    if detail is None or detail == NOT_SERVING:
        return detail
    return UNREACHABLE


@dataclass(frozen=True, slots=True)
class Finding:
    """What one probe found on a slave.

    Attributes:
        detail: why the slave cannot take jobs, in the probe's own words
            (None when it is healthy and its catalog fresh).
        code: the slave's own status code when it refused with one.
        catalog: the descriptors read; None unless healthy.
        status: what ``arko.v1.Slave/Status`` reported; None without that service.
        catalog_lost: reflection failed, so the catalog known before no longer holds.
    """

    detail: str | None = None
    code: grpc.StatusCode | None = None
    catalog: Catalog | None = None
    status: slave_pb2.SlaveStatus | None = None
    catalog_lost: bool = False


async def read_status(
    channel: grpc.aio.Channel, timeout: float, metadata: Metadata
) -> slave_pb2.SlaveStatus | None:
    """The slave's status, or None when it does not serve the common service.

    Raises:
        grpc.aio.AioRpcError: any other failure (the probe judges the slave by it).
    """
    try:
        reply: slave_pb2.SlaveStatus = await slave_pb2_grpc.SlaveStub(channel).Status(
            slave_pb2.StatusRequest(), timeout=timeout, metadata=metadata
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
            return None
        raise
    return reply


def apply_status(slave: Slave, status: slave_pb2.SlaveStatus | None) -> None:
    """Copy what the slave reported onto the master's view of it.

    ``running`` stays the master's own count (what it sent there); a fresh
    report replaces a refusal, since the slave now says how much room it has
    (all of it may be taken by another master's jobs).
    """
    if status is None:
        slave.capacity, slave.labels, slave.version = 0, {}, ""
        slave.refused = False
    else:
        slave.capacity = status.capacity
        slave.labels = dict(status.labels)
        slave.version = status.version
        slave.refused = 0 < status.capacity <= status.running


class Prober:
    """The calls the master makes to judge a slave, each bounded by ``timeout`` seconds.

    What it reads of one slave it keeps nowhere; only the catalogs are
    shared, so slaves serving the same files hold one between them.
    """

    def __init__(self, timeout: float, dial: Dialer = plaintext) -> None:
        self.timeout = timeout
        self.dial = dial  # every channel to a slave, the slaves' own included
        self._catalogs = Catalogs()

    async def check(self, slave: Slave) -> Finding:
        """Check health, read the status and refresh the catalog, on the slave's channel."""
        try:
            async with asyncio.timeout(self.timeout):
                with slave.lease(probe=True) as channel:
                    serving = await self._health(slave, channel)
                    if serving is False:
                        return Finding(NOT_SERVING)
                    # Status first: a slave refusing this master says so
                    # plainly on a unary call, while a refused reflection
                    # stream may reach an asyncio client as INTERNAL
                    # (grpc/grpc#36066), which reads as a broken slave.
                    status = await read_status(channel, self.timeout, slave.metadata)
                    known = slave.catalog
                    hint = known.protocol if known else None
                    catalog = await discover(
                        channel, self.timeout, hint, slave.metadata, known, self._catalogs
                    )
        except TimeoutError:
            return Finding(f"no answer within {self.timeout:g}s")
        except grpc.aio.AioRpcError as exc:
            return Finding(f"{exc.code().name}: {exc.details()}", exc.code())
        except DiscoveryError as exc:
            return Finding(f"reflection failed: {exc.message}", catalog_lost=True)
        # The same catalog object when nothing changed.
        return Finding(catalog=catalog, status=status)

    async def _health(self, slave: Slave, channel: grpc.aio.Channel) -> bool | None:
        """True/False from ``grpc.health.v1``; None when the slave has no health service."""
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(), timeout=self.timeout, metadata=slave.metadata
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return None  # e.g. the original Go slave: judge by reflection alone
            raise
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def confirms(self, address: str, proof: str) -> str | None:
        """None when the slave at ``address`` sent registration nonce ``proof``, else why not."""
        channel = self.dial(address)
        try:
            reply = await slave_pb2_grpc.SlaveStub(channel).ConfirmRegistration(
                slave_pb2.ConfirmRegistrationRequest(nonce=proof), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as exc:
            return f"{exc.code().name}: {exc.details()}"
        finally:
            await channel.close()
        return None if reply.confirmed else "it sent no registration with this nonce"

    async def answers(self, slave: Slave) -> bool:
        """Whether ``slave`` still takes calls made with the call secret it has now."""
        try:
            async with asyncio.timeout(self.timeout):
                with slave.lease(probe=True) as channel:
                    await read_status(channel, self.timeout, slave.metadata)
        except (TimeoutError, grpc.aio.AioRpcError):
            return False
        return True


class Probed(Protocol):
    """What the ping loop needs of the registry: its slaves, a probe, and forgetting."""

    def slaves(self) -> Sequence[Slave]:
        """All slaves, in registration order."""
        ...

    async def probe(self, slave: Slave) -> None:
        """Probe ``slave`` and record what was found."""
        ...

    async def forget_long_down(self) -> None:
        """Drop the slaves down for too long."""
        ...


class Pinger:
    """The ping loop: every ``interval`` seconds, probe each slave this master pings.

    At most ``max_concurrent`` probes wait or run at once: that bounds the
    channels a sweep holds (memory at fleet scale); refused ports answer at
    once, so only hanging slaves queue behind it.
    """

    def __init__(self, registry: Probed, interval: float, max_concurrent: int = 500) -> None:
        self._registry = registry
        self._interval = interval
        self._slots = asyncio.Semaphore(max_concurrent)

    async def run(self) -> None:
        """Sweep, then sleep the interval, until cancelled."""
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # the database is away: the next sweep tries again
                log.warning("ping_sweep_failed", error=str(exc))
            await asyncio.sleep(self._interval)

    async def sweep(self) -> None:
        """Probe every slave concurrently, then forget the long-dead ones.

        The sweep takes about one probe timeout.
        """
        started, cpu = time.monotonic(), time.process_time()
        slaves = [s for s in self._registry.slaves() if s.owned]
        await asyncio.gather(*(self._bounded_probe(s) for s in slaves))
        await self._registry.forget_long_down()
        log.debug(
            "ping_sweep_done",
            slaves=len(slaves),
            live=sum(s.live for s in slaves),
            seconds=round(time.monotonic() - started, 4),
            cpu_seconds=round(time.process_time() - cpu, 4),
        )

    async def _bounded_probe(self, slave: Slave) -> None:
        async with self._slots:
            await self._registry.probe(slave)
