"""One slave as the master sees it: its address, liveness, catalog and channel.

The catalog (descriptors from reflection) lives as long as the slave answers,
so jobs never re-read reflection. So does the channel, up to a number of
open channels (:class:`OpenChannels`): past it, a slave no job used since its
last probe has its channel closed after each probe and dialled again on
demand, because an open channel costs tens of kilobytes and a fleet of
10,000 mostly idle slaves would hold hundreds of megabytes for nothing. A
failed probe drops the channel, because a channel in reconnect backoff would
keep a slave that came back looking dead.

Whoever uses the channel (a job, a probe) leases it for the whole use. A
dropped channel is closed only when its last lease ends, so nothing ever
starts a call on a channel that is closing (grpc.aio refuses that with
``UsageError: Channel is closed``), and calls already running on it go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import Message

from arko.common.auth import MASTER_HEADER, SECRET_HEADER
from arko.master.slaves.discovery import Catalog
from arko.master.store.rows import STATUS_LIVE, SlaveRow

CHANNEL_OPTIONS: list[tuple[str, int | str]] = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    # A new channel must dial afresh. With gRPC's global subchannel pool it
    # shares the connection of any channel to the same address, and with it
    # that channel's reconnect backoff: a slave restarted on its port would
    # fail its registration's confirmation (UNAVAILABLE at once, the old
    # channel still backing off) and reset_channel() would reset nothing.
    ("grpc.use_local_subchannel_pool", 1),
]


Dialer = Callable[[str], grpc.aio.Channel]


class OpenChannels:
    """How many of a registry's slaves hold a channel, against how many may while idle.

    Args:
        idle_limit: Past this many open channels, idle slaves give theirs up
            after each probe (busy ones keep them, however many).
    """

    def __init__(self, idle_limit: int) -> None:
        self.idle_limit = idle_limit
        self.count = 0

    @property
    def over(self) -> bool:
        """Whether more channels are open than idle slaves may keep."""
        return self.count > self.idle_limit


def plaintext(address: str) -> grpc.aio.Channel:
    """The default dialer: a plaintext channel with arko's options."""
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)


class SlaveState(enum.StrEnum):
    """The word operators read for a slave, everywhere it is shown.

    The HTTP API and the metrics' ``status`` label use the value;
    ``Admin/ListSlaves`` (and so the CLI) the upper-case name. Members are in
    the order the metrics list them.
    """

    LIVE = "live"
    DOWN = "down"
    PENDING = "pending"  # restored from the store, neither probed nor registered since


