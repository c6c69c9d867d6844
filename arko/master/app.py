"""The master daemon: store, registry, job records, executor and server, run together.

Wiring only. Each part is given its collaborators as constructor arguments,
built in dependency order: the coordinator (the other masters, or
:data:`~arko.master.cluster.coordination.ALONE`), the job recorder, the
registry, the job queue, the executor, the job service, then the servers.
The master's long-running loops run in one :class:`asyncio.TaskGroup`: should
one fail, the master logs ``master_loop_failed`` and stops with exit status 1
rather than run on half alive.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from grpc_health.v1 import health_pb2

from arko.common.errors import StartupError
from arko.common.lifecycle import Lifecycle, cancel_task
from arko.common.metrics import serve_metrics
from arko.common.server import create_server
from arko.common.tls import open_channel
from arko.gen import execution_pb2, execution_pb2_grpc, register_pb2, register_pb2_grpc
from arko.master.admin import Admin
from arko.master.api.admin import AdminServicer
from arko.master.api.auth import ClientTokenInterceptor
from arko.master.api.jobs import JobsServicer
from arko.master.api.secrets import SecretsServicer
from arko.master.api.servicers import ExecutionServicer, RegisterServicer
from arko.master.cluster.coordination import ALONE, Coordinator
from arko.master.cluster.slave_feed import SlaveFeed
from arko.master.jobs.executor import Executor, Limits
from arko.master.jobs.live import LiveJob, LiveJobs
from arko.master.jobs.queue import JobQueue
from arko.master.jobs.records import JobRecorder, Lineage
from arko.master.jobs.scheduler import SCHEDULERS, Scheduler
from arko.master.jobs.service import JobService, Submission
from arko.master.jobs.tokens import JobTokens
from arko.master.metrics import MasterMetrics
from arko.master.secrets.references import SecretResolver
from arko.master.secrets.sealing import load_key
from arko.master.secrets.vault import Vault
from arko.master.settings import MasterSettings
from arko.master.slaves.admission import RateLimit
from arko.master.slaves.probe import Pinger, Prober
from arko.master.slaves.registry import Registry
from arko.master.slaves.slave import CHANNEL_OPTIONS
from arko.master.store.lock import HeldLock
from arko.master.store.rows import JobRow
from arko.master.store.sql import PostgresStore, SqliteStore, is_postgres, open_store, shown_url
from arko.master.triggers.clock import Clock
from arko.master.triggers.hooks import Hooks, Trigger
from arko.master.triggers.overview import LastJob, Overview
from arko.master.triggers.seams import JobStarter
from arko.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    secrets_pb2,
    secrets_pb2_grpc,
)

if TYPE_CHECKING:  # imported at run time only with --http_port (see _start)
    from arko.master.api.http.server import HttpServer
    from arko.master.triggers.statuses import CommitStatuses

log = structlog.get_logger("arko.master")

_SERVING = health_pb2.HealthCheckResponse.SERVING
# SQLite databases without a file, so nothing to lock beside.
_IN_MEMORY = ("", ":memory:")


def enforced(*checks: tuple[bool, str]) -> str:
    """What a caller must present, for the start-up log: ``none`` when nothing.

    Mutual TLS counts: its server refuses any caller without a certificate
    signed by the CA, on every service, before a token is even looked at.
    """
    return " + ".join(name for on, name in checks if on) or "none"


class Master(Lifecycle):
    """One running master. ``async with Master(settings) as m: await m.wait()``."""

    kind = "master"

    def __init__(self, settings: MasterSettings, scheduler: Scheduler | None = None) -> None:
        super().__init__(settings.grace)
        self.settings = settings
        self.port = 0
        self._scheduler = scheduler or SCHEDULERS[settings.policy]()
        self._store: SqliteStore | PostgresStore | None = None
        self._registry: Registry | None = None
        self._recorder: JobRecorder | None = None
        self._loops: asyncio.Task[None] | None = None
        self._jobs: JobService | None = None
        self._jobs_stopped: asyncio.Task[None] | None = None
        self._http: HttpServer | None = None
        self._http_stopped: asyncio.Task[None] | None = None
        self._coordinator: Coordinator = ALONE
        self._locks: list[HeldLock] = []
        self._statuses: CommitStatuses | None = None

        self._stop_metrics: Callable[[], None] | None = None

    def _journal_dir(self) -> Path:
        s = self.settings
        if s.journal_dir:
            return Path(s.journal_dir)
        if is_postgres(s.db):
            # No file to sit beside: one folder per listening port, so two
            # masters on one machine never share a journal.
            return Path(f"arko-master-{s.port}.journal")
        return Path(f"{s.db}.journal")

    async def start(self) -> None:
        """Open the store, recover job records, restore slaves, serve, ping.

        Raises:
            StartupError: the database, the journal or the port cannot be used.
        """
        try:
            await self._start()
        except BaseException:
            await self._undo_start()
            raise

    async def _undo_start(self) -> None:
        """Stop what a failed start began, loops and gRPC server first, then close the rest.

        The HTTP port is bound after the gRPC server starts; left running, the
        server and the ping loop would outlive the event loop and print
        tracebacks after the one ``startup_failed`` line.
        """
        await cancel_task(self._loops)
        if self._built is not None:
            await self._built.server.stop(None)
        await self._close_resources()

    def _lock_database(self) -> None:
        """Lock the SQLite file before it is opened (see :mod:`.lock`).

        PostgreSQL needs none: masters on one server database form a fleet.

        Raises:
            StartupError: another master holds it, naming it.
        """
        db = self.settings.db
        if not is_postgres(db) and db not in _IN_MEMORY:
            self._hold(HeldLock(Path(f"{db}.lock"), f"database {db}", "give it another --db"))

    def _lock_journal(self) -> None:
        """Lock the job journal before it is replayed; made only once the database
        opened, so a failed start leaves no empty journal folder behind.

        Raises:
            StartupError: another master holds it, naming it.
        """
        journal = self._journal_dir()
        try:
            journal.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupError(f"cannot use job journal {journal}: {exc}") from None
        self._hold(
            HeldLock(journal / "master.lock", f"job journal {journal}", "another --journal_dir")
        )

    def _hold(self, lock: HeldLock) -> None:
        lock.take(self.settings.port)
        self._locks.append(lock)

    async def _start(self) -> None:
        s = self.settings
        tls = s.tls_config()
        join_token, client_token = s.tokens()
        sealer = load_key(s.secrets_key_file) if s.secrets_key_file else None
        triggers = self._load_triggers()
        self._lock_database()
        self._store = await open_store(s.db)
        vault = Vault(self._store, sealer)
        self._lock_journal()
        live = LiveJobs()
        mutual = tls is not None and tls.mutual
        name = self.name()
        coordinator = self._coordinator = await self._coordinate(name)
        metrics = MasterMetrics() if s.metrics_port else None
        self._recorder = JobRecorder(
            self._store,
            self._journal_dir(),
            s.job_flush_interval,
            on_saved=self._saved(live, coordinator),
            coordinator=coordinator,
        )
        try:
            await self._recorder.recover()
        except OSError as exc:
            raise StartupError(f"cannot use job journal {self._journal_dir()}: {exc}") from None
        self._registry = Registry(
            self._store,
            Prober(s.ping_timeout, lambda address: open_channel(address, tls, CHANNEL_OPTIONS)),
            s.forget_after,
            join_token,
            name,
            coordinator,
            s.max_slaves,
            metrics,
        )
        await self._registry.load()
        queue = JobQueue(self._registry, self._scheduler, s.queue_timeout, coordinator)
        executor = Executor(
            self._registry,
            self._scheduler,
            s.connect_timeout,
            Limits(s.max_params, s.max_param_bytes),
            queue,
            coordinator,
        )
        self._jobs = JobService(
            executor,
            self._recorder,
            self._store,
            live,
            s.max_output_bytes,
            s.job_timeout,
            coordinator,
            on_finished=self._finished(metrics),
            secrets=SecretResolver(vault),
            advertise_address=s.advertise_address,
        )
        await coordinator.join(self._registry)  # the first leases, before the first ping sweep
        self._serve_metrics(metrics, self._registry)
        start = self._starter(self._jobs)
        clock = Clock(s.schedule, start, self._store, name)
        overview = Overview(s.trigger, clock, self._last_job(self._jobs))
        admin = AdminServicer(
            Admin(self._registry, self._store, self._recorder.flush, s.connect_timeout), overview
        )
        admin_name = admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name
        protected = join_token is None and not s.open_registration and not mutual
        if protected:
            log.warning(
                "registration_protected",
                message="no join token: only loopback peers may register slaves; set a "
                "join token (ARKO_MASTER_JOIN_TOKEN or --join_token_file) to let other "
                "hosts register, or pass --open_registration",
            )
        register = RegisterServicer(
            self._registry, join_token, protected, RateLimit(s.register_rate_limit)
        )
        execution = ExecutionServicer(self._jobs)
        jobs = JobsServicer(self._jobs, JobTokens(live, self._store.get_job, s.max_job_depth))
        secrets = SecretsServicer(vault)
        execution_name = execution_pb2.DESCRIPTOR.services_by_name["Execution"].full_name
        jobs_name = jobs_pb2.DESCRIPTOR.services_by_name["Jobs"].full_name
        secrets_name = secrets_pb2.DESCRIPTOR.services_by_name["Secrets"].full_name
        guarded = (execution_name, jobs_name, admin_name, secrets_name)
        # Always on: a call with a job token is kept to its job's children
        # even when clients need no bearer token.
        interceptors = [ClientTokenInterceptor(client_token, guarded)]
        services = [
            (
                register_pb2.DESCRIPTOR.services_by_name["Register"].full_name,
                lambda srv: register_pb2_grpc.add_RegisterServicer_to_server(register, srv),
            ),
            (
                execution_name,
                lambda srv: execution_pb2_grpc.add_ExecutionServicer_to_server(execution, srv),
            ),
            (jobs_name, lambda srv: jobs_pb2_grpc.add_JobsServicer_to_server(jobs, srv)),
            (admin_name, lambda srv: admin_pb2_grpc.add_AdminServicer_to_server(admin, srv)),
            (
                secrets_name,
                lambda srv: secrets_pb2_grpc.add_SecretsServicer_to_server(secrets, srv),
            ),
        ]
        built = create_server(
            s.listen_host,
            s.port,
            services,
            tls,
            interceptors=interceptors,
            max_message_bytes=s.max_message_bytes,
        )
        self._built, self.port = built, built.port
        await built.server.start()
        for lock in self._locks:
            lock.record(self.port)
        self._recorder.start()
        for service, _ in services:
            await built.health.set(service, _SERVING)
        await built.health.set("", _SERVING)
        pinger = Pinger(self._registry, s.ping_interval, s.ping_concurrency)
        registry = self._registry
        loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "ping-loop": pinger.run,
            "heartbeat": lambda: coordinator.keep_in_step(registry),
            "schedules": clock.run,
        }
        self._loops = asyncio.create_task(self._run_loops(loops), name="master-loops")
        if s.http_port:
            # Imported only when asked for: aiohttp is half of the master's
            # start-up time, which every master without --http_port saves.
            from arko.master.api.http.server import HttpServer, create_app
            from arko.master.triggers.statuses import CommitStatuses

            self._statuses = CommitStatuses(self._jobs.watch, s.public_url)
            hooks = Hooks(triggers, start, self._store, self._statuses.started)
            app = create_app(self._jobs, self._registry, s, client_token, hooks, overview, vault)
            self._http = HttpServer(app, s)
            await self._http.start()
        log.info(
            "master_started",
            port=self.port,
            name=name,
            shared_database=not coordinator.alone,
            db=shown_url(s.db),
            tls="mutual" if mutual else bool(tls),
            registration_requires=enforced(
                (mutual, "client certificate"), (join_token is not None, "join token")
            ),
            execution_requires=enforced(
                (mutual, "client certificate"), (client_token is not None, "bearer token")
            ),
        )

    def _load_triggers(self) -> list[Trigger]:
        """The ``[[trigger]]`` tables with their secrets read.

        Raises:
            StartupError: a secret file cannot be read, or there is no HTTP
                port for the webhooks to arrive on.
        """
        triggers = [Trigger.load(spec) for spec in self.settings.trigger]
        if triggers and not self.settings.http_port:
            raise StartupError(
                f"trigger {triggers[0].spec.name!r}: webhooks arrive on the HTTP port; "
                "set --http_port"
            )
        return triggers

    @staticmethod
    def _starter(jobs: JobService) -> JobStarter:
        """How triggers and schedules start a job: detached, its trigger on record."""

        def start(method: str, params: Mapping[str, str], trigger: str) -> str:
            submission = Submission(method, params, detach=True, lineage=Lineage(trigger=trigger))
            return jobs.submit(submission).id

        return start

    @staticmethod
    def _last_job(jobs: JobService) -> LastJob:
        """The newest job a trigger or schedule started, for listings."""

        async def last(trigger: str) -> JobRow | None:
            rows, _ = await jobs.list(page_size=1, trigger=trigger)
            return rows[0] if rows else None

        return last

    def name(self) -> str:
        """This master's name among those sharing its database: ``--name``, else host:port.

        With ``--port 0`` the port is not known yet, so the process id stands in.
        """
        s = self.settings
        if s.name:
            return s.name
        return f"{socket.gethostname()}:{s.port or f'pid{os.getpid()}'}"

    async def _coordinate(self, name: str) -> Coordinator:
        """The other masters on the database: PostgreSQL's, else this master is alone."""
        s = self.settings
        if not isinstance(self._store, PostgresStore):
            return ALONE
        from arko.master.cluster.postgres import PostgresCoordinator  # asyncpg: PostgreSQL only

        coordinator = PostgresCoordinator(
            s.db,
            name,
            f"{socket.gethostname()}:{s.port}",
            s.master_timeout,
            SlaveFeed(self._store),
            s.heartbeat_interval,
        )
        await coordinator.open()
        return coordinator

    @staticmethod
    def _saved(live: LiveJobs, coordinator: Coordinator) -> Callable[[list[str]], None]:
        """What the recorder tells once records are written: the live jobs, and the others."""

        def saved(job_ids: list[str]) -> None:
            live.saved(job_ids)
            coordinator.saved(job_ids)

        return saved

    @staticmethod
    def _finished(metrics: MasterMetrics | None) -> Callable[[LiveJob], None] | None:
        """What the job service tells of each job that ends: the metrics, when on."""
        if metrics is None:
            return None
        return lambda live: metrics.job_finished(live.job, live.outputs)

    def _serve_metrics(self, metrics: MasterMetrics | None, registry: Registry) -> None:
        """Serve Prometheus metrics on --metrics_port, fed by the registry and jobs."""
        if metrics is None:
            return
        metrics.watch_slaves(registry)
        host = self.settings.listen_host
        self._stop_metrics = serve_metrics(metrics.registry, host, self.settings.metrics_port)

    async def _run_loops(self, loops: dict[str, Callable[[], Coroutine[Any, Any, None]]]) -> None:
        """Run the master's loops in one task group until stopped or one fails.

        A loop that fails is logged as ``master_loop_failed``; the group then
        cancels the others, and the master gives up (exit status 1) rather
        than serve on without, say, its pings or its heartbeats.
        """
        try:
            async with asyncio.TaskGroup() as group:
                for name, loop in loops.items():
                    group.create_task(self._loop(name, loop), name=name)
        except* Exception:
            pass  # each failure was logged by _loop

    async def _loop(self, name: str, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        try:
            await loop()
        except Exception as exc:
            log.error("master_loop_failed", loop=name, error=repr(exc), exc_info=True)
            self._give_up(1)
            raise

    async def _before_drain(self) -> None:
        await cancel_task(self._loops)
        if self._jobs is not None:
            # Detached jobs get the same grace as calls in flight, side by side.
            self._jobs_stopped = asyncio.create_task(self._jobs.stop(self.settings.grace))
        if self._http is not None:
            self._http_stopped = asyncio.create_task(self._http.stop())

    async def _after_drain(self) -> None:
        if self._jobs_stopped is not None:
            await self._jobs_stopped
        if self._http_stopped is not None:
            await self._http_stopped
        await self._close_resources()

    async def _close_resources(self) -> None:
        if self._http is not None:
            await self._http.stop()
        if self._statuses is not None:
            await self._statuses.close()

        if self._stop_metrics is not None:
            self._stop_metrics()
            self._stop_metrics = None
        if self._registry is not None:
            await self._registry.close()
        if self._recorder is not None:
            await self._recorder.close()
            self._recorder = None
        # No job of ours is left: others ping at once.
        await self._coordinator.stop()
        self._coordinator = ALONE
        if self._store is not None:
            await self._store.close()
            self._store = None
        for lock in self._locks:  # last: the journal and the database are closed
            lock.release()
        self._locks.clear()
