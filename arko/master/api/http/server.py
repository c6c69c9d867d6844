"""The master's HTTP server: the JSON API and the web UI on ``--http_port``.

It runs on the master's event loop beside the gRPC server and follows the
same rules: ``--tls`` serves HTTPS with the same certificate, ``--ca_file``
makes it require client certificates signed by that CA, and the client token
guards the API (:mod:`arko.master.api.http.api`).
"""

from __future__ import annotations

import ssl
from pathlib import Path

import structlog
from aiohttp import web

from arko.common.errors import StartupError
from arko.common.listen import listen_socket, url_host
from arko.master.api.http.api import API, Api
from arko.master.api.http.hosts import HostGuard
from arko.master.api.http.safety import add_security_headers, last_resort
from arko.master.api.http.triggers import TriggerRoutes
from arko.master.jobs.service import JobService
from arko.master.secrets.vault import Vault
from arko.master.settings import MasterSettings
from arko.master.slaves.registry import Registry
from arko.master.triggers.hooks import Hooks
from arko.master.triggers.overview import Overview

log = structlog.get_logger("arko.master.api.http")

# The built UI: inside the package when installed from a wheel or sdist (setup.py
# copies it there), else where `make ui` puts it in a checkout. The package's
# copy wins: a checkout's editable install has none, so there `make ui` rebuilds
# what is served.
PACKAGED_UI = Path(__file__).resolve().parent / "ui"
CHECKOUT_UI = Path(__file__).resolve().parents[4] / "ui" / "dist"
_NOT_BUILT = (
    "The arko web UI is not built. Build it with `make ui` (needs Node.js 20 and npm: "
    "`apt-get install nodejs npm` or https://nodejs.org), then reload. "
    "The JSON API is at /api/v1/ and its description at /openapi.json."
)


def ssl_context(settings: MasterSettings) -> ssl.SSLContext | None:
    """HTTPS with the gRPC server's certificate; mutual when a CA is given. None without TLS."""
    if not settings.tls:
        return None
    assert settings.cert_file is not None and settings.key_file is not None, "checked at load"
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.cert_file, settings.key_file)
    if settings.ca_file is not None:
        context.load_verify_locations(cafile=settings.ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _ui_file(root: Path, tail: str) -> Path | None:
    """The built file at ``tail``, else ``index.html``; None when the UI is not built.

    The UI may be rebuilt while the master runs, so the folder is looked at
    on each request (a few stat calls). A path no file can have (a NUL, a
    name too long) is the client's error, refused by name.
    """
    try:
        wanted = (root / tail).resolve()
        if wanted.is_file() and wanted.is_relative_to(root):
            return wanted
    except ValueError:
        raise web.HTTPBadRequest(text="the path holds a NUL character") from None
    except OSError as exc:
        raise web.HTTPBadRequest(text=f"not a valid path: {exc.strerror}") from None
    index = root / "index.html"
    return index if index.is_file() else None


def _ui_routes(app: web.Application, ui_dir: Path) -> None:
    """The UI's files, and ``index.html`` for any other page (history-mode routing).

    A deep link such as ``/jobs/<id>`` is a page of the single-page app, so a
    reload must get the app, which then shows that page.
    """
    root = ui_dir.resolve()

    async def page(request: web.Request) -> web.StreamResponse:
        if request.path.startswith(f"{API}/"):
            raise web.HTTPNotFound(text=f"no API route {request.path}")
        found = _ui_file(root, request.match_info["tail"])
        if found is None:
            return web.Response(status=404, text=_NOT_BUILT)
        headers = {"Cache-Control": "no-cache"} if found.name == "index.html" else {}
        return web.FileResponse(found, headers=headers)

    app.router.add_get("/{tail:.*}", page)


def built_ui_dir(settings: MasterSettings) -> Path:
    """``--ui_dir`` when given, else the package's built UI, else the checkout's."""
    if settings.ui_dir:
        return Path(settings.ui_dir)
    return PACKAGED_UI if PACKAGED_UI.is_dir() else CHECKOUT_UI


def create_app(
    jobs: JobService,
    registry: Registry,
    settings: MasterSettings,
    client_token: str | None,
    hooks: Hooks,
    overview: Overview,
    vault: Vault | None = None,
) -> web.Application:
    """The master's HTTP application: API routes first, then the UI's catch-all.

    The Host check runs before the API's own middlewares, so a refused Host
    never reaches the token check or a handler.
    """
    app = web.Application(client_max_size=settings.max_message_bytes)
    guard = HostGuard(settings.listen_host, settings.http_allowed_hosts)
    app.middlewares.extend([last_resort, guard.middleware])
    app.on_response_prepare.append(add_security_headers)
    Api(jobs, registry, client_token, settings.connect_timeout, vault).add_routes(app)
    TriggerRoutes(hooks, overview).add_routes(app)
    _ui_routes(app, built_ui_dir(settings))
    return app


# Seconds HTTP requests get on shutdown beyond the jobs' grace.
SHUTDOWN_MARGIN = 2.0


class HttpServer:
    """The HTTP side of a master: ``await start()``, later ``await stop()`` (idempotent)."""

    def __init__(self, app: web.Application, settings: MasterSettings) -> None:
        # Open requests (event streams, ?wait=true runs) end when their job
        # does, and jobs get the grace period, as gRPC calls do. HTTP waits a
        # little longer, so a stream can deliver the job's final event: with
        # equal timeouts the two race, and aiohttp's shutdown then fails with
        # InvalidStateError (its wait timed out as the handler completed).
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=settings.grace + SHUTDOWN_MARGIN
        )
        self._settings = settings
        self._stopped = False

    async def start(self) -> None:
        """Bind ``--http_port`` on ``--listen_host`` and serve."""
        s = self._settings
        await self._runner.setup()
        context = ssl_context(s)
        try:
            sock = listen_socket(s.listen_host, s.http_port)
        except OSError as exc:
            raise StartupError(f"cannot serve HTTP on port {s.http_port}: {exc.strerror}") from None
        await web.SockSite(self._runner, sock, ssl_context=context).start()
        scheme = "https" if context else "http"
        url = f"{scheme}://{url_host(s.listen_host)}:{s.http_port}/"
        log.info("http_started", port=s.http_port, url=url)

    async def stop(self) -> None:
        """Close the listener and the open requests (event streams end here)."""
        if self._stopped:
            return
        self._stopped = True
        await self._runner.cleanup()
