"""Which ``Host`` headers the master's HTTP server answers: a guard against DNS rebinding.

A web page on ``evil.example`` can make its own name resolve to 127.0.0.1;
the browser then treats the master as that page's origin and lets the page
read and post to it, token-free masters included. Such requests still carry
``Host: evil.example``, so answering only Hosts that name the master stops
them. A Host that is an IP address cannot be rebound (the page's origin is
then that address itself), so on a wildcard listen host, where the master
answers at every address the machine has, any address is accepted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import structlog
from aiohttp import web
from yarl import URL

from arko.common.listen import ANY_HOST
from arko.common.tls import is_loopback
from arko.master.api.http.api import Handler

log = structlog.get_logger("arko.master.api.http")

# The names a loopback listener is reached by on this machine.
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_name(header: str) -> str | None:
    """The name in a ``Host`` header, lower-cased, without port or brackets; None if malformed."""
    try:
        name = URL(f"http://{header.strip()}/").raw_host
    except ValueError:
        return None
    return name.lower() if name else None


class HostGuard:
    """Refuses requests whose ``Host`` names anything but this master.

    Args:
        listen_host: ``--listen_host``; a wildcard accepts any IP address and ``localhost``.
        allowed: ``--http_allowed_hosts``, names accepted besides.
    """

    def __init__(self, listen_host: str, allowed: Iterable[str]) -> None:
        listen = listen_host.strip("[]").lower()
        self._any_address = listen in ANY_HOST
        names = {name.strip("[]").lower() for name in allowed}
        if self._any_address:
            names |= _LOOPBACK_NAMES
        else:
            names.add(listen)
            if is_loopback(listen):
                names |= _LOOPBACK_NAMES
        self._names = frozenset(names)

    def accepts(self, header: str | None) -> bool:
        """Whether a request with this ``Host`` header (None: none sent) may be answered.

        A request without a Host (HTTP/1.0) comes from no browser, so no page
        can have rebound it.
        """
        if header is None:
            return True
        name = host_name(header)
        if name is None:
            return False
        return name in self._names or (self._any_address and _is_address(name))

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """421 before any handler runs for a Host that is not the master's."""
        header = request.headers.get("Host")
        if self.accepts(header):
            return await handler(request)
        shown = (header or "")[:100]
        log.warning("http_host_refused", host=shown, peer=request.remote)
        return web.Response(
            status=421,
            text=f"this master does not answer to Host {shown!r}; if that is its name, add it "
            "to --http_allowed_hosts (or ARKO_MASTER_HTTP_ALLOWED_HOSTS)\n",
        )
