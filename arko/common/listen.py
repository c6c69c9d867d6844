"""How the daemons' HTTP listeners (API, metrics) bind ``--listen_host``, and the URL they print.

gRPC reads the default ``[::]`` as "every interface, IPv4 and IPv6". A plain
IPv6 socket on "::" does not mean that everywhere: asyncio sets IPV6_V6ONLY
on it, and BSDs and ``net.ipv6.bindv6only=1`` make that the default, so
127.0.0.1 would be refused while the daemon prints a 127.0.0.1 URL. So the
IPv6 wildcard binds one dual-stack socket (IPv4 arrives as mapped
addresses), and 0.0.0.0 on a machine without IPv6; any other host binds as
given.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

# Hosts that mean "every interface"; "::" (also written "[::]") includes IPv4.
_IPV6_ANY = ("::", "")
ANY_HOST = frozenset({*_IPV6_ANY, "0.0.0.0"})
"""Listen hosts that mean every interface (bare, without brackets)."""


@dataclass(frozen=True, slots=True)
class Bind:
    """Where and how a TCP listener binds for one ``--listen_host``."""

    host: str
    """The bare address to bind (no brackets)."""
    family: socket.AddressFamily
    """The socket's address family."""
    dual_stack: bool
    """An IPv6 socket that also accepts IPv4 (IPV6_V6ONLY off)."""


def bind_for(listen_host: str, port: int) -> Bind:
    """How to bind ``listen_host``: dual-stack on the IPv6 wildcard when the machine has IPv6.

    Raises:
        OSError: the host name does not resolve.
    """
    host = listen_host.strip("[]")
    if host in _IPV6_ANY:
        if socket.has_dualstack_ipv6():
            return Bind("::", socket.AF_INET6, dual_stack=True)
        # IPv6 is off on this machine: the wildcard still means every IPv4 interface.
        return Bind("0.0.0.0", socket.AF_INET, dual_stack=False)
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return Bind(str(address[0]), family, dual_stack=False)


def listen_socket(listen_host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``listen_host:port``, bound as :func:`bind_for` says.

    Raises:
        OSError: the host does not resolve, or the port cannot be bound.
    """
    bind = bind_for(listen_host, port)
    return socket.create_server(
        (bind.host, port), family=bind.family, dualstack_ipv6=bind.dual_stack
    )


def url_host(listen_host: str) -> str:
    """The host for a URL a daemon prints: 127.0.0.1 for a wildcard, IPv6 in brackets.

    127.0.0.1 answers on every wildcard bind (dual-stack or IPv4 only), and a
    user copies the URL to a browser or curl on the same machine.
    """
    host = listen_host.strip("[]")
    shown = "127.0.0.1" if host in ANY_HOST else host
    return f"[{shown}]" if ":" in shown else shown
