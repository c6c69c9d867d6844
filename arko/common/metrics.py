"""Serve a daemon's Prometheus registry over HTTP on ``--metrics_port``.

Each daemon builds its own ``CollectorRegistry`` (never the process-wide
default), so two daemons or two tests in one process never mix counts.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler

import structlog
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from arko.common.errors import StartupError
from arko.common.listen import Bind, bind_for, url_host

log = structlog.get_logger("arko.metrics")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Say nothing: a scrape every few seconds would drown the daemon's own log."""


class _MetricsServer(ThreadingWSGIServer):
    """prometheus-client's threaded WSGI server, bound as ``--listen_host`` says.

    ``start_http_server`` takes an address but no socket options, so on the
    wildcard its IPv6 socket would serve IPv4 or not depending on the
    machine's default (``net.ipv6.bindv6only``).
    """

    def __init__(self, bind: Bind, port: int) -> None:
        self.address_family = bind.family  # read by TCPServer.__init__ to make the socket
        self._dual_stack = bind.dual_stack
        super().__init__((bind.host, port), _QuietHandler)

    def server_bind(self) -> None:
        if self._dual_stack:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> Callable[[], None]:
    """Serve ``registry`` at ``http://host:port/metrics`` on a thread; return its stop.

    The server runs on its own thread, so a scrape never waits on the event
    loop and the event loop never waits on a scrape.

    Raises:
        StartupError: the port cannot be bound.
    """
    try:
        server = _MetricsServer(bind_for(host, port), port)
    except OSError as exc:
        raise StartupError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from None
    server.set_app(make_wsgi_app(registry))
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    log.info("metrics_serving", url=f"http://{url_host(host)}:{server.server_port}/metrics")

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop
