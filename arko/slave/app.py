"""The slave daemon: serve the plug-in services, register with the master."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from types import TracebackType

import grpc
import structlog
from grpc_health.v1 import health_pb2

from arko.common.errors import StartupError
from arko.common.retry import Backoff
from arko.common.server import create_server
from arko.common.tls import TlsConfig
from arko.gen import register_pb2
from arko.slave.guard import MasterOnly
from arko.slave.plugins import load_services
from arko.slave.registration import GrpcMasterLink, stay_registered
from arko.slave.settings import SlaveSettings

log = structlog.get_logger("arko.slave")

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Slave:
    """One running slave. ``async with Slave(settings) as s: await s.wait()``."""

    def __init__(self, settings: SlaveSettings) -> None:
        self.settings = settings
        self.port = 0
        self.exit_code = 0
        self._registrar: asyncio.Task[None] | None = None
        self._stopper: asyncio.Future[None] | None = None
        self._link: GrpcMasterLink | None = None
        self._stopped = asyncio.Event()
        self._stopping = False
        # Handed to the master at registration; it must present it on every call.
        self._secret = secrets.token_urlsafe(32)
        self._tls: TlsConfig | None = None
        self._join_token: str | None = None

    async def start(self) -> None:
        """Load the plug-ins, serve them, and (standalone) start registering.

        Raises:
            StartupError: unsupported mode or engine, bad plug-in, port taken.
        """
        s = self.settings
        if s.mode == "delegate":
            raise StartupError("--mode delegate is not supported yet; use standalone or rpc")
        services = load_services(s.service, s)
        self._tls = tls = s.tls_config()
        self._join_token = s.join_token_value()
        interceptors: list[grpc.aio.ServerInterceptor] = []
        guarded = s.mode == "standalone" and s.protect
        if guarded:
            mutual = tls is not None and tls.mutual
            interceptors.append(MasterOnly(self._secret, s.master_name if mutual else None))
        built = create_server(
            s.listen_host,
            s.port,
            [(x.name, x.add) for x in services],
            tls,
            interceptors=interceptors,
        )
        self._server, self._health, self.port = built.server, built.health, built.port
        await self._health.set("", _NOT_SERVING)  # until every service is ready
        await self._server.start()
        for service in services:
            await self._health.set(service.name, _SERVING)
        await self._health.set("", _SERVING)
        log.info(
            "slave_started",
            port=self.port,
            mode=s.mode,
            services=[x.name for x in services],
            tls="mutual" if tls and tls.mutual else bool(tls),
            master_only=guarded,
        )
        if s.mode == "standalone":
            self._registrar = asyncio.create_task(self._register(), name="register")

    async def _register(self) -> None:
        s = self.settings
        self._link = GrpcMasterLink(s.master, s.register_timeout, self._tls)
        config = register_pb2.SlaveConfig(
            host=s.advertise_host,
            port=s.advertise_port or self.port,
            token=self._join_token or "",
            call_secret=self._secret,
        )
        try:
            await stay_registered(
                self._link, config, Backoff(initial=0.2, maximum=s.register_backoff_max)
            )
        except grpc.aio.AioRpcError as exc:
            log.error(
                "register_refused", master=s.master, code=exc.code().name, reason=exc.details()
            )
            self.exit_code = 1
            self._stopper = asyncio.ensure_future(self.stop())

    async def wait(self) -> None:
        """Return once :meth:`stop` has finished."""
        await self._stopped.wait()

    async def stop(self) -> None:
        """Set NOT_SERVING, let running calls finish within the grace period; idempotent."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        log.info("slave_stopping", grace=self.settings.grace)
        if self._registrar is not None and self._registrar is not asyncio.current_task():
            self._registrar.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._registrar
        if self._link is not None:
            await self._link.close()
        if hasattr(self, "_server"):
            await self._health.enter_graceful_shutdown()
            await self._server.stop(self.settings.grace)
        log.info("slave_stopped")
        self._stopped.set()

    async def __aenter__(self) -> Slave:
        await self.start()
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.stop()
