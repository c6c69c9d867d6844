"""Serve a daemon's Prometheus registry over HTTP on ``--metrics_port``.

Each daemon builds its own ``CollectorRegistry`` (never the process-wide
default), so two daemons or two tests in one process never mix counts.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from prometheus_client import CollectorRegistry, start_http_server

from arko.common.errors import StartupError

log = structlog.get_logger("arko.metrics")


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> Callable[[], None]:
    """Serve ``registry`` at ``http://host:port/metrics`` on a thread; return its stop.

    prometheus-client's server runs on its own thread, so a scrape never
    waits on the event loop and the event loop never waits on a scrape.

    Raises:
        StartupError: the port cannot be bound.
    """
    bind = host.strip("[]")
    try:
        server, thread = start_http_server(port, addr=bind, registry=registry)
    except OSError as exc:
        raise StartupError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from None
    log.info("metrics_serving", url=f"http://{host}:{server.server_port}/metrics")

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop
