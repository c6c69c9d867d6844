"""Helpers to run real arko daemons as subprocesses: for tests, the demo and benchmarks.

Every daemon gets a free loopback port, JSON logs in a file, and is stopped by
its own PID. Waiting is always for a condition, bounded by a timeout.

Ports come from a block of :data:`PORT_BLOCK` ports that this process reserves
for itself (:class:`PortBlock`), so test processes running side by side
(pytest-xdist workers, the two database passes) never hand out the same port:
a port picked free by one is not bound a moment later by another's daemon.

A fleet's masters keep their database in the fleet's folder (``arko.db``), or,
with ``ARKO_TEST_MASTER_DB=postgresql``, in a PostgreSQL database made for the
fleet on the server ``ARKO_TEST_POSTGRES`` names and dropped when it stops: so
one test suite checks the master on both.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import fcntl
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from arko.common.tls import is_loopback

T = TypeVar("T")
LOOPBACK = "127.0.0.1"
# Which database a fleet's masters use unless told: "sqlite" (the default) or "postgresql".
MASTER_DB_ENV = "ARKO_TEST_MASTER_DB"
MASTER_DBS = ("sqlite", "postgresql")
# The PostgreSQL server tests make their databases on ("off": none on this machine).
POSTGRES_ENV = "ARKO_TEST_POSTGRES"
POSTGRES_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def master_db_kind() -> str:
    """``ARKO_TEST_MASTER_DB``: the database fleets put their masters on by default.

    Raises:
        ValueError: a value other than "sqlite" or "postgresql" (a typo must
            not quietly test SQLite again).
    """
    kind = os.environ.get(MASTER_DB_ENV) or "sqlite"
    if kind not in MASTER_DBS:
        raise ValueError(f"{MASTER_DB_ENV}={kind!r}: expected one of {', '.join(MASTER_DBS)}")
    return kind


def postgres_server() -> str:
    """The maintenance URL of the test PostgreSQL server (its database only makes others)."""
    return os.environ.get(POSTGRES_ENV) or POSTGRES_DEFAULT


def is_postgres_url(db: Path | str) -> bool:
    """Whether a master's ``--db`` value is a PostgreSQL URL rather than a SQLite file."""
    return isinstance(db, str) and urllib.parse.urlsplit(db).scheme in ("postgresql", "postgres")


class PostgresUnavailable(RuntimeError):
    """The test PostgreSQL server cannot be reached (the message says which and how to fix)."""


