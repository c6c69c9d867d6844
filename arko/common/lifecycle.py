"""The start / wait / stop life of a daemon, shared by master and slave.

``stop()`` is idempotent and safe to call from a signal handler while another
stop runs: the daemon first ends its own loops, then sets every health status
to NOT_SERVING and lets running calls finish within the grace period, then
closes what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any, Self

import structlog

from arko.common.server import BuiltServer

log = structlog.get_logger("arko")


async def cancel_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait for it to end; a task that is the caller is left alone."""
    if task is None or task is asyncio.current_task():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class Lifecycle:
    """Base of a daemon: subclasses implement ``start``, ``_before_drain`` and ``_after_drain``."""

    kind = "daemon"

    def __init__(self, grace: float) -> None:
        self.exit_code = 0
        self._grace = grace
        self._built: BuiltServer | None = None
        self._stopped = asyncio.Event()
        self._ended = asyncio.Event()  # stopped, or cannot go on
        self._stopping = False

    async def start(self) -> None:
        """Bring the daemon up (set ``self._built`` once its server is bound)."""
        raise NotImplementedError

    async def _before_drain(self) -> None:
        """End the daemon's own loops, before its server drains."""

    async def _after_drain(self) -> None:
        """Close what the daemon holds, once no call runs any more."""

    async def wait(self) -> None:
        """Return once :meth:`stop` has finished, or once the daemon cannot go on
        (:meth:`_give_up`): whoever waits then stops it, in its own task."""
        await self._ended.wait()

    def _give_up(self, exit_code: int) -> None:
        """The daemon cannot go on: end :meth:`wait`, so it is stopped and exits ``exit_code``."""
        self.exit_code = exit_code
        self._ended.set()

    async def stop(self) -> None:
        """Drain within the grace period and close; idempotent."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        log.info(f"{self.kind}_stopping", grace=self._grace)
        await self._before_drain()
        if self._built is not None:
            await self._built.health.enter_graceful_shutdown()
            await self._built.server.stop(self._grace)
        await self._after_drain()
        log.info(f"{self.kind}_stopped")
        self._stopped.set()
        self._ended.set()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.stop()
