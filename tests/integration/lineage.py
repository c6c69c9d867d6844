"""Job trees written straight into a master's database, for the pages that show them.

Child jobs are made by a running parent through the SDK; the tests of the
views only need the records, so they store them with the master's own store
(SQLite file or PostgreSQL URL alike). Every record is final, so no master
takes one for a job it must interrupt or resume.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path

from arko.master.jobs.state import JobState
from arko.master.store.rows import JobRow
from arko.master.store.sql import open_store


@dataclass(frozen=True)
class Tree:
    """A stored tree: ``root`` started ``lint`` and ``test``; ``test`` started ``unit``."""

    root: str
    lint: str
    test: str
    unit: str


def _row(method: str, parent: JobRow | None, state: JobState, offset: float, slave: str) -> JobRow:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5) + dt.timedelta(seconds=offset)
    return JobRow(
        id=uuid.uuid4().hex,
        method=method,
        params={"ref": "main"},
        state=state,
        slave=slave,
        created_at=start,
        started_at=start + dt.timedelta(seconds=0.1),
        ended_at=start + dt.timedelta(seconds=3),
        error_code="INTERNAL" if state is JobState.FAILED else "",
        error="3 tests failed" if state is JobState.FAILED else "",
        parent_id=parent.id if parent else "",
        trigger="job" if parent else "api",
        depth=parent.depth + 1 if parent else 0,
    )


def store_tree(db: Path | str, slave: str = "127.0.0.1:1") -> Tree:
    """Store a finished three-level tree of jobs in the database ``db``."""
    root = _row("Ci.Release", None, JobState.FAILED, 0, slave)
    lint = _row("Ci.Lint", root, JobState.SUCCEEDED, 1, slave)
    test = _row("Ci.Test", root, JobState.FAILED, 2, slave)
    unit = _row("Ci.Unit", test, JobState.FAILED, 3, slave)

    async def save() -> None:
        store = await open_store(db)
        try:
            await store.save_jobs([root, lint, test, unit])
        finally:
            await store.close()

    # A thread of its own: Playwright's sync API keeps a loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, save()).result()
    return Tree(root.id, lint.id, test.id, unit.id)
