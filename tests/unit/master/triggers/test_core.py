"""The Hooks and Clock cores driven with fakes of the store and the job core."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from arko.common.errors import ArkoError, InvalidArgument, Unauthenticated
from arko.master.triggers.clock import Clock
from arko.master.triggers.config import ScheduleSpec, TriggerSpec
from arko.master.triggers.hooks import Hooks, Trigger, UnknownTrigger

SECRET = b"k"


class FakeMarks:
    """The store's claims, in memory: the first claim of a key wins."""

    def __init__(self) -> None:
        self.deliveries: dict[tuple[str, str], str] = {}
        self.slots: dict[tuple[str, dt.datetime], str] = {}

    async def claim_delivery(self, trigger: str, delivery: str) -> str | None:
        if (trigger, delivery) in self.deliveries:
            return self.deliveries[trigger, delivery]
        self.deliveries[trigger, delivery] = ""
        return None

    async def delivery_started(self, trigger: str, delivery: str, job_id: str) -> None:
        self.deliveries[trigger, delivery] = job_id

    async def release_delivery(self, trigger: str, delivery: str) -> None:
        self.deliveries.pop((trigger, delivery), None)

    async def claim_slot(self, schedule: str, slot: dt.datetime, master: str) -> bool:
        return self.slots.setdefault((schedule, slot), master) == master


class FakeJobs:
    """Starts nothing; remembers what it was asked, or refuses."""

    def __init__(self, refuse: ArkoError | None = None) -> None:
        self.started: list[tuple[str, dict[str, str], str]] = []
        self.refuse = refuse

    def __call__(self, method: str, params: Mapping[str, str], trigger: str) -> str:
        if self.refuse is not None:
            raise self.refuse
        self.started.append((method, dict(params), trigger))
        return f"{len(self.started):032x}"


def _hooks(jobs: FakeJobs, marks: FakeMarks) -> Hooks:
    spec = TriggerSpec(
        name="gh",
        forge="github",
        secret_file=Path("unused"),
        events=["push"],
        branches=["main"],
        method="a.B.C",
        params={"commit": "${/after}"},
    )
    return Hooks([Trigger(spec, SECRET, None)], jobs, marks)


def _headers(body: bytes, delivery: str = "d1") -> dict[str, str]:
    digest = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "Content-Type": "application/json",
    }


BODY = json.dumps({"ref": "refs/heads/main", "after": "abc"}).encode()


def test_a_delivery_starts_one_job_and_a_redelivery_answers_it() -> None:
    jobs, marks = FakeJobs(), FakeMarks()
    hooks = _hooks(jobs, marks)
    first = asyncio.run(hooks.deliver("gh", _headers(BODY), BODY))
    again = asyncio.run(hooks.deliver("gh", _headers(BODY), BODY))
    assert jobs.started == [("a.B.C", {"commit": "abc"}, "hook:gh")]
    assert again.duplicate and again.job_id == first.job_id
    assert marks.deliveries == {("gh", "d1"): first.job_id}


def test_a_refused_job_releases_its_delivery_for_a_redelivery() -> None:
    """Had the claim stayed, the forge's retry would start nothing, ever."""
    marks = FakeMarks()
    refused = FakeJobs(refuse=InvalidArgument("too large"))
    with pytest.raises(InvalidArgument):
        asyncio.run(_hooks(refused, marks).deliver("gh", _headers(BODY), BODY))
    assert marks.deliveries == {}
    jobs = FakeJobs()
    assert asyncio.run(_hooks(jobs, marks).deliver("gh", _headers(BODY), BODY)).job_id


def test_nothing_is_claimed_or_started_for_a_bad_signature_or_a_skip() -> None:
    jobs, marks = FakeJobs(), FakeMarks()
    hooks = _hooks(jobs, marks)
    with pytest.raises(Unauthenticated):
        asyncio.run(hooks.deliver("gh", {**_headers(BODY), "X-Hub-Signature-256": "x"}, BODY))
    dev = json.dumps({"ref": "refs/heads/dev", "after": "abc"}).encode()
    assert "dev" in asyncio.run(hooks.deliver("gh", _headers(dev), dev)).skipped
    with pytest.raises(UnknownTrigger):
        asyncio.run(hooks.deliver("nope", _headers(BODY), BODY))
    assert jobs.started == [] and marks.deliveries == {}


def test_github_form_encoding_carries_the_payload() -> None:
    jobs = FakeJobs()
    body = b"payload=" + json.dumps({"ref": "refs/heads/main", "after": "f"}).encode()
    headers = {**_headers(body), "Content-Type": "application/x-www-form-urlencoded"}
    asyncio.run(_hooks(jobs, FakeMarks()).deliver("gh", headers, body))
    assert jobs.started[0][1] == {"commit": "f"}


def test_the_clock_fires_each_slot_once_between_two_masters() -> None:
    """Two clocks on one store: each slot is claimed by one, none is fired twice."""
    marks = FakeMarks()
    spec = ScheduleSpec(name="tick", every="1s", method="a.B.C", params={"x": "1"})
    jobs = [FakeJobs(), FakeJobs()]
    now = [1000.5]
    clocks = [Clock([spec], jobs[i], marks, f"m{i}", now=lambda: now[0]) for i in range(2)]

    async def scenario() -> None:
        for slot in (1001.0, 1002.0, 1003.0):
            for clock in clocks:
                await clock._fire(spec, slot)
            now[0] = slot

    asyncio.run(scenario())
    assert len(marks.slots) == 3
    assert sum(len(j.started) for j in jobs) == 3
    assert {t for j in jobs for _, _, t in j.started} == {"schedule:tick"}
    assert clocks[0].next_times() == {"tick": 1004.0}


def test_slots_missed_while_the_clock_was_not_running_are_not_caught_up() -> None:
    """After a jump from 1001 to 1010.2 the clock fires 1011 next, not 1002 to 1010."""
    spec = ScheduleSpec(name="tick", every="1s", method="a.B.C")
    marks, jobs = FakeMarks(), FakeJobs()
    # Each pass reads the clock twice: to pick the slot, then to sleep until it.
    times = iter([1000.5, 1001.0, 1010.2, 1011.0])

    async def scenario() -> None:
        second = asyncio.Event()

        def start(method: str, params: Mapping[str, str], trigger: str) -> str:
            job_id = jobs(method, params, trigger)
            if len(jobs.started) == 2:
                second.set()
            return job_id

        clock = Clock([spec], start, marks, "m0", now=lambda: next(times, 1e12))
        running = asyncio.create_task(clock.run())
        await second.wait()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    asyncio.run(asyncio.wait_for(scenario(), 10))
    fired = sorted(slot.timestamp() for _, slot in marks.slots)
    assert fired == [1001.0, 1011.0]
