"""The master's list of slaves: the index jobs read, registration, forgetting,
and the notices that something changed.

Memory holds the truth the scheduler reads (no database on the job path); the
store is written whenever a slave's liveness or methods change, so a restarted
master knows every slave it knew. The calls to slaves are the prober's
(:mod:`arko.master.slaves.probe`); the registry records what they find. A
slave down for longer than ``forget_after`` is forgotten at the end of a ping
sweep; should it come back, it registers again like a new one.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime as dt
import functools
import ipaddress
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import grpc
import structlog

from arko.common.auth import call_secret
from arko.common.errors import (
    ArkoError,
    InvalidArgument,
    NoLiveSlave,
    PermissionDenied,
    ResourceExhausted,
)
from arko.common.methods import method_not_found
from arko.common.notifier import Notifier
from arko.master.cluster.coordination import ALONE, Coordinator
from arko.master.slaves.discovery import Catalog
from arko.master.slaves.probe import Finding, Prober, apply_status, shown_reason
from arko.master.slaves.slave import OpenChannels, Slave
from arko.master.store.rows import STATUS_DOWN, STATUS_LIVE, SlaveRow, Store, now

if TYPE_CHECKING:
    from arko.master.metrics import MasterMetrics

log = structlog.get_logger("arko.master.slaves.registry")

MAX_SECRET = 256
FLEET_LOG_LIMIT = 100
# Channels idle slaves keep open (see arko.master.slaves.slave): a fleet of
# up to this many keeps every channel, as before; past it, idle slaves dial
# on demand. About 20 KB each.
IDLE_CHANNELS = 1000
_REFUSED = grpc.StatusCode.UNAUTHENTICATED
# Derived call secrets kept (one per live nonce; 64 bytes of hex and a nonce each).
_SECRETS_KEPT = 65536
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
    Whoever must know when a slave may have changed (the job queue) subscribes
    to :attr:`changed`.

    Args:
        coordinator: The other masters on the database: which slaves this
            master pings, and the lease of one registering here.
        metrics: Told of registrations and probes, when metrics are on.
        idle_channels: Open channels past which idle slaves close theirs
            after each probe.
    """

    def __init__(
        self,
        store: Store,
        prober: Prober,
        forget_after: float = 0,
        join_token: str | None = None,
        name: str = "",
        coordinator: Coordinator = ALONE,
        max_slaves: int = 10000,
        metrics: MasterMetrics | None = None,
        idle_channels: int = IDLE_CHANNELS,
    ) -> None:
        self._store = store
        self._max_slaves = max_slaves
        # With the join token, the call secret of a slave that registered with
        # another master derives from its stored nonce (arko.common.auth).
        self._join_token = join_token
        # Deriving is an HMAC, and sync derives for every slave at each
        # heartbeat (a third of a 10,000-slave beat's CPU); a nonce changes
        # only when its slave restarts, so the answers are kept.
        self._derive: Callable[[str], str] | None = None
        if join_token is not None:
            derive = functools.partial(call_secret, join_token)
            self._derive = functools.lru_cache(maxsize=_SECRETS_KEPT)(derive)
        self._name = name
        # Several masters share the store: pings go to owned slaves only, and
        # :meth:`sync` brings in what the others registered and saw.
        self._coordinator = coordinator
        # Addresses registered or removed here since the last sync: a listing
        # read before that change must not undo it.
        self._recent: set[tuple[str, int]] = set()
        # Those of the sync before: a claim may reach the leases one beat late.
        self._settling: set[tuple[str, int]] = set()
        # The leases the last sync was told of: a sync of changes only sets
        # ``owned`` on the slaves whose lease changed.
        self._held: frozenset[int] = frozenset()
        # Rows not folded in because a probe of their slave was running then.
        self._deferred: dict[tuple[str, int], SlaveRow] = {}
        self._forget_after = forget_after  # seconds down before a slave is dropped; 0: never
        self._prober = prober
        self._channels = OpenChannels(idle_channels)
        self._slaves: dict[tuple[str, int], Slave] = {}
        self._ordered: list[Slave] = []
        self._by_method: dict[str, list[Slave]] = {}
        self._changed = asyncio.Event()
        # Told whenever a slave may have changed (the job queue serves its waiters).
        self.changed: Notifier[[]] = Notifier()
        # Grows when the fleet's methods, their descriptors or which slave is
        # live may have changed: what is derived from the catalogs (the HTTP
        # API's /openapi.json) is rebuilt then, not at each probe.
        self.methods_version = 0
        self._metrics = metrics

    async def load(self) -> None:
        """Restore every stored slave; the first ping decides who is live."""
        for row in await self._store.list_slaves():
            self._add(self._restored(row))
        log.info("slaves_loaded", count=len(self._slaves))

    def _restored(self, row: SlaveRow) -> Slave:
        slave = Slave.from_row(row, self._prober.dial, self._channels)
        slave.secret = self._derived_secret(row.call_nonce)
        slave.owned = self._coordinator.alone  # else: once a heartbeat grants its lease
        return slave

    def _derived_secret(self, nonce: str) -> str:
        """The call secret of a slave that sent ``nonce``, "" when it cannot be derived."""
        if self._derive is None or not nonce:
            return ""
        return self._derive(nonce)

    def _add(self, slave: Slave) -> None:
        slave.caller = self._name
        self._slaves[(slave.host, slave.port)] = slave
        self._ordered.append(slave)  # ids grow with registration, so order holds
        self._index(slave, (), slave.methods)

    def _index(self, slave: Slave, old: tuple[str, ...], new: tuple[str, ...]) -> None:
        if set(old) != set(new):
            self.methods_version += 1
        for method in set(old) - set(new):
            self._by_method[method].remove(slave)
            if not self._by_method[method]:
                del self._by_method[method]
        for method in set(new) - set(old):
            offering = self._by_method.setdefault(method, [])
            bisect.insort(offering, slave, key=lambda s: s.id)

    def _unindex(self, *gone: Slave) -> None:
        """Take ``gone`` out of every structure jobs read, in one pass over the order.

        Every removal (asked for, forgotten, or dropped by another master)
        comes here, so none leaves a slave behind in the method index.
        """
        for slave in gone:
            del self._slaves[(slave.host, slave.port)]
            self._index(slave, slave.methods, ())
        dropped = set(gone)
        self._ordered = [s for s in self._ordered if s not in dropped]

    def _set_catalog(self, slave: Slave, catalog: Catalog | None) -> None:
        if catalog is not slave.catalog:
            slave.catalog = catalog
            self.methods_version += 1

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

    async def described(self, method: str, patience: float) -> list[Slave]:
        """The slaves offering ``method`` whose descriptors this master has read,
        reading them first when it has not yet.

        A master knows its database's slaves and their method names before it
        has read their descriptors: after a restart, until each answers a ping
        or registers again, and on a shared database for every slave another
        master pings. That is no reason to call the method unknown. A slave
        that answers is read now; one restored from the store that has not
        registered again (a protected slave: it must hand over its call
        secret first) is waited for, up to ``patience`` seconds, as a job
        waits for it.

        Raises:
            MethodNotFound: no slave offers it: it does not exist.
            NoLiveSlave: slaves offer it, but none could be read in time.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        tried: set[int] = set()
        while True:
            offering = self.offering(method)
            read = [s for s in offering if s.catalog is not None]
            if read:
                return read
            unread = [s for s in offering if s.live and s.id not in tried]
            if unread:  # each read once: one that fails is down afterwards
                tried.update(s.id for s in unread)
                await asyncio.gather(*(self.probe(s) for s in unread))
                continue
            left = deadline - loop.time()
            if not any(s.pending for s in offering):
                raise NoLiveSlave(
                    f"no slave offering {method} answers, so none could be read "
                    "(see arko slaves); try again once one is up"
                )
            if left <= 0:
                raise NoLiveSlave(
                    f"no slave offering {method} has registered again with this master "
                    f"since it started ({patience:g}s waited); try again shortly"
                )
            await self.wait_for_change(left)

    async def register(
        self, host: str, port: int, secret: str = "", nonce: str = "", proof: str = ""
    ) -> Slave:
        """Store the slave (one row per host:port) and discover its methods now.

        A slave that cannot be reached is kept with status 0; the reason is logged.
        ``secret`` is what the master must present on calls to it; ``nonce``,
        kept in the store, lets other masters with the join token derive it.
        ``proof`` (a registration nonce) must be confirmed by the slave at the
        address before anything is stored; without one, the registration may
        not replace a live slave that still answers.

        Raises:
            InvalidArgument, ResourceExhausted, PermissionDenied: naming why,
                with nothing stored or changed.
        """
        host = validate_address(host, port)
        fields = (("call_secret", secret), ("call_nonce", nonce), ("registration_nonce", proof))
        for field, value in fields:
            if len(value) > MAX_SECRET:
                raise InvalidArgument(f"{field} is longer than {MAX_SECRET} characters")
            # The secret travels as a gRPC header and the nonce is stored as
            # text: printable ASCII both (a NUL would fail PostgreSQL's write).
            if not (value.isascii() and value.isprintable()):
                raise InvalidArgument(f"{field} must be printable ASCII")
        known = self._slaves.get((host, port))
        if known is None and len(self._slaves) >= self._max_slaves:
            raise ResourceExhausted(
                f"the master keeps at most {self._max_slaves} slaves (--max_slaves): "
                f"{host}:{port} is not registered; remove or forget one first"
            )
        if proof:
            await self._confirm(host, port, proof)
        elif known is not None and await self._still_answers(
            known, secret or self._derived_secret(nonce)
        ):
            raise PermissionDenied(
                f"slave {known.address} is live and still answers the call secret it "
                "registered with: a registration with another call secret cannot take "
                "its place (a restarted slave may register once the old one is gone)"
            )
        row = await self._store.upsert_slave(host, port, STATUS_LIVE, nonce)
        slave = self._slaves.get((host, port))
        if slave is None:
            slave = self._restored(row)
            self._add(slave)
        else:
            # It may have restarted: a channel in reconnect backoff would lie.
            slave.reset_channel()
        slave.secret = secret or self._derived_secret(nonce)
        slave.status = STATUS_LIVE
        slave.pending = False
        self._recent.add((host, port))
        if not slave.owned:
            slave.owned = await self._coordinator.claim(slave.id)
        log.info("slave_registered", slave=slave.address, id=slave.id)
        if self._metrics is not None:
            self._metrics.registered()
        await self.probe(slave, force_log=True)
        return slave

    async def _confirm(self, host: str, port: int, proof: str) -> None:
        """Ask the slave at ``host:port`` whether it sent the registration nonce ``proof``.

        Raises:
            PermissionDenied: it did not confirm (or did not answer as an arko
                slave; which one is the master's log's business, not the caller's).
        """
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        why = await self._prober.confirms(address, proof)
        if why is not None:
            log.warning("registration_unconfirmed", slave=address, reason=why)
            raise PermissionDenied(
                f"the slave at {address} did not confirm this registration: a registration "
                "must come from the slave at the address it names"
            )

    async def _still_answers(self, slave: Slave, secret: str) -> bool:
        """True when ``slave`` is live under a call secret other than ``secret``
        and still takes calls made with its own.

        Anyone reaching the master may name a live slave's address with a call
        secret of their own; taking it would mark the slave down for good (it
        refuses the new secret and, its master never having gone, never
        registers again). A slave that restarted refuses its old secret, so
        its new registration goes through.
        """
        if not slave.live or secret == slave.secret:
            return False
        return await self._prober.answers(slave)

    async def wait_for_change(self, timeout: float) -> None:
        """Return after the next probe or registration settles a slave, or ``timeout``."""
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
        self.changed()

    def sync(self, rows: Sequence[SlaveRow], owned: frozenset[int], complete: bool = True) -> None:
        """Take in what the shared store says: slaves other masters registered,
        forgot or saw change, and which slaves this master now pings.

        A slave this master pings keeps the liveness its own probes found;
        for the others, the store's word (their pinging master's) is taken.
        Newly owned slaves are pinged in the next sweep.

        Args:
            rows: Every stored slave when ``complete``; else those changed
                since the previous sync, the only ones folded in (a heartbeat
                at 10,000 slaves where nothing changed folds nothing).
            owned: The ids of the slaves whose lease this master holds.
            complete: Whether ``rows`` is the whole table, so a slave absent
                from it was forgotten or removed elsewhere.
        """
        recent, self._recent = self._recent, set()
        held, self._held = self._held, owned
        changed = False
        if complete:
            stored = {(r.host, r.port) for r in rows}
            for key, slave in list(self._slaves.items()):
                if key not in stored and key not in recent:
                    self._drop(slave)
                    changed = True
            # Whose lease changed, and who registered here lately, may own differently.
            mayown: Iterable[Slave] = list(self._ordered)
        else:
            ids = held ^ owned
            mayown = [s for s in self._ordered if s.id in ids] if ids else []
        # Registered here in the last two beats: its claim may not be in ``owned`` yet.
        settling, self._settling = self._settling | recent, recent
        for key in settling:
            known = self._slaves.get(key)
            if known is not None:
                self._own(known, owned, recent)
        for known in mayown:
            self._own(known, owned, recent)
        # Rows a probe kept from being folded last time come first, so a newer one wins.
        deferred, self._deferred = self._deferred, {}
        for row in [*(deferred.values() if not complete else ()), *rows]:
            if self._fold(row, owned, recent):
                changed = True
        for slave in self._ordered:
            if slave.refused and not (slave.owned or slave.probe_lock.locked()):
                # Full with other masters' jobs when it refused: it may have
                # room now, and no status read of ours would say so.
                slave.refused, changed = False, True
        if changed:
            self._notify()

    def _own(self, slave: Slave, owned: frozenset[int], recent: set[tuple[str, int]]) -> None:
        """Whether this master pings ``slave``, by the leases it holds now."""
        # Claimed at registration after this beat read the leases: still ours.
        slave.owned = slave.id in owned or ((slave.host, slave.port) in recent and slave.owned)

    def _fold(self, row: SlaveRow, owned: frozenset[int], recent: set[tuple[str, int]]) -> bool:
        """Take in one stored row; whether a slave changed for the jobs."""
        key = (row.host, row.port)
        slave = self._slaves.get(key)
        changed = False
        if slave is None:
            if key in recent:
                return False  # removed here after the listing was read
            slave = self._restored(row)
            slave.pending = False
            self._add(slave)
            changed = True
        self._own(slave, owned, recent)
        if row.call_nonce and self._join_token is not None:
            slave.secret = self._derived_secret(row.call_nonce)
        if slave.owned:
            return changed
        if slave.probe_lock.locked():
            self._deferred[key] = row  # a probe is settling it now: fold it next time
            return changed
        if (row.status, row.methods) != (slave.status, slave.methods) or slave.pending:
            slave.status, slave.pending = row.status, False
            self._set_methods(slave, row.methods)
            if not slave.live:
                slave.reset_channel()
            changed = True
        if (row.labels, row.capacity) != (slave.labels, slave.capacity):
            slave.labels, slave.capacity = row.labels, row.capacity
            changed = True
        return changed

    def disown(self) -> None:
        """Stop pinging every slave: the database is out of reach, so other
        masters may hold the leases now, and two pingers would be one too many.

        Memory only, since the store cannot be reached; the next good beat's
        :meth:`sync` hands back whatever leases this master still holds.
        """
        for slave in self._ordered:
            slave.owned = False
        self._held = frozenset()  # so the next sync hands back every lease held

    def _drop(self, slave: Slave) -> None:
        """Forget ``slave`` in memory (another master removed or forgot it)."""
        self._unindex(slave)
        slave.reset_channel()
        log.info("slave_dropped", slave=slave.address, reason="gone from the shared database")

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
            self._recent.add((slave.host, slave.port))
        self._unindex(*gone)
        await self._store.delete_down_slaves(sorted(s.id for s in gone))
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
        """Have the prober check the slave now; record, save and log any change."""
        async with slave.probe_lock:
            if self._slaves.get((slave.host, slave.port)) is not slave:
                return  # forgotten while this probe waited for the lock
            before = (slave.status, slave.methods, slave.labels, slave.capacity)
            probed = time.monotonic()
            found = await self._prober.check(slave)
            self._take(slave, found)
            detail, code = found.detail, found.code
            reason = shown_reason(detail)
            if self._metrics is not None:
                self._metrics.probed(time.monotonic() - probed, reason is None)
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
                        log.warning("slave_down", slave=slave.address, reason=detail)
            slave.reason = reason or ""
            after = (slave.status, slave.methods, slave.labels, slave.capacity)
            # With several masters, the one pinging the slave speaks for it;
            # any master may tell what it found on a slave that answered.
            speaks = slave.owned or self._coordinator.alone or slave.live
            if (after != before or force_log) and speaks:
                await self._store.update_slave(
                    slave.id,
                    slave.status,
                    slave.methods,
                    reason or "",
                    slave.labels,
                    slave.capacity,
                )
            if after[:2] != before[:2] or force_log:
                self._log_change(slave)
            if after[0] != before[0]:
                self.methods_version += 1  # descriptors of live slaves come first
            if reason is None:
                slave.rest()
            self._notify()

    def _take(self, slave: Slave, found: Finding) -> None:
        """Keep the catalog, status and methods a probe read (the index follows)."""
        if found.catalog_lost:
            self._set_catalog(slave, None)
        elif found.catalog is not None:
            self._set_catalog(slave, found.catalog)  # the same object when nothing changed
            apply_status(slave, found.status)
            self._set_methods(slave, found.catalog.methods)

    async def mark_down(self, slave: Slave, reason: str) -> None:
        """Record that a job could not reach ``slave``; the next ping may revive it."""
        async with slave.probe_lock:
            if not slave.live:
                return
            slave.status = STATUS_DOWN
            slave.reason = reason
            slave.reset_channel()
            log.warning("slave_down", slave=slave.address, reason=reason)
            if slave.owned or self._coordinator.alone:  # else its pinging master decides
                await self._store.update_slave(slave.id, slave.status, slave.methods, reason)
            self._log_change(slave)
            self._notify()

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
            if self._slaves.get((slave.host, slave.port)) is not slave:
                raise SlaveNotFound(f"slave {slave.address} was removed meanwhile")
            self._recent.add((slave.host, slave.port))
            self._unindex(slave)
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
