"""A job record with every field set, for tests that a record survives a trip whole."""

from __future__ import annotations

import datetime as dt

from arko.master.jobs.state import JobState
from arko.master.store.rows import JobRow

# Whole and half seconds: exact as Unix seconds in floats, as the journal has them.
_CREATED = dt.datetime(2026, 1, 2, 3, 4, 5, 500_000, tzinfo=dt.UTC)


def every_field_set(job_id: str = "f" * 32) -> JobRow:
    """A finished record whose every field differs from its default (see test_rows)."""
    return JobRow(
        id=job_id,
        method="MyPipeline.Run",
        params={"param": "one"},
        state=JobState.CANCELLED,
        slave="h:1",
        result='{"done": true}',
        error_code="CANCELLED",
        error="cancelled by peer",
        created_at=_CREATED,
        started_at=_CREATED + dt.timedelta(seconds=1),
        ended_at=_CREATED + dt.timedelta(seconds=90, microseconds=500_000),
        args={"image": {"tag": "v1"}, "count": 3},
        cancelled_by="peer",
        detached=True,
        output_bytes=7,
        output_truncated=True,
        last_seq=9,
        master="m1",
        parent_id="e" * 32,
        trigger="job",
        depth=2,
        outlive_parent=True,
        token_hash="d" * 64,
    )