def _run_apart(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end on an event loop of its own thread.

    Callers are synchronous, but some run where a loop is already running in
    their thread (Playwright's sync API keeps one), and ``asyncio.run`` would
    refuse there.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _postgres_admin(sql: str) -> None:
    # asyncpg is imported here, not at the top: it is an optional extra, and
    # the SQLite-only users of this module (the demo, benchmarks) need none.
    import asyncpg

    try:
        conn = await asyncpg.connect(postgres_server(), timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise PostgresUnavailable(
            f"PostgreSQL is not reachable at {postgres_server()} ({type(exc).__name__}: {exc}); "
            f"start it (README, Development), set {POSTGRES_ENV} to another server, "
            f"or {POSTGRES_ENV}=off to skip the PostgreSQL tests on purpose"
        ) from None
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def check_postgres() -> None:
    """Connect to the test server once.

    Raises:
        PostgresUnavailable: it does not answer.
    """
    _run_apart(_postgres_admin("SELECT 1"))


def create_postgres_database() -> str:
    """Create an empty database on the test server and return its URL.

    Raises:
        PostgresUnavailable: the server does not answer.
    """
    name = f"arko_test_{uuid.uuid4().hex[:12]}"
    _run_apart(_postgres_admin(f'CREATE DATABASE "{name}"'))
    parts = urllib.parse.urlsplit(postgres_server())
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def drop_postgres_database(url: str) -> None:
    """Drop a database made by :func:`create_postgres_database`, closing what still uses it."""
    name = urllib.parse.urlsplit(url).path.lstrip("/")
    _run_apart(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def cut_postgres_database(url: str, cut: bool = True) -> None:
    """Refuse (``cut``) or allow again every connection to a test database.

    Refusing also closes the connections open now, so the masters on it see
    the outage at once, as if the server had gone away for them alone.
    """
    name = urllib.parse.urlsplit(url).path.lstrip("/")
    sql = f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if cut else "true"}'
    if cut:
        sql += (
            "; SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
    _run_apart(_postgres_admin(sql))


def query(db: Path | str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """The rows of one query on a master's database, SQLite file or PostgreSQL URL.

    ``sql`` uses ``?`` placeholders on both (turned into ``$1``, ``$2`` ... for
    PostgreSQL), so a test reads the database the same way whichever it is.
    """
    if not is_postgres_url(db):
        with contextlib.closing(sqlite3.connect(db)) as conn, conn:  # commits a write
            return list(conn.execute(sql, args))
    numbered = iter(range(1, sql.count("?") + 1))
    text = "".join(f"${next(numbered)}" if c == "?" else c for c in sql)

    async def fetch() -> list[tuple[Any, ...]]:
        import asyncpg

        conn = await asyncpg.connect(str(db), timeout=5)
        try:
            return [tuple(row) for row in await conn.fetch(text, *args)]
        finally:
            await conn.close()

    return _run_apart(fetch())


# Below Linux's ephemeral range (32768-60999), so no outgoing connection's
# local port lands in a block: 48 blocks of 250 ports.
PORT_RANGE = (20000, 32000)
PORT_BLOCK = 250
# The lock files that reserve the blocks, one per block, shared by every
# process of the machine (whatever checkout it runs from).
PORT_LOCKS = Path(tempfile.gettempdir()) / "arko-test-ports"


class PortBlock:
    """A block of loopback ports reserved for this process alone, until it exits.

    The reservation is an exclusive ``flock`` on the block's lock file under
    :data:`PORT_LOCKS`. The kernel drops the lock when the holder's file is
    closed or its process dies, however it dies: a lock file left behind by a
    killed process is reclaimed by the next one that asks, with nothing to
    clean. Daemons started by the holder do not inherit the lock (``Popen``
    closes other file descriptors), so it ends with the holder.
    """

    def __init__(
        self,
        locks: Path = PORT_LOCKS,
        first: int = PORT_RANGE[0],
        end: int = PORT_RANGE[1],
        size: int = PORT_BLOCK,
    ) -> None:
        """Reserve the first block that no other process holds, starting at a random one.

        Raises:
            RuntimeError: every block is held.
        """
        locks.mkdir(parents=True, exist_ok=True)
        count = (end - first) // size
        start = int.from_bytes(os.urandom(2), "big") % count
        for i in [(start + k) % count for k in range(count)]:
            fd = os.open(locks / f"block-{i}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for a person looking
            self._fd: int | None = fd
            self.pid = os.getpid()
            self.index = i
            self.ports = range(first + i * size, first + (i + 1) * size)
            self._next = 0
            self._lock = threading.Lock()
            return
        raise RuntimeError(f"all {count} port blocks under {locks} are held by other processes")

    def take(self) -> int:
        """The block's next port that nothing listens on right now (round and round).

        Raises:
            RuntimeError: every port of the block is in use.
        """
        with self._lock:
            for _ in self.ports:
                port = self.ports[self._next]
                self._next = (self._next + 1) % len(self.ports)
                if _bindable(port):
                    return port
        raise RuntimeError(f"every port of {self.ports} is in use")

    def release(self) -> None:
        """Give the block back (twice is fine)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


# One block per process, reserved on first use: the reservation belongs to the
# process (the kernel holds it for the process), not to any one caller.
_block: PortBlock | None = None
_block_guard = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, from this process's block.

    No other process using this module is handed the same port while this one
    runs, so a daemon started on it does not race another's.
    """
    global _block
    with _block_guard:
        # A forked child shares its parent's lock and block; it reserves its own.
        if _block is None or _block.pid != os.getpid():
            _block = PortBlock()
            atexit.register(_block.release)
        block = _block
    return block.take()


def wait_until(
    check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll ``check`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


class Daemon:
    """One ``arko-master`` or ``arko-slave`` subprocess with its log file."""

    def __init__(
        self,
        kind: str,
        port: int,
        args: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        program: Sequence[str] = (),
        listen_host: str | None = LOOPBACK,
    ) -> None:
        """``program`` replaces ``python -m arko.<kind>``, e.g. with the installed
        ``arko-slave`` script, whose import path is what a user really gets.
        ``listen_host=None`` leaves ``--listen_host`` at the daemon's default,
        the one a user gets (every interface); it is still dialled on 127.0.0.1."""
        self.kind = kind
        self.credentials = credentials
        self.port = port
        # Dialled where it listens when that is a loopback ("[::1]"), else on 127.0.0.1.
        dial = listen_host if listen_host and is_loopback(listen_host) else LOOPBACK
        self.address = f"{dial}:{port}"
        self.args = [
            *(program or (sys.executable, "-m", f"arko.{kind}")),
            "--port",
            str(port),
            *(("--listen_host", listen_host) if listen_host else ()),
            "--log_format",
            "json",
            *args,
        ]
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        """Launch the process (logs appended to ``log_path``)."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd
            )
        return self

    @property
    def pid(self) -> int:
        """The process id (the daemon must have been started)."""
        assert self.proc is not None, "daemon not started"
        return self.proc.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        """Everything the daemon printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Parsed JSON log events, optionally only those called ``name``."""
        out = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and (name is None or event.get("event") == name):
                    out.append(event)
        return out

    def wait_for_event(self, name: str, timeout: float = 15.0, count: int = 1) -> dict[str, Any]:
        """Wait until the log holds ``count`` events called ``name``; return the last."""

        def seen() -> dict[str, Any] | None:
            # Whether it runs is asked before the log is read: a daemon that
            # logs the event and exits at once (a slave refused) has written
            # it by then, and is found rather than reported dead.
            running = self.alive()
            found = self.events(name)
            if len(found) >= count:
                return found[count - 1]
            if not running:
                self._check_running()
            return None

        return wait_until(seen, timeout, f"{self.kind} log event {name!r}")

    def _check_running(self) -> None:
        if not self.alive():
            code = self.proc.returncode if self.proc else None
            raise RuntimeError(f"{self.kind} exited ({code}); its log:\n{self.log_text()[-4000:]}")

    def wait_serving(self, timeout: float = 15.0) -> Daemon:
        """Wait until the daemon's own health check answers SERVING."""
        with self.channel() as channel:
            stub = health_pb2_grpc.HealthStub(channel)

            def serving() -> bool:
                self._check_running()
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                except grpc.RpcError:
                    return False
                return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

            wait_until(serving, timeout, f"{self.kind} on {self.address} to serve")
        return self

    def channel(self) -> grpc.Channel:
        """A blocking channel to the daemon, over TLS when it was given credentials."""
        if self.credentials is None:
            return grpc.insecure_channel(self.address)
        return grpc.secure_channel(self.address, self.credentials)

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to this daemon's own PID."""
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL if it lingers; return the exit status."""
        if self.proc is None:
            return None
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL, the crash a daemon cannot clean up after."""
        if self.proc is not None and self.alive():
            self.signal(signal.SIGKILL)
            self.proc.wait(10)


class Fleet:
    """Starts masters and slaves in one folder and stops all of them, by PID, at the end.

    Its masters share the fleet's database unless given another: a file in the
    folder, or with ``master_db="postgresql"`` (default: ``ARKO_TEST_MASTER_DB``)
    a PostgreSQL database made on first use and dropped after the daemons stop.
    """

    def __init__(self, workdir: Path, master_db: str | None = None) -> None:
        self.workdir = workdir
        self.master_db = master_db or master_db_kind()
        self.daemons: list[Daemon] = []
        self._databases: dict[str, Path | str] = {}

    def database(self, name: str = "arko") -> Path | str:
        """The fleet's database called ``name`` (``arko`` is the masters' default).

        The same name gives the same database all along the fleet, so a master
        restarted on it finds what the last one left; another name gives
        another, empty one (``<name>.db`` in the folder, or a new PostgreSQL
        database).

        Raises:
            PostgresUnavailable: on PostgreSQL, the server does not answer.
        """
        if name not in self._databases:
            if self.master_db == "postgresql":
                self._databases[name] = create_postgres_database()
            else:
                self._databases[name] = self.workdir / f"{name}.db"
        return self._databases[name]

    def query(self, sql: str, *args: object, db: Path | str | None = None) -> list[tuple[Any, ...]]:
        """The rows of ``sql`` (``?`` placeholders) on ``db``, by default the fleet's database."""
        return query(db or self.database(), sql, *args)

    def journal(self, master: Daemon) -> Path:
        """The job journal folder of a master started on the fleet's default database."""
        db = self.database()
        if is_postgres_url(db):
            return self.workdir / f"arko-master-{master.port}.journal"
        return Path(f"{db}.journal")

    def master(
        self,
        *args: str,
        port: int | None = None,
        db: Path | str | None = None,
        wait: bool = True,
        env: dict[str, str] | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        listen_host: str | None = LOOPBACK,
    ) -> Daemon:
        """Start a master (on the fleet's database unless ``db``, a file or URL, is given).

        ``listen_host=None`` leaves ``--listen_host`` at its default (see :class:`Daemon`).
        """
        port = port or free_port()
        db = db or self.database()
        flags = ["--db", str(db), *args]
        daemon = self._add("master", port, flags, env, credentials, listen_host)
        return daemon.wait_serving() if wait else daemon

    def slave(
        self,
        master: Daemon | Sequence[Daemon] | None,
        *args: str,
        port: int | None = None,
        wait: bool = True,
        env: dict[str, str] | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        listen_host: str | None = LOOPBACK,
    ) -> Daemon:
        """Start a slave; with masters it registers with each and this waits for all of them.

        ``listen_host=None`` leaves ``--listen_host`` at its default (see :class:`Daemon`).
        """
        port = port or free_port()
        masters = [master] if isinstance(master, Daemon) else list(master or ())
        link = ["--master", ",".join(x.address for x in masters)] if masters else ["--mode", "rpc"]
        daemon = self._add("slave", port, [*link, *args], env, credentials, listen_host)
        if wait:
            daemon.wait_serving()
            if masters:
                daemon.wait_for_event("registered", count=len(masters))
        return daemon

    def _add(
        self,
        kind: str,
        port: int,
        args: list[str],
        env: dict[str, str] | None,
        credentials: grpc.ChannelCredentials | None = None,
        listen_host: str | None = LOOPBACK,
    ) -> Daemon:
        log = self.workdir / f"{kind}-{port}-{len(self.daemons)}.log"
        daemon = Daemon(
            kind,
            port,
            args,
            log,
            env=env,
            cwd=self.workdir,
            credentials=credentials,
            listen_host=listen_host,
        )
        daemon.start()
        self.daemons.append(daemon)
        return daemon

    def stop_all(self) -> None:
        """Stop every daemon this fleet started, newest first, then drop its PostgreSQL
        databases."""
        try:
            for daemon in reversed(self.daemons):
                daemon.stop()
        finally:
            made = [db for db in self._databases.values() if is_postgres_url(db)]
            self._databases.clear()
            for url in made:
                drop_postgres_database(str(url))

    @contextlib.contextmanager
    def running(self) -> Iterator[Fleet]:
        """Context that stops every daemon on exit, whatever happened."""
        try:
            yield self
        finally:
            self.stop_all()
