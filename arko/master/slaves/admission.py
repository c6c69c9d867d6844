"""Who may call ``Register/RegisterNewSlave``, and how often.

A registration makes the master dial the named address every ping interval,
so a master anyone can reach must not take them from anyone: without a join
token (or client certificates) only loopback peers register, as Redis's
protected mode does, and each peer gets a bounded number of registrations
per minute.
"""

from __future__ import annotations

import collections
import ipaddress
import time
import urllib.parse

from arko.common.errors import PermissionDenied, ResourceExhausted

PROTECTED_REFUSAL = (
    "registration from {peer} refused: this master has no join token, so only "
    "loopback peers may register; set a join token to let other hosts register "
    "(or start the master with --open_registration)"
)
# Peers whose counters are kept at once; the oldest are dropped past it.
PEERS_KEPT = 4096
WINDOW = 60.0  # seconds


def peer_address(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP of a gRPC peer string (``ipv4:…``, ``ipv6:%5B::1%5D:…``), None if not IP.

    An IPv4-mapped IPv6 peer (``::ffff:127.0.0.1``, from a dual-stack listener)
    is its IPv4 address, so one host has one identity whichever way it came.
    """
    kind, _, rest = urllib.parse.unquote(peer).partition(":")
    host = rest.rpartition(":")[0].strip("[]").split("%")[0]
    if kind not in ("ipv4", "ipv6"):
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback_peer(peer: str) -> bool:
    """True when a gRPC peer is a loopback address; Unix sockets and the unparsable are not."""
    address = peer_address(peer)
    return address is not None and address.is_loopback


def check_protected(peer: str, protected: bool) -> None:
    """Refuse a non-loopback peer when the master is in protected mode.

    Raises:
        PermissionDenied: naming how to let other hosts register.
    """
    if protected and not is_loopback_peer(peer):
        raise PermissionDenied(PROTECTED_REFUSAL.format(peer=peer))


class RateLimit:
    """At most ``per_minute`` registrations per peer host in any sliding minute.

    Memory is bounded twice: ``per_minute`` timestamps per host and
    ``PEERS_KEPT`` hosts (least recently seen dropped first).
    """

    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._seen: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )

    def check(self, peer: str) -> None:
        """Count one registration from ``peer``'s host (any port of it).

        Raises:
            ResourceExhausted: ``host`` already made ``per_minute`` in the last minute.
        """
        if self._per_minute <= 0:
            return
        address = peer_address(peer)
        host = str(address) if address is not None else peer
        moment = time.monotonic()
        times = self._seen.pop(host, None) or collections.deque(maxlen=self._per_minute)
        self._seen[host] = times
        while len(self._seen) > PEERS_KEPT:
            self._seen.popitem(last=False)
        while times and moment - times[0] >= WINDOW:
            times.popleft()
        if len(times) >= self._per_minute:
            raise ResourceExhausted(
                f"too many registrations from {host}: at most {self._per_minute} a minute "
                "(--register_rate_limit)"
            )
        times.append(moment)