@dataclass(eq=False, slots=True)
class Slave:
    """A registered slave. ``id`` is its registration order.

    ``secret`` is what the slave asked the master to present on every call
    (kept in memory only: after a master restart the slave registers again).
    ``pending`` marks a slave restored from the store that has neither been
    probed nor registered since: jobs wait for it rather than use it blind.
    ``capacity``, ``labels`` and ``version`` are what the slave's
    ``arko.v1.Slave/Status`` last reported (0, empty and "" for a slave
    without that service: no limit, no labels); ``running`` is the master's
    own count of the jobs it has on the slave now. ``refused`` marks a slave
    that refused a call as full (busy with another master's work, say) until
    one of this master's jobs on it ends or its next status read.
    ``owned``: this master pings it (always, unless several masters share
    the database: then the one holding its lease). ``caller`` is this
    master's name, sent with every call so the slave's logs say who called.
    ``reason`` is why it is
    down (empty when live) and ``last_seen`` when it last answered (epoch
    seconds, 0 for not since this master started), for operators.
    """

    id: int
    host: str
    port: int
    status: int
    methods: tuple[str, ...] = ()
    secret: str = ""
    dial: Dialer = plaintext
    catalog: Catalog | None = None
    pending: bool = False
    capacity: int = 0
    running: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    version: str = ""
    refused: bool = False
    used: bool = False  # a job leased the channel since the last probe

    reason: str = ""
    last_seen: float = 0.0
    owned: bool = True
    caller: str = ""
    probe_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    channels: OpenChannels = field(default_factory=lambda: OpenChannels(1 << 30))
    _channel: grpc.aio.Channel | None = None
    _leases: dict[grpc.aio.Channel, int] = field(default_factory=dict)
    # Each channel's callables, made once per method, as a generated stub
    # makes them: making one was a fair share of a short job's CPU.
    _callables: dict[grpc.aio.Channel, dict[tuple[Any, ...], Any]] = field(default_factory=dict)
    _closing: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    def from_row(
        cls, row: SlaveRow, dial: Dialer = plaintext, channels: OpenChannels | None = None
    ) -> Slave:
        """A slave restored from the store, before its first probe; ``channels``
        counts its channel with its registry's others."""
        slave = cls(
            id=row.id,
            host=row.host,
            port=row.port,
            status=row.status,
            methods=row.methods,
            dial=dial,
            pending=True,
        )
        if channels is not None:
            slave.channels = channels
        return slave

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata proving to the slave that the master calls.

        Sent even while the secret is unknown (after a master restart), so a
        protected slave refuses the master rather than showing it the
        stranger's catalog of health alone.
        """
        if self.caller:
            return ((SECRET_HEADER, self.secret), (MASTER_HEADER, self.caller))
        return ((SECRET_HEADER, self.secret),)

    @property
    def address(self) -> str:
        """``host:port``, IPv6 hosts bracketed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def live(self) -> bool:
        """Whether the last probe (or registration) found it answering."""
        return self.status == STATUS_LIVE and not self.pending

    @property
    def state(self) -> SlaveState:
        """Live, down, or pending: what operators are told (``status`` is the store's 0/1)."""
        if self.pending:
            return SlaveState.PENDING
        return SlaveState.LIVE if self.live else SlaveState.DOWN

    @property
    def full(self) -> bool:
        """Whether the slave has no room for one more job (as far as this master knows)."""
        return self.refused or (self.capacity > 0 and self.running >= self.capacity)

    @property
    def channel(self) -> grpc.aio.Channel:
        """The cached channel, opened on first use (lease it to start calls on it)."""
        if self._channel is None:
            self._channel = self.dial(self.address)
            self.channels.count += 1
        return self._channel

    @contextlib.contextmanager
    def lease(self, probe: bool = False) -> Iterator[grpc.aio.Channel]:
        """The current channel, kept open until the ``with`` block ends.

        A lease for anything but a probe marks the slave used, so it keeps
        its channel past the next probe (see :meth:`rest`).
        """
        channel = self.channel
        if not probe:
            self.used = True
        self._leases[channel] = self._leases.get(channel, 0) + 1
        try:
            yield channel
        finally:
            left = self._leases.pop(channel, 1) - 1  # close() may have cleared it
            if left:
                self._leases[channel] = left
            elif channel is not self._channel:
                self._close_later(channel)

    def multicallable(
        self,
        channel: grpc.aio.Channel,
        path: str,
        request_cls: type[Message],
        reply_cls: type[Message],
        streaming: bool,
    ) -> Any:
        """The leased ``channel``'s unary-unary or unary-stream callable for one method."""
        made = self._callables.setdefault(channel, {})
        key = (path, request_cls, reply_cls, streaming)
        call = made.get(key)
        if call is None:
            factory = channel.unary_stream if streaming else channel.unary_unary
            call = made[key] = factory(
                path,
                request_serializer=request_cls.SerializeToString,
                response_deserializer=reply_cls.FromString,
            )
        return call

    def rest(self) -> None:
        """After a probe: close the channel when too many are open, no job
        used it since the previous probe, and no call runs on it now.

        The next job or probe dials again; the slave stays live.
        """
        used, self.used = self.used, False
        if not used and self.channels.over and self._channel not in self._leases:
            self.reset_channel()

    def current(self, channel: grpc.aio.Channel) -> bool:
        """Whether ``channel`` is still the one new calls should use."""
        return channel is self._channel

    async def ensure_connected(self, channel: grpc.aio.Channel, timeout: float) -> bool:
        """Whether the leased ``channel`` reaches READY within ``timeout``.

        A job sent only after this returns True may have reached the slave, so
        it is never retried elsewhere; one that never got here cannot have.
        """
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
        finishes them), so the old channel closes when its last lease ends.
        """
        channel, self._channel = self._channel, None
        if channel is not None:
            self.channels.count -= 1
            if channel not in self._leases:
                self._close_later(channel)

    def _close_later(self, channel: grpc.aio.Channel) -> None:
        self._callables.pop(channel, None)
        task = asyncio.create_task(channel.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Close every channel now, cancelling whatever still runs on them."""
        channels = {*self._leases, *([self._channel] if self._channel else [])}
        if self._channel is not None:
            self.channels.count -= 1
        self._channel = None
        self._leases.clear()
        self._callables.clear()
        await asyncio.gather(*(c.close() for c in channels), *self._closing)
