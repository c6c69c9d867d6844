"""JobState: the words stored and journaled, the wire's names, and which states are final."""

from __future__ import annotations

import pytest

from arko.master.jobs.state import FINAL, UNFINISHED, JobState, wire_name
from arko.v1 import jobs_pb2

# The words databases and journals written by earlier releases hold: they must
# read back as the same states.
STORED = [
    (JobState.QUEUED, "queued"),
    (JobState.RUNNING, "running"),
    (JobState.SUCCEEDED, "succeeded"),
    (JobState.FAILED, "failed"),
    (JobState.CANCELLED, "cancelled"),
    (JobState.INTERRUPTED, "interrupted"),
]


@pytest.mark.parametrize(("state", "word"), STORED)
def test_each_state_is_the_word_stored_today(state: JobState, word: str) -> None:
    """A state equals, prints and reads back as the word earlier releases stored."""
    assert state == word
    assert f"{state}" == word
    assert JobState(word) is state


def test_there_are_exactly_the_stored_states() -> None:
    """No state is missing from the table above, and none was added without it."""
    assert list(JobState) == [state for state, _ in STORED]


def test_each_state_is_the_wire_state_of_its_name() -> None:
    """Every arko.v1.JobState but UNSPECIFIED is one state, under its upper-cased word."""
    assert {jobs_pb2.JobState.Name(s.wire): s for s in JobState} == {
        name: JobState(name.lower())
        for name in (v.name for v in jobs_pb2.JobState.DESCRIPTOR.values)
        if name != "JOB_STATE_UNSPECIFIED"
    }


def test_final_and_unfinished_states() -> None:
    """Queued and running jobs are unfinished; every other state is final."""
    assert {"queued", "running"} == UNFINISHED
    assert {"succeeded", "failed", "cancelled", "interrupted"} == FINAL


def test_a_wire_number_becomes_the_word_a_listing_filters_on() -> None:
    """Known numbers become states' words; 0 a word no state has; others are refused."""
    assert wire_name(jobs_pb2.CANCELLED) == "cancelled"
    assert wire_name(jobs_pb2.JOB_STATE_UNSPECIFIED) == "job_state_unspecified"
    with pytest.raises(ValueError):
        wire_name(99)
