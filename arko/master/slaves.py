"""One slave as the master sees it: its address, liveness, catalog and channel.

The channel and the catalog (descriptors from reflection) live as long as the
slave answers, so jobs never re-dial or re-read reflection; a failed probe
drops the channel, because a channel in reconnect backoff would keep a slave
that came back looking dead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from arko.common.auth import SECRET_HEADER
from arko.master.discovery import Catalog
from arko.master.store import STATUS_LIVE, SlaveRow

# How long an abandoned channel may keep serving the calls it carries.
RETIRE_GRACE = 24 * 3600.0
CHANNEL_OPTIONS: list[tuple[str, int | str]] = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
]


Dialer = Callable[[str], grpc.aio.Channel]


def plaintext(address: str) -> grpc.aio.Channel:
    """The default dialer: a plaintext channel with arko's options."""
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)


@dataclass(eq=False, slots=True)
class Slave:
    """A registered slave. ``id`` is its registration order.

    ``secret`` is what the slave asked the master to present on every call
    (kept in memory only: after a master restart the slave registers again).
    """

    id: int
    host: str
    port: int
    status: int
    methods: tuple[str, ...] = ()
    secret: str = ""
    dial: Dialer = plaintext
    catalog: Catalog | None = None
    probe_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _channel: grpc.aio.Channel | None = None
    _retiring: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    def from_row(cls, row: SlaveRow, dial: Dialer = plaintext) -> Slave:
        """A slave restored from the store, before its first probe."""
        return cls(
            id=row.id,
            host=row.host,
            port=row.port,
            status=row.status,
            methods=row.methods,
            dial=dial,
        )

    @property
    def metadata(self) -> tuple[tuple[str, str], ...] | None:
        """Call metadata proving to the slave that the master calls."""
        return ((SECRET_HEADER, self.secret),) if self.secret else None

    @property
    def address(self) -> str:
        """``host:port``, IPv6 hosts bracketed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def live(self) -> bool:
        """Whether the last probe (or registration) found it answering."""
        return self.status == STATUS_LIVE

    @property
    def channel(self) -> grpc.aio.Channel:
        """The cached channel, opened on first use."""
        if self._channel is None:
            self._channel = self.dial(self.address)
        return self._channel

    async def ensure_connected(self, timeout: float) -> bool:
        """Whether the channel reaches READY within ``timeout``.

        A job sent only after this returns True may have reached the slave, so
        it is never retried elsewhere; one that never got here cannot have.
        """
        channel = self.channel
        if channel.get_state(try_to_connect=True) == grpc.ChannelConnectivity.READY:
            return True
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout)
        except TimeoutError:
            return False
        return True

    def reset_channel(self) -> None:
        """Dial afresh next time; calls still running on the old channel go on.

        Closing the old channel at once would cancel the jobs running on it,
        and a failed ping does not mean those jobs are lost (a draining slave
        finishes them), so the old channel closes only when they are done.
        """
        channel, self._channel = self._channel, None
        if channel is not None:
            task = asyncio.create_task(channel.close(grace=RETIRE_GRACE))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def close(self) -> None:
        """Close every channel now, cancelling whatever still runs on them."""
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
