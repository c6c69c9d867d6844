"""Tests of arko.common.retry: capped, jittered backoff and the retry helper."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from arko.common.retry import Backoff, retry

FAST = Backoff(initial=0.001, maximum=0.002)


class Transient(Exception):
    """An error worth trying again."""


class Fatal(Exception):
    """An error no retry can fix."""


class FlakyCall:
    """A fake call that fails with the given errors, in order, then answers."""

    def __init__(self, *errors: Exception, answer: str = "done") -> None:
        self.errors = list(errors)
        self.answer = answer
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.answer


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, Transient)


def first(backoff: Backoff, n: int) -> list[float]:
    return list(itertools.islice(backoff.delays(), n))


def test_delays_without_jitter_grow_and_are_capped() -> None:
    """Without jitter, delays multiply by the factor until they reach the maximum."""
    assert first(Backoff(initial=0.5, maximum=3.0, factor=2.0, jitter=False), 6) == [
        0.5,
        1.0,
        2.0,
        3.0,
        3.0,
        3.0,
    ]


def test_jittered_delays_stay_between_half_ceiling_and_ceiling() -> None:
    """Each jittered delay lies in [ceiling/2, ceiling]: never below initial/2 nor above maximum."""
    backoff = Backoff(initial=0.2, maximum=10.0)
    ceilings = first(Backoff(initial=0.2, maximum=10.0, jitter=False), 40)
    for _ in range(20):
        for delay, ceiling in zip(first(backoff, 40), ceilings, strict=True):
            assert ceiling / 2 <= delay <= ceiling
            assert backoff.initial / 2 <= delay <= backoff.maximum


def test_jittered_delays_grow() -> None:
    """Late jittered delays are far longer than the first ones."""
    delays = first(Backoff(initial=0.2, maximum=10.0), 20)
    assert max(delays[:2]) <= 0.4
    assert min(delays[-5:]) >= 5.0


def test_jitter_spreads_the_delays() -> None:
    """Jitter makes delays at the cap differ, so slaves do not retry in lockstep."""
    delays = first(Backoff(initial=1.0, maximum=1.0), 50)
    assert len(set(delays)) > 1


def test_maximum_below_initial_still_caps_every_delay() -> None:
    """No delay exceeds the maximum, even when the maximum is below the initial delay."""
    assert max(first(Backoff(initial=1.0, maximum=0.1), 5)) <= 0.1


def test_success_on_first_try_makes_one_call() -> None:
    """A call that succeeds at once is made once and its answer returned."""
    call = FlakyCall()
    assert asyncio.run(retry(call, is_transient, FAST)) == "done"
    assert call.calls == 1


def test_retryable_errors_are_retried_until_success() -> None:
    """Retryable failures are retried, each reported to on_retry with its delay."""
    errors = [Transient("a"), Transient("b"), Transient("c")]
    call = FlakyCall(*errors)
    seen: list[tuple[BaseException, float]] = []

    answer = asyncio.run(retry(call, is_transient, FAST, lambda e, d: seen.append((e, d))))

    assert answer == "done"
    assert call.calls == 4
    assert [e for e, _ in seen] == errors
    assert all(FAST.initial / 2 <= d <= FAST.maximum for _, d in seen)


def test_non_retryable_error_is_raised_at_once() -> None:
    """A non-retryable failure propagates without another try or an on_retry call."""
    call = FlakyCall(Fatal("bad config"))
    seen: list[BaseException] = []
    with pytest.raises(Fatal, match="bad config"):
        asyncio.run(retry(call, is_transient, FAST, lambda e, d: seen.append(e)))
    assert call.calls == 1
    assert seen == []


def test_non_retryable_error_after_retries_is_raised() -> None:
    """A fatal error that follows transient ones ends the retries and propagates."""
    call = FlakyCall(Transient("a"), Fatal("b"), answer="never")
    with pytest.raises(Fatal):
        asyncio.run(retry(call, is_transient, FAST))
    assert call.calls == 2


def test_on_retry_is_optional() -> None:
    """Retrying works without an on_retry callback."""
    call = FlakyCall(Transient("a"))
    assert asyncio.run(retry(call, is_transient, FAST)) == "done"
    assert call.calls == 2
