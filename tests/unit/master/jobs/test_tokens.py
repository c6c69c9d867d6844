"""JobTokens: a job token is good for its own job's children, while the job runs."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine
from typing import Any, TypeVar

import grpc
import pytest

from arko.common.errors import ArkoError
from arko.common.redact import Secrets
from arko.master.jobs.live import LiveJob, LiveJobs
from arko.master.jobs.records import Job, Lineage
from arko.master.jobs.state import JobState
from arko.master.jobs.tokens import Caller, JobTokens, token_hash
from arko.master.store.rows import JobRow

T = TypeVar("T")
PARENT, CHILD, GRANDCHILD, OTHER = ("a" * 32, "b" * 32, "c" * 32, "d" * 32)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _job(job_id: str, lineage: Lineage | None = None) -> Job:
    return Job(job_id, "Pipeline.Build", {}, Secrets(), lineage=lineage)


def _tokens(*jobs: Job, stored: dict[str, JobRow] | None = None, depth: int = 8) -> JobTokens:
    live = LiveJobs()
    for job in jobs:
        live.add(LiveJob(job, lambda *_: None, 1024, deadline=123.0))
    rows = stored or {}

    async def get_stored(job_id: str) -> JobRow | None:
        return rows.get(job_id)

    return JobTokens(live, get_stored, depth)


def _refusal(coro: Coroutine[Any, Any, object]) -> ArkoError:
    with pytest.raises(ArkoError) as caught:
        _run(coro)
    return caught.value


def test_a_token_is_kept_only_as_its_hash_and_opens_its_live_job() -> None:
    job = _job(PARENT)
    token = JobTokens.issue(job)
    assert job.token_hash == token_hash(token) and token not in repr(job.row())
    caller = _run(_tokens(job).verify(PARENT, token))
    assert caller.job.id == PARENT and caller.deadline == 123.0


def test_a_wrong_token_or_an_unknown_job_is_unauthenticated() -> None:
    job = _job(PARENT)
    token = JobTokens.issue(job)
    tokens = _tokens(job)
    for job_id, presented in ((PARENT, token + "x"), (PARENT, ""), (OTHER, token), ("x", token)):
        error = _refusal(tokens.verify(job_id, presented))
        assert error.code == grpc.StatusCode.UNAUTHENTICATED
        assert "wrong job token" in error.message


def test_a_token_dies_with_its_job_live_or_stored() -> None:
    job = _job(PARENT)
    token = JobTokens.issue(job)
    job.state = JobState.SUCCEEDED
    error = _refusal(_tokens(job).verify(PARENT, token))
    assert error.code == grpc.StatusCode.UNAUTHENTICATED and "has ended" in error.message
    stored = dataclasses.replace(job.row(), state=JobState.CANCELLED)
    error = _refusal(_tokens(stored={PARENT: stored}).verify(PARENT, token))
    assert "has ended" in error.message


def test_another_masters_running_job_is_checked_against_its_stored_row() -> None:
    job = _job(PARENT)
    token = JobTokens.issue(job)
    job.state = JobState.RUNNING
    caller = _run(_tokens(stored={PARENT: job.row()}).verify(PARENT, token))
    assert caller.job.id == PARENT and caller.deadline is None


def test_a_child_is_one_level_deeper_and_refused_past_the_limit() -> None:
    tokens = _tokens(depth=2)
    lineage = tokens.child(Caller(_job(PARENT, Lineage("job", OTHER, 1)).row()), True)
    assert lineage == Lineage("job", PARENT, 2, True)
    with pytest.raises(ArkoError) as error:
        tokens.child(Caller(_job(PARENT, lineage).row()), False)
    assert error.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "--max_job_depth 2" in error.value.message


def test_a_token_reaches_its_descendants_and_nothing_else() -> None:
    rows = {
        PARENT: _job(PARENT).row(),
        CHILD: _job(CHILD, Lineage("job", PARENT, 1)).row(),
        GRANDCHILD: _job(GRANDCHILD, Lineage("job", CHILD, 2)).row(),
        OTHER: _job(OTHER).row(),
    }

    async def get(job_id: str) -> JobRow | None:
        return rows.get(job_id)

    tokens, caller = _tokens(), Caller(rows[PARENT])
    _run(tokens.check_descendant(caller, CHILD, get))
    _run(tokens.check_descendant(caller, GRANDCHILD, get))
    for job_id in (PARENT, OTHER, "e" * 32):
        error = _refusal(tokens.check_descendant(caller, job_id, get))
        assert error.code == grpc.StatusCode.PERMISSION_DENIED
        assert "may only start and read its own child jobs" in error.message
    error = _refusal(tokens.check_descendant(Caller(rows[CHILD]), PARENT, get))
    assert error.code == grpc.StatusCode.PERMISSION_DENIED  # never upwards
    JobTokens.check_listing(caller, PARENT)
    with pytest.raises(ArkoError):
        JobTokens.check_listing(caller, "")
