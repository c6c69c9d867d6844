"""The one retry helper: capped exponential backoff with full jitter."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays of ``initial * factor**n``, capped at ``maximum``, each jittered down.

    Full jitter (a uniform draw below the cap) keeps a fleet of slaves that lost
    the same master from coming back in lockstep.
    """

    initial: float = 0.2
    maximum: float = 10.0
    factor: float = 2.0
    jitter: bool = True

    def delays(self) -> Iterator[float]:
        """An endless series of delays in seconds."""
        ceiling = min(self.initial, self.maximum)
        while True:
            yield random.uniform(ceiling / 2, ceiling) if self.jitter else ceiling
            ceiling = min(ceiling * self.factor, self.maximum)


async def retry(
    attempt: Callable[[], Awaitable[T]],
    retryable: Callable[[BaseException], bool],
    backoff: Backoff,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """Call ``attempt`` until it succeeds or fails with a non-retryable error.

    Args:
        attempt: The call to make.
        retryable: Whether an exception warrants another try.
        backoff: Delays between tries.
        on_retry: Told of each retryable failure and the delay before the next try.
    """
    for delay in backoff.delays():
        try:
            return await attempt()
        except Exception as exc:
            if not retryable(exc):
                raise
            if on_retry is not None:
                on_retry(exc, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable: delays() is endless")
