"""Several masters on one PostgreSQL database: heartbeats, ping leases, takeover, shared slots.

:class:`PostgresCoordinator` is the :class:`~arko.master.cluster.coordination.Coordinator`
of a master on PostgreSQL.

Every master on a shared database beats every ``heartbeat_interval`` seconds
(a row in ``master``). Each beat also:

* takes over any master silent for ``master_timeout`` seconds: in one
  transaction its row is deleted (so exactly one survivor does this), its
  queued and running jobs are marked interrupted, and its ping leases are
  freed;
* renews this master's ping leases and claims free or expired ones up to a
  fair share (slaves / live masters), freeing any above it, so a fleet of N
  slaves costs N pings per interval whatever the number of masters, and a
  master that joins gets its share within a beat or two.

Times are the database's (``now()``), so the masters' clocks need not agree.

A method's ``max_concurrency`` holds across masters through PostgreSQL
advisory locks, one per place (method, index), held on a connection of this
master's own: a master that dies loses its connection, and the server frees
its places at once. Masters tell each other through LISTEN/NOTIFY when a
place is freed, when job records were written (so a job's watchers on another
master read them without waiting for a poll), and when a job running
elsewhere is to be cancelled.

Only this module and :mod:`arko.master.store` (its stores and migrations) know SQL;
this one speaks PostgreSQL only, on its own asyncpg connections, because
advisory locks and LISTEN belong to one session, which a pool does not give.
It also writes each job's first record before the job is sent
(:meth:`PostgresCoordinator.commit_jobs`), on a connection tuned for that one write.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from arko.common.errors import Unavailable
from arko.common.notifier import Notifier
from arko.master.cluster.coordination import Slaves, Slot
from arko.master.cluster.slave_feed import SlaveFeed
from arko.master.jobs.state import UNFINISHED, JobState
from arko.master.store.errors import postgres_startup_error
from arko.master.store.rows import JobRow
from arko.master.store.sql import job_upsert, pg_options, shown_url

log = structlog.get_logger("arko.master.cluster.postgres")

SAVED = "arko_saved"
SLOTS = "arko_slots"
CANCEL = "arko_cancel"
TAKEN_OVER = "the master running it stopped answering (taken over by {by})"
_NOTIFY_BYTES = 7000  # PostgreSQL caps a payload at 8,000 bytes
_COMMIT_ROWS = 512  # job rows a statement: 8,704 parameters, under PostgreSQL's 32,767
_TAKEOVER_LOCK = 0x61726B6F01  # advisory lock key held while a dead master is taken over
# What asyncpg raises on a connection the server or the network ended. The last
# one comes from a connection that has read the server's goodbye (an error
# such as "terminating connection due to administrator command") but not yet
# the end of the stream: it is neither closed nor usable.
_LOST = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


@dataclass(frozen=True, slots=True)
class Beat:
    """What one heartbeat found: the slaves this master pings, the masters it took over."""

    owned: frozenset[int]
    masters: int
    taken_over: tuple[str, ...] = ()
    interrupted: int = 0


def _method_key(method: str) -> int:
    """The method as the first (signed 32-bit) key of an advisory lock."""
    return zlib.crc32(method.encode()) - 2**31


@dataclass(slots=True)
class _Waiters:
    """Events to set when a notice names a job (or, for slots, any notice)."""

    by_job: dict[str, asyncio.Event] = field(default_factory=dict)
    slots: asyncio.Event = field(default_factory=asyncio.Event)


class PostgresCoordinator:
    """This master among the masters sharing one PostgreSQL database.

    Args:
        url: The ``postgresql://`` URL of the database.
        name: This master's name, unique among the masters of the database.
        address: Where callers reach it (for operators).
        master_timeout: Seconds without a beat after which a master is dead.
        feed: The shared slave table, read at each beat.
        heartbeat_interval: Seconds between two beats of :meth:`keep_in_step`.
    """

    alone = False

    def __init__(
        self,
        url: str,
        name: str,
        address: str,
        master_timeout: float,
        feed: SlaveFeed,
        heartbeat_interval: float = 1.0,
    ) -> None:
        self._url = url
        self.name = name
        self._address = address
        self._timeout = master_timeout
        self._feed = feed
        self._interval = heartbeat_interval
        self._beats: Any = None  # asyncpg connection for beats, leases and takeovers
        self._session: Any = None  # asyncpg connection holding locks and listening
        self._session_lock = asyncio.Lock()
        self._commits: Any = None  # asyncpg connection writing jobs before they are sent
        self._commit_lock = asyncio.Lock()
        self._held: dict[tuple[int, int], str] = {}  # place -> method, for logs
        self._places_lost = False  # held places the current session has not locked yet
        self._waiters = _Waiters()
        self._last_beat = 0.0
        self._cancel_asked: Notifier[[str, str]] = Notifier()
        self._slot_freed: Notifier[[]] = Notifier()
        self._notices: set[asyncio.Task[None]] = set()  # saved-job notices in flight

    def on_cancel_asked(self, listener: Callable[[str, str], None]) -> None:
        """Tell ``listener(job_id, by)`` when another master asks to cancel a job."""
        self._cancel_asked.subscribe(listener)

    def on_slot_freed(self, listener: Callable[[], None]) -> None:
        """Tell ``listener()`` when any master frees a place of some method."""
        self._slot_freed.subscribe(listener)

    async def open(self) -> None:
        """Connect twice and listen for the other masters' notices.

        Raises:
            StartupError: the database cannot be reached.
        """
        try:
            await self._connect()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            await self.close()
            raise postgres_startup_error(exc, self._url, shown_url(self._url)) from None

    async def _connect(self) -> None:
        """(Re)open whichever connection is missing or lost.

        A lost session has lost its advisory locks with it (the server freed
        them) while the jobs holding those places still run: the new session
        takes them again. Forgetting them instead would let this master
        itself hand a running job's place to the next job.
        """
        database, options = pg_options(self._url)
        if self._beats is None or self._beats.is_closed():
            self._beats = await asyncpg.connect(database=database, **options)
        if self._commits is None or self._commits.is_closed():
            self._commits = await asyncpg.connect(
                database=database, server_settings={"synchronous_commit": "off"}, **options
            )
        if self._session is None or self._session.is_closed():
            self._session = await asyncpg.connect(database=database, **options)
            self._places_lost = bool(self._held)
            for channel in (SAVED, SLOTS, CANCEL):
                await self._session.add_listener(channel, self._notice)
        if self._places_lost:  # until taken back: a failure here is retried next beat
            await self._take_back_places()
            self._places_lost = False

    async def _check_session(self) -> None:
        """Ask the session one query, and drop it should it fail.

        A connection the server ended, or a network cut off, may not look
        closed until it is used, and with it went this master's places:
        found out here, at each beat, they are taken back by the next
        :meth:`_connect` rather than whenever a job next needs the session.
        """
        if self._session is None or self._session.is_closed():
            return
        try:
            await self._session.execute("SELECT 1", timeout=self._timeout)
        except _LOST:
            self._session.terminate()

    async def _take_back_places(self) -> None:
        """Lock again the places this master's running jobs hold.

        One another master took while the session was down stays counted as
        held here (its job still runs): the method runs above its limit until
        one of the two jobs ends, and the log says so.
        """
        lost = []
        for (key, index), method in sorted(self._held.items()):
            query = "SELECT pg_try_advisory_lock($1, $2)"
            if not await self._session.fetchval(query, key, index):
                lost.append(f"{method}#{index}")
        log.warning("fleet_session_lost", places_held=len(self._held), taken_meanwhile=lost)

    # -- heartbeats, takeover and ping leases --------------------------------

    async def join(self, slaves: Slaves) -> None:
        """One heartbeat: the first leases, before the first ping sweep."""
        await self._beat_and_sync(slaves)

    async def keep_in_step(self, slaves: Slaves) -> None:
        """Beat every ``heartbeat_interval`` seconds, for as long as the master runs."""
        while True:
            await asyncio.sleep(self._interval)
            began = time.monotonic()
            await self._beat_and_sync(slaves)
            took = time.monotonic() - began
            if took > self._timeout / 3:
                # Others take this master over past --master_timeout: say so early.
                log.warning("heartbeat_slow", seconds=round(took, 3), limit=self._timeout)

    async def _beat_and_sync(self, slaves: Slaves) -> None:
        """One heartbeat, then ``slaves`` take in the shared slave list and leases."""
        try:
            beat = await self.beat()
            changes = await self._feed.changes()
        except Exception as exc:
            log.warning("heartbeat_failed", error=str(exc))
            if self.stale():  # others may hold our leases now: stop pinging
                slaves.disown()
            return
        slaves.sync(changes.rows, beat.owned, changes.complete)
        log.debug("heartbeat", masters=beat.masters, pinging=len(beat.owned))

    async def beat(self) -> Beat:
        """Say this master is alive, take over dead ones, and renew and balance ping leases."""
        async with self._session_lock:
            await self._check_session()
            await self._connect()  # after a database restart: both again
        conn = self._beats
        ttl = self._timeout
        await conn.execute(
            'INSERT INTO "master" (id, address, started_at, heartbeat_at) '
            "VALUES ($1, $2, now(), now()) ON CONFLICT (id) DO UPDATE "
            "SET heartbeat_at = now(), address = excluded.address",
            self.name,
            self._address,
        )
        async with conn.transaction():
            # One takeover at a time, fleet-wide: two survivors deleting the
            # same dead rows in different orders would deadlock.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _TAKEOVER_LOCK)
            dead = await conn.fetch(
                'DELETE FROM "master" WHERE heartbeat_at < now() - make_interval(secs => $1) '
                "RETURNING id",
                ttl,
            )
            dead_names = tuple(str(row["id"]) for row in dead)
            interrupted = 0
            if dead_names:
                interrupted = await self._take_over(conn, dead_names)
        async with conn.transaction():
            owned, masters = await self._lease(conn, ttl)
        self._last_beat = time.monotonic()
        return Beat(frozenset(owned), masters, dead_names, interrupted)

    async def _take_over(self, conn: Any, dead: tuple[str, ...]) -> int:
        """Interrupt the dead masters' unfinished jobs and free their leases."""
        reason = TAKEN_OVER.format(by=self.name)
        rows = await conn.fetch(
            "UPDATE \"job\" SET state = $3, error_code = 'ABORTED', error = $2, ended_at = now() "
            "WHERE master = ANY($1::text[]) AND state = ANY($4::text[]) RETURNING id",
            list(dead),
            reason,
            JobState.INTERRUPTED,
            sorted(UNFINISHED),
        )
        await conn.execute(
            "UPDATE \"slave\" SET owner = '', lease_until = NULL WHERE owner = ANY($1::text[])",
            list(dead),
        )
        ids = [str(row["id"]) for row in rows]
        for name in dead:
            log.warning("master_taken_over", master=name, jobs_interrupted=len(ids))
        await self._notify_saved(conn, ids)
        return len(ids)

    async def _lease(self, conn: Any, ttl: float) -> tuple[list[int], int]:
        """Renew this master's leases, then claim or free some to hold a fair share."""
        await conn.execute(
            'UPDATE "slave" SET lease_until = now() + make_interval(secs => $2) WHERE owner = $1',
            self.name,
            ttl,
        )
        names = [str(r["id"]) for r in await conn.fetch('SELECT id FROM "master" ORDER BY id')]
        masters = len(names)
        slaves = int(await conn.fetchval('SELECT count(*) FROM "slave"'))
        # Shares differ by one at most: the first masters by name take one
        # more while the slaves do not divide evenly (10 over 3: 4, 3, 3).
        base, extra = divmod(slaves, max(masters, 1))
        rank = names.index(self.name) if self.name in names else masters
        share = base + (rank < extra)
        mine = int(await conn.fetchval('SELECT count(*) FROM "slave" WHERE owner = $1', self.name))
        if mine < share:
            await conn.execute(
                'UPDATE "slave" SET owner = $1, lease_until = now() + make_interval(secs => $2) '
                "WHERE id IN (SELECT id FROM \"slave\" WHERE owner = '' OR lease_until IS NULL "
                "OR lease_until < now() ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)",
                self.name,
                ttl,
                share - mine,
            )
        elif mine > share:
            # Another master joined: give back the newest, which it claims next beat.
            await conn.execute(
                "UPDATE \"slave\" SET owner = '', lease_until = NULL WHERE id IN "
                '(SELECT id FROM "slave" WHERE owner = $1 ORDER BY id DESC LIMIT $2)',
                self.name,
                mine - share,
            )
        # One array, not a row per slave: at 10,000 slaves the rows cost
        # 3.6 ms of CPU per beat to decode, the array 0.8 ms.
        ids = await conn.fetchval(
            "SELECT coalesce(array_agg(id), '{}') FROM \"slave\" WHERE owner = $1", self.name
        )
        return list(ids), masters

    async def claim(self, slave_id: int) -> bool:
        """Take the lease of a slave that just registered here, if nobody holds it.

        So a new slave is pinged from this master's next sweep, rather than
        after the next heartbeat shares it out. The registration is already
        stored, so a lost session only leaves the sharing to that beat.
        """
        async with self._session_lock:
            try:
                claimed = await self._session.fetchval(
                    'UPDATE "slave" SET owner = $1, '
                    "lease_until = now() + make_interval(secs => $3) "
                    "WHERE id = $2 AND (owner = '' OR lease_until IS NULL OR lease_until < now()) "
                    "RETURNING id",
                    self.name,
                    slave_id,
                    self._timeout,
                )
            except _LOST as exc:
                log.warning("slave_claim_failed", slave_id=slave_id, error=str(exc))
                return False
        return claimed is not None

    def stale(self) -> bool:
        """Whether the last good beat is older than ``master_timeout``.

        Others may then have taken this master's leases: it stops pinging
        until a beat gets through again, rather than ping twice.
        """
        return time.monotonic() - self._last_beat > self._timeout

    async def leave(self) -> None:
        """Free this master's leases and row on a clean stop, so others take over at once."""
        if self._beats is None:
            return
        with contextlib.suppress(Exception):
            async with self._beats.transaction():
                await self._beats.execute(
                    "UPDATE \"slave\" SET owner = '', lease_until = NULL WHERE owner = $1",
                    self.name,
                )
                await self._beats.execute('DELETE FROM "master" WHERE id = $1', self.name)

    # -- jobs written before they are sent -----------------------------------

    async def commit_jobs(self, rows: Sequence[JobRow]) -> None:
        """Write job records at once, on a connection of their own, in one statement.

        Callers queue behind the write in flight, so each write carries every
        job that arrived meanwhile (a group commit). The commit does not wait
        for PostgreSQL's WAL flush (``synchronous_commit = off``): what this
        write is for, other masters seeing the job and taking it over, needs
        no disk sync, a crash of the database server could lose only the last
        fraction of a second of these rows, and the master's own journal
        holds every record anyway. It costs one round trip, not a disk flush.
        """
        async with self._commit_lock:
            for start in range(0, len(rows), _COMMIT_ROWS):
                sql, params = job_upsert(rows[start : start + _COMMIT_ROWS])
                await self._commits.execute(sql, *params)

    # -- fleet-wide max_concurrency -----------------------------------------

    async def try_slot(self, method: str, limit: int) -> Slot | None:
        """Take a free place of ``method`` among ``limit``, or None when all are held."""
        key = _method_key(method)
        async with self._session_lock:
            try:
                for index in range(limit):
                    if (key, index) in self._held:
                        continue  # this session holds it: the lock would be granted again
                    query = "SELECT pg_try_advisory_lock($1, $2)"
                    if await self._session.fetchval(query, key, index):
                        self._held[(key, index)] = method
                        return Slot(method, key, index)
            except _LOST as exc:
                raise Unavailable(
                    f"cannot take a place of {method} (max_concurrency {limit}): the database "
                    f"is unreachable ({exc}); the job never started"
                ) from None
        return None

    async def release(self, slot: Slot) -> None:
        """Free ``slot`` and tell the other masters a place of its method is free."""
        async with self._session_lock:
            self._held.pop((slot.key, slot.index), None)
            with contextlib.suppress(Exception):  # a lost session freed it already
                await self._session.execute(
                    "SELECT pg_advisory_unlock($1, $2), pg_notify($3, $4)",
                    slot.key,
                    slot.index,
                    SLOTS,
                    slot.method[:_NOTIFY_BYTES],
                )

    async def wait_for_slot(self, timeout: float) -> None:
        """Return when any master frees a place, or after ``timeout`` seconds."""
        event = self._waiters.slots
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    # -- notices between masters --------------------------------------------

    def saved(self, job_ids: list[str]) -> None:
        """Tell every master, in the background, that these jobs' records were written."""
        if job_ids:
            task = asyncio.create_task(self.announce_saved(job_ids))
            self._notices.add(task)
            task.add_done_callback(self._notices.discard)

    async def announce_saved(self, job_ids: list[str]) -> None:
        """Tell every master that these jobs' records (and kept output) were written."""
        if job_ids:
            async with self._session_lock:
                with contextlib.suppress(Exception):
                    await self._notify_saved(self._session, job_ids)

    @staticmethod
    async def _notify_saved(conn: Any, job_ids: list[str]) -> None:
        per = _NOTIFY_BYTES // 33
        for start in range(0, len(job_ids), per):
            payload = ",".join(job_ids[start : start + per])
            await conn.execute("SELECT pg_notify($1, $2)", SAVED, payload)

    async def wait_saved(self, job_id: str, timeout: float) -> None:
        """Return when a master says it wrote ``job_id``'s record, or after ``timeout``."""
        # The notice that sets the event drops it; every unfinished job gets
        # one more (its final record, or its takeover), so none is left over.
        event = self._waiters.by_job.setdefault(job_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    async def ask_cancel(self, job_id: str, by: str) -> None:
        """Ask whichever master runs ``job_id`` to cancel it on behalf of ``by``.

        Raises:
            Unavailable: the database cannot be reached, so nobody was asked.
        """
        async with self._session_lock:
            try:
                await self._session.execute(
                    "SELECT pg_notify($1, $2)", CANCEL, f"{job_id} {by}"[:_NOTIFY_BYTES]
                )
            except _LOST as exc:
                raise Unavailable(
                    f"cannot ask the master running job {job_id} to cancel it: the database "
                    f"is unreachable ({exc}); try again"
                ) from None

    def _notice(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        """asyncpg's listener: wake whoever waits for this notice."""
        if channel == SAVED:
            for job_id in payload.split(","):
                event = self._waiters.by_job.pop(job_id, None)
                if event is not None:
                    event.set()
        elif channel == SLOTS:
            self._waiters.slots.set()
            self._waiters.slots = asyncio.Event()
            self._slot_freed()
        elif channel == CANCEL:
            job_id, _, by = payload.partition(" ")
            self._cancel_asked(job_id, by)

    async def stop(self) -> None:
        """Send the notices in flight, leave (others ping at once), close the connections."""
        await asyncio.gather(*self._notices, return_exceptions=True)
        await self.leave()
        await self.close()

    async def close(self) -> None:
        """Close the connections (which frees any place still held)."""
        for conn in (self._session, self._beats, self._commits):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        self._session = self._beats = self._commits = None
