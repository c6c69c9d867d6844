"""CommitStatuses on a stopping master: the last statuses are posted, within a bound."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from arko.master.jobs.live import FINISHED, Event
from arko.master.jobs.state import JobState
from arko.master.triggers.config import TriggerSpec
from arko.master.triggers.hooks import Trigger
from arko.master.triggers.statuses import CommitStatuses

PAYLOAD = {"repository": {"full_name": "o/r"}, "after": "a" * 40}


async def _ended(job_id: str, from_seq: int) -> AsyncIterator[Event]:
    """A job that has already ended, as the job core's watch answers for it."""
    yield Event(0, FINISHED, 0.0, JobState.SUCCEEDED)


def _trigger() -> Trigger:
    spec = TriggerSpec.model_validate(
        {"name": "t", "forge": "github", "secret_file": Path("s"), "method": "a.B.C"}
    )
    return Trigger(spec, b"k", "token")


def test_close_lets_the_last_statuses_post_then_cancels_what_is_stuck() -> None:
    """A post that ends within the grace is made; one that would not is cancelled."""
    asyncio.run(asyncio.wait_for(_close_with_one_quick_and_one_stuck_post(), 10))


async def _close_with_one_quick_and_one_stuck_post() -> None:
    statuses = CommitStatuses(_ended, public_url="")
    posted: list[tuple[str, str]] = []
    cancelled: list[str] = []

    async def post(trigger: Trigger, job_id: str, repo: str, sha: str, state: str) -> None:
        try:
            await asyncio.sleep(0.05 if job_id == "quick" else 60)
        except asyncio.CancelledError:
            cancelled.append(job_id)
            raise
        posted.append((job_id, state))

    statuses._post = post  # type: ignore[method-assign]
    statuses.started(_trigger(), "quick", PAYLOAD)
    statuses.started(_trigger(), "stuck", PAYLOAD)
    await statuses.close(grace=1.0)
    assert posted == [("quick", "success")]
    assert cancelled == ["stuck"]
