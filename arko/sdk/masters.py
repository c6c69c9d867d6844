"""The masters a slave process's jobs reach back to, and one channel to each.

A handler has only its ``grpc.aio.ServicerContext``; which masters its slave
registered with, and with which TLS settings, is known to the slave process
alone. The slave daemon hands both over once at start (:func:`configure`),
and every :class:`~arko.sdk.context.JobContext` of the process then shares
one lazily opened channel per master address, so ``asyncio.gather`` over
many children opens one connection, not one each. This is the SDK's only
process-wide state, set by the daemon and closed by it (:func:`close`).
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from arko.common.tls import TlsConfig, open_channel


class Masters:
    """Masters to dial, with the TLS settings to dial them with.

    Args:
        addresses: ``host:port`` of each master the slave registered with,
            in its ``--master`` order: tried in turn when a job did not say
            which master sent it.
        tls: The slave's TLS settings (its certificate with mutual TLS), or
            None for plain connections.
    """

    def __init__(self, addresses: Sequence[str] = (), tls: TlsConfig | None = None) -> None:
        self.addresses = tuple(addresses)
        self._tls = tls
        self._channels: dict[str, grpc.aio.Channel] = {}

    def candidates(self, advertised: str) -> tuple[str, ...]:
        """The masters to try for a job: the one that sent it, if it said where."""
        return (advertised,) if advertised else self.addresses

    def channel(self, address: str) -> grpc.aio.Channel:
        """The shared channel to ``address``, opened on first use."""
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = open_channel(address, self._tls)
        return channel

    async def close(self) -> None:
        """Close every channel; safe to call twice (a later call opens them afresh)."""
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()


_masters = Masters()


def configure(addresses: Sequence[str], tls: TlsConfig | None = None) -> None:
    """Tell the SDK which masters this process's jobs reach (the slave does, at start).

    Args:
        addresses: The slave's ``--master`` list.
        tls: The slave's TLS settings, or None.
    """
    global _masters
    _masters = Masters(addresses, tls)


def current() -> Masters:
    """The masters :func:`configure` set (none until it is called)."""
    return _masters


async def close() -> None:
    """Close the channels the process's jobs opened (the slave does, as it stops)."""
    await _masters.close()
