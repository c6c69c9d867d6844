"""LiveJob: what an in-flight job keeps, what watchers see, and the memory bound."""

from __future__ import annotations

import asyncio

from arko.common.redact import Secrets
from arko.master.jobs.live import ACCEPTED, FINISHED, OUTPUT, RING, TRUNCATED, Event, LiveJob
from arko.master.jobs.records import Job

Journaled = list[tuple[int, str, str]]


def _live(max_output_bytes: int = 1 << 20) -> tuple[LiveJob, Journaled]:
    journaled: Journaled = []

    def journal(job: Job, seq: int, kind: str, data: str) -> None:
        journaled.append((seq, kind, data))

    job = Job("0" * 32, "MyPipelineLogs.Stream", {}, Secrets())
    live = LiveJob(job, journal, max_output_bytes)
    live.add(ACCEPTED)
    return live, journaled


def _finish(live: LiveJob) -> None:
    live.job.state = "succeeded"
    live.add(FINISHED)


def _seqs(events: list[Event]) -> list[int]:
    return [e.seq for e in events]


def test_output_within_the_bound_is_kept_and_journaled_in_order() -> None:
    live, journaled = _live()
    for n in range(5):
        live.add(OUTPUT, f"line {n}")
    assert [(seq, kind) for seq, kind, _ in journaled] == [(n, OUTPUT) for n in range(1, 6)]
    assert [e.data for e in live.since(3)] == ["line 2", "line 3", "line 4"]
    assert live.job.output_bytes == sum(len(f"line {n}") for n in range(5))


def test_past_the_bound_the_kept_copy_ends_with_one_marker_and_live_output_goes_on() -> None:
    live, journaled = _live(max_output_bytes=100)
    for _ in range(30):
        live.add(OUTPUT, "x" * 10)  # 300 bytes in all
    kinds = [kind for _, kind, _ in journaled]
    assert kinds == [OUTPUT] * 10 + [TRUNCATED]
    assert live.job.output_truncated and live.job.output_bytes == 100
    # A live reader still gets the newest lines, after the marker.
    recent = live.since(0)
    assert recent[-1].seq == live.next_seq - 1
    assert TRUNCATED in [e.kind for e in recent]
    # Read back as the store will hold it: the kept part, the marker, and no more.
    _finish(live)
    stored = live.since(0, live=False)
    assert [e.kind for e in stored][-2:] == [TRUNCATED, FINISHED]
    assert sum(1 for e in stored if e.kind == OUTPUT) == 10


def test_the_ring_holds_at_most_RING_events_past_the_bound() -> None:
    live, _ = _live(max_output_bytes=1024)
    for n in range(RING * 3):
        live.add(OUTPUT, f"{n:09d}")
    held = live.since(0)
    marker = [e.kind for e in held].index(TRUNCATED)
    assert held[marker].seq == 1 + 1024 // 9  # after ACCEPTED (0) and the lines that fit
    ring = held[marker + 1 :]
    assert len(ring) == RING
    assert _seqs(ring) == list(range(live.next_seq - RING, live.next_seq))


def test_watchers_get_earlier_events_then_live_ones_and_all_the_same() -> None:
    async def scenario() -> None:
        live, _ = _live()
        live.add(OUTPUT, "before")

        async def watch(from_seq: int) -> list[Event]:
            return [e async for e in live.follow(from_seq)]

        first = asyncio.create_task(watch(0))
        second = asyncio.create_task(watch(0))
        late = asyncio.create_task(watch(2))
        await asyncio.sleep(0)
        for n in range(3):
            live.add(OUTPUT, f"live {n}")
            await asyncio.sleep(0)
        _finish(live)
        seen = await asyncio.wait_for(asyncio.gather(first, second, late), 5)
        assert _seqs(seen[0]) == list(range(6)) == _seqs(seen[1])
        assert [e.data for e in seen[0][1:5]] == ["before", "live 0", "live 1", "live 2"]
        assert _seqs(seen[2]) == [2, 3, 4, 5]
        assert seen[2][-1].kind == FINISHED

    asyncio.run(scenario())


def test_a_watcher_after_the_end_reads_what_the_store_will_hold() -> None:
    async def scenario() -> None:
        live, _ = _live(max_output_bytes=20)
        for n in range(5):
            live.add(OUTPUT, f"line {n:04d}")  # 9 bytes each: two kept
        _finish(live)
        events = [e async for e in live.follow(0)]
        assert [e.kind for e in events] == [ACCEPTED, OUTPUT, OUTPUT, TRUNCATED, FINISHED]

    asyncio.run(scenario())


def test_cancel_stops_the_task_once_and_not_after_the_end() -> None:
    async def scenario() -> None:
        live, _ = _live()
        live.task = asyncio.create_task(asyncio.sleep(60))
        assert live.cancel("127.0.0.1:1: wrong branch")
        assert live.cancel("someone else")  # still running: asked, but the first asker stays
        assert live.cancel_requested == "127.0.0.1:1: wrong branch"
        await asyncio.gather(live.task, return_exceptions=True)
        assert live.task.cancelled()
        _finish(live)
        assert not live.cancel("late")

    asyncio.run(scenario())
