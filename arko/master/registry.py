"""The master's list of slaves: registration, probing and the ping loop.

Memory holds the truth the scheduler reads (no database on the job path); the
store is written whenever a slave's liveness or methods change, so a restarted
master knows every slave it knew. A slave down for longer than
``forget_after`` is forgotten at the end of a ping sweep; should it come back,
it registers again like a new one.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime as dt
import ipaddress
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from arko.common.errors import ArkoError, InvalidArgument
from arko.common.methods import method_not_found
from arko.master.discovery import DiscoveryError, discover
from arko.master.slave_status import apply_status, read_status
from arko.master.slaves import Dialer, Slave, plaintext
from arko.master.store import STATUS_DOWN, STATUS_LIVE, Store, now

if TYPE_CHECKING:
    from arko.master.metrics import MasterMetrics

log = structlog.get_logger("arko.master.registry")

MAX_SECRET = 256
FLEET_LOG_LIMIT = 100
_REFUSED = grpc.StatusCode.UNAUTHENTICATED
_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class SlaveNotFound(ArkoError):
    """No registered slave has the address asked for."""

    code = grpc.StatusCode.NOT_FOUND


def validate_address(host: str, port: int) -> str:
    """Check a slave's advertised address and return the host in canonical form.

    Raises:
        InvalidArgument: naming the field that is wrong.
    """
    if not 1 <= port <= 65535:
        raise InvalidArgument(f"port {port} is out of range 1-65535")
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise InvalidArgument("host is empty")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    # An all-numeric name ("1.2.3.999") is a mistyped IP address, not a hostname.
    if len(host) > 253 or labels[-1].isdigit() or not all(_HOSTNAME_LABEL.match(p) for p in labels):
        raise InvalidArgument(f"host {host[:64]!r} is neither an IP address nor a hostname")
    return host.lower()


class Registry:
    """Registered slaves, in registration order, kept in step with the store.

    Jobs read two in-memory structures and never the database: the slaves in
    registration order, and an index from method to the slaves offering it
    (also in registration order), updated whenever a slave's methods change.
    """

    def __init__(
        self,
        store: Store,
        probe_timeout: float,
        dial: Dialer = plaintext,
        max_concurrent_probes: int = 500,
        forget_after: float = 0,
    ) -> None:
        self._store = store
        self._forget_after = forget_after  # seconds down before a slave is dropped; 0: never
        self._probe_timeout = probe_timeout
        self._dial = dial
        self._slaves: dict[tuple[str, int], Slave] = {}
        self._ordered: list[Slave] = []
        self._by_method: dict[str, list[Slave]] = {}
        # Bounds the channels a sweep holds at once (memory at fleet scale);
        # refused ports answer at once, so only hanging slaves queue behind it.
        self._probe_slots = asyncio.Semaphore(max_concurrent_probes)
        self._changed = asyncio.Event()
        # Told whenever a slave may have changed (the job queue serves its waiters).
        self.on_change: Callable[[], None] | None = None

        self.metrics: MasterMetrics | None = None  # set by the daemon when metrics are on

    async def load(self) -> None:
        """Restore every stored slave; the first ping decides who is live."""
        for row in await self._store.list_slaves():
            self._add(Slave.from_row(row, self._dial))
        log.info("slaves_loaded", count=len(self._slaves))

    def _add(self, slave: Slave) -> None:
        self._slaves[(slave.host, slave.port)] = slave
        self._ordered.append(slave)  # ids grow with registration, so order holds
        self._index(slave, (), slave.methods)

    def _index(self, slave: Slave, old: tuple[str, ...], new: tuple[str, ...]) -> None:
        for method in set(old) - set(new):
            self._by_method[method].remove(slave)
            if not self._by_method[method]:
                del self._by_method[method]
        for method in set(new) - set(old):
            offering = self._by_method.setdefault(method, [])
            bisect.insort(offering, slave, key=lambda s: s.id)

    def _set_methods(self, slave: Slave, methods: tuple[str, ...]) -> None:
        if methods != slave.methods:
            self._index(slave, slave.methods, methods)
            slave.methods = methods

    def slaves(self) -> Sequence[Slave]:
        """All slaves in registration order (read-only)."""
        return self._ordered

    def offering(self, method: str) -> Sequence[Slave]:
        """Slaves, live or not, whose method list has ``method``, in registration order.

        Raises:
            MethodNotFound: no slave has it; the message suggests the closest
                methods the fleet does have (only the registry knows them all).
        """
        found = self._by_method.get(method)
        if not found:
            raise method_not_found(method, self._by_method)
        return found

    async def register(self, host: str, port: int, secret: str = "") -> Slave:
        """Store the slave (one row per host:port) and discover its methods now.

        A slave that cannot be reached is kept with status 0; the reason is logged.
        ``secret`` is what the master must present on calls to it.
        """
        host = validate_address(host, port)
        if len(secret) > MAX_SECRET:
            raise InvalidArgument(f"call_secret is longer than {MAX_SECRET} characters")
        row = await self._store.upsert_slave(host, port, STATUS_LIVE)
        slave = self._slaves.get((host, port))
        if slave is None:
            slave = Slave.from_row(row, self._dial)
            self._add(slave)
        else:
            # It may have restarted: a channel in reconnect backoff would lie.
            slave.reset_channel()
        slave.secret = secret
        slave.status = STATUS_LIVE
        slave.pending = False
        log.info("slave_registered", slave=slave.address, id=slave.id)
        if self.metrics is not None:
            self.metrics.registered()
        await self.probe(slave, force_log=True)
        return slave

    async def wait_for_change(self, timeout: float) -> None:
        """Return after the next probe or registration settles a slave, or ``timeout``."""
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
        if self.on_change is not None:
            self.on_change()

    async def ping_all(self) -> None:
        """Probe every slave concurrently, then forget the long-dead ones.

        The sweep takes about one timeout.
        """
        started, cpu = time.monotonic(), time.process_time()
        slaves = list(self._ordered)
        await asyncio.gather(*(self._bounded_probe(s) for s in slaves))
        await self.forget_long_down()
        log.debug(
            "ping_sweep_done",
            slaves=len(slaves),
            live=sum(s.live for s in slaves),
            seconds=round(time.monotonic() - started, 4),
            cpu_seconds=round(time.process_time() - cpu, 4),
        )

    async def _bounded_probe(self, slave: Slave) -> None:
        async with self._probe_slots:
            await self.probe(slave)

    async def forget_long_down(self) -> None:
        """Drop every slave down for longer than ``forget_after`` seconds, from memory and store.

        Memory goes first and at once (no await between the check and the
        removal), and the store deletes only rows still down, so a slave that
        registers again meanwhile is kept as a live one.
        """
        if not self._forget_after:
            return
        cutoff = now() - dt.timedelta(seconds=self._forget_after)
        down_since = await self._store.down_since(cutoff)
        gone = [s for s in self._ordered if s.id in down_since and not s.live]
        if not gone:
            return
        for slave in gone:
            del self._slaves[(slave.host, slave.port)]
            self._index(slave, slave.methods, ())
        ids = {s.id for s in gone}
        self._ordered = [s for s in self._ordered if s.id not in ids]
        await self._store.delete_down_slaves(sorted(ids))
        for slave in gone:
            await slave.close()
            log.info(
                "slave_forgotten",
                slave=slave.address,
                down_since=down_since[slave.id].isoformat(),
                forget_after=self._forget_after,
            )
        self._log_change(gone[-1])

    async def probe(self, slave: Slave, force_log: bool = False) -> None:
        """Check health and re-read reflection; save and log any change."""
        async with slave.probe_lock:
            if self._slaves.get((slave.host, slave.port)) is not slave:
                return  # forgotten while this probe waited for the lock
            before = (slave.status, slave.methods)
            probed = time.monotonic()
            reason, code = await self._check(slave)
            slave.reason = reason or ""
            if self.metrics is not None:
                self.metrics.probed(time.monotonic() - probed, reason is None)
            if reason is None:
                slave.last_seen = time.time()
                slave.status, slave.pending = STATUS_LIVE, False
            else:
                slave.status = STATUS_DOWN
                slave.reset_channel()
                if slave.pending and code == _REFUSED and not slave.secret:
                    # A protected slave does not know this (restarted) master
                    # yet: it hands over its call secret when it registers again.
                    reason = "waiting for the slave to register again"
                    log.info("slave_awaiting_registration", slave=slave.address)
                else:
                    slave.pending = False
                    if before[0] == STATUS_LIVE or force_log:
                        log.warning("slave_down", slave=slave.address, reason=reason)
            if (slave.status, slave.methods) != before or force_log:
                await self._store.update_slave(slave.id, slave.status, slave.methods, reason or "")
                self._log_change(slave)
            self._notify()

    async def mark_down(self, slave: Slave, reason: str) -> None:
        """Record that a job could not reach ``slave``; the next ping may revive it."""
        async with slave.probe_lock:
            if not slave.live:
                return
            slave.status = STATUS_DOWN
            slave.reason = reason
            slave.reset_channel()
            log.warning("slave_down", slave=slave.address, reason=reason)
            await self._store.update_slave(slave.id, slave.status, slave.methods, reason)
            self._log_change(slave)
            self._notify()

    async def _check(self, slave: Slave) -> tuple[str | None, grpc.StatusCode | None]:
        """(None, None) when the slave is healthy and its catalog fresh, else why not.

        The code is the slave's own status code when it answered with one.
        """
        try:
            async with asyncio.timeout(self._probe_timeout):
                with slave.lease() as channel:
                    serving = await self._health(slave, channel)
                    if serving is False:
                        return "health check answers NOT_SERVING", None
                    known = slave.catalog
                    hint = known.protocol if known else None
                    catalog = await discover(
                        channel, self._probe_timeout, hint, slave.metadata, known
                    )
                    status = await read_status(channel, self._probe_timeout, slave.metadata)
        except TimeoutError:
            return f"no answer within {self._probe_timeout:g}s", None
        except grpc.aio.AioRpcError as exc:
            return f"{exc.code().name}: {exc.details()}", exc.code()
        except DiscoveryError as exc:
            slave.catalog = None
            return f"reflection failed: {exc.message}", None
        slave.catalog = catalog  # the same object when nothing changed
        apply_status(slave, status)
        self._set_methods(slave, catalog.methods)
        return None, None

    async def _health(self, slave: Slave, channel: grpc.aio.Channel) -> bool | None:
        """True/False from ``grpc.health.v1``; None when the slave has no health service."""
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(),
                timeout=self._probe_timeout,
                metadata=slave.metadata,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return None  # e.g. the original Go slave: judge by reflection alone
            raise
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def _log_change(self, slave: Slave) -> None:
        """Log the slave list with methods; past a size, only the slave that changed.

        Listing 10,000 slaves on each of 10,000 registrations would write
        gigabytes, so big fleets get the change and the counts.
        """
        if len(self._ordered) <= FLEET_LOG_LIMIT:
            log.info(
                "slaves_changed",
                slaves=[
                    {"slave": s.address, "status": s.status, "methods": list(s.methods)}
                    for s in self._ordered
                ],
            )
        else:
            log.info(
                "slave_changed",
                slave=slave.address,
                status=slave.status,
                methods=list(slave.methods),
                slaves=len(self._ordered),
                live=sum(s.live for s in self._ordered),
            )

    async def remove(self, address: str) -> Slave:
        """Forget the slave at ``host:port`` now, from memory and store; it may register again.

        Jobs already running on it go on (its channel closes when they end).

        Raises:
            SlaveNotFound: no slave has this address.
        """
        slave = next((s for s in self._ordered if s.address == address.strip()), None)
        if slave is None:
            raise SlaveNotFound(f"no slave {address.strip()[:300]!r}: see Admin/ListSlaves")
        async with slave.probe_lock:
            if self._slaves.pop((slave.host, slave.port), None) is None:
                raise SlaveNotFound(f"slave {slave.address} was removed meanwhile")
            self._index(slave, slave.methods, ())
            self._ordered = [s for s in self._ordered if s is not slave]
            await self._store.delete_slave(slave.id)
            slave.reset_channel()
        log.info("slave_removed", slave=slave.address)
        self._log_change(slave)
        self._notify()
        return slave

    async def close(self) -> None:
        """Close every slave channel."""
        for slave in self._ordered:
            await slave.close()
