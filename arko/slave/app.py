"""The slave daemon: serve the plug-in services, register with its masters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import structlog
from grpc_health.v1 import health_pb2

from arko import sdk
from arko.common.errors import StartupError
from arko.common.lifecycle import Lifecycle, cancel_task
from arko.common.metrics import serve_metrics
from arko.common.retry import Backoff
from arko.common.server import create_server
from arko.common.tls import TlsConfig
from arko.gen import register_pb2
from arko.slave.builtin.podman import check_podman
from arko.slave.capacity import CapacityGate, StatusServicer
from arko.slave.guard import MasterOnly
from arko.slave.metrics import CallMetrics, SlaveMetrics
from arko.slave.plugins import Service, load_services
from arko.slave.registration import (
    CallSecret,
    GrpcMasterLink,
    RegistrationNonces,
    new_call_secret,
    stay_registered_with_all,
)
from arko.slave.settings import SlaveSettings
from arko.v1 import slave_pb2
from arko.v1.slave_pb2_grpc import add_SlaveServicer_to_server as add_status

log = structlog.get_logger("arko.slave")

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Slave(Lifecycle):
    """One running slave. ``async with Slave(settings) as s: await s.wait()``."""

    kind = "slave"

    def __init__(self, settings: SlaveSettings) -> None:
        super().__init__(settings.grace)
        self.settings = settings
        self.port = 0
        self._registrar: asyncio.Task[None] | None = None
        self._stopper: asyncio.Future[None] | None = None
        self._links: list[GrpcMasterLink] = []
        # Handed to the masters at registration; they must present it on every
        # call. Made in start(), once the join token it may derive from is read.
        self._secret = CallSecret("", "")
        self._nonces = RegistrationNonces()
        self._tls: TlsConfig | None = None
        self._join_token: str | None = None
        self._stop_metrics: Callable[[], None] | None = None

    async def start(self) -> None:
        """Load the plug-ins, serve them, and (standalone) start registering.

        Raises:
            StartupError: unsupported mode or engine, bad plug-in, port taken.
        """
        s = self.settings
        if s.mode == "delegate":
            raise StartupError("--mode delegate is not supported yet; use standalone or rpc")
        # Told now, not at the first containerised build.
        engine = await check_podman() if s.engine == "podman" else s.engine
        services = load_services(s.service, s)
        self._tls = tls = s.tls_config()
        self._join_token = s.join_token_value()
        self._secret = new_call_secret(self._join_token)
        # Handlers' child jobs (arko.sdk.JobContext) reach the masters this
        # slave registers with, over the same TLS, unless a job names its master.
        sdk.configure(s.master, tls)
        interceptors: list[grpc.aio.ServerInterceptor] = []
        guarded = s.mode == "standalone" and s.protect
        if guarded:
            mutual = tls is not None and tls.mutual
            interceptors.append(MasterOnly(self._secret.secret, s.master_name if mutual else None))
        # Inside the guard: a stranger is refused as a stranger, never told "full".
        gate = CapacityGate(s.capacity)
        interceptors.append(gate)
        status = StatusServicer(gate, s.labels(), self._nonces.confirm)

        if s.metrics_port:
            metrics = SlaveMetrics(s.capacity)
            interceptors.append(CallMetrics(metrics, [x.name for x in services]))
            self._stop_metrics = serve_metrics(metrics.registry, s.listen_host, s.metrics_port)
        built = create_server(
            s.listen_host,
            s.port,
            [
                (x.name, x.add)
                for x in [*services, Service.of(slave_pb2.DESCRIPTOR, "Slave", status, add_status)]
            ],
            tls,
            interceptors=interceptors,
        )
        self._built, self.port = built, built.port
        await built.health.set("", _NOT_SERVING)  # until every service is ready
        await built.server.start()
        for service in services:
            await built.health.set(service.name, _SERVING)
        await built.health.set("", _SERVING)
        log.info(
            "slave_started",
            port=self.port,
            mode=s.mode,
            engine=engine,
            services=[x.name for x in services],
            tls="mutual" if tls and tls.mutual else bool(tls),
            master_only=guarded,
            capacity=s.capacity,
            labels=s.labels(),
        )
        if s.mode == "standalone":
            self._registrar = asyncio.create_task(self._register(), name="register")

    async def _register(self) -> None:
        s = self.settings
        self._links = [GrpcMasterLink(x, s.register_timeout, self._tls) for x in s.master]
        config = register_pb2.SlaveConfig(
            host=s.advertise_host,
            port=s.advertise_port or self.port,
            token=self._join_token or "",
            call_secret=self._secret.secret,
            call_nonce=self._secret.nonce,
        )
        backoff = Backoff(initial=0.2, maximum=s.register_backoff_max)
        await stay_registered_with_all(self._links, config, backoff, self._nonces)
        # Every master refused this slave (each logged why): nothing can reach it.
        self.exit_code = 1
        self._stopper = asyncio.ensure_future(self.stop())

    async def _before_drain(self) -> None:
        await cancel_task(self._registrar)
        for link in self._links:
            await link.close()

    async def _after_drain(self) -> None:
        await sdk.close()  # no handler is left to start a child
        if self._stop_metrics is not None:
            self._stop_metrics()
            self._stop_metrics = None
