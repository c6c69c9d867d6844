"""A job's state: the one list of them, what each is called where, and which are final.

The values are the words the database, the journal and the logs have always
held, so a record reads the same before and after; the wire carries the same
words upper-cased, as the names of ``arko.v1.JobState``.
"""

from __future__ import annotations

import enum

from arko.v1 import jobs_pb2

# Why a job in flight was interrupted: by the master stopping, or (at start)
# found unfinished after a crash.
INTERRUPTED_REASON = "the master stopped while the job was in flight"


class JobState(enum.StrEnum):
    """Where a job is in its life; a ``str``, so it is stored and compared as its value."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def wire(self) -> jobs_pb2.JobState:
        """Its ``arko.v1.JobState`` number."""
        return _WIRE[self]


FINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.INTERRUPTED})
UNFINISHED = frozenset(JobState) - FINAL
_WIRE: dict[JobState, jobs_pb2.JobState] = {
    state: getattr(jobs_pb2, state.upper()) for state in JobState
}


def wire_name(number: int) -> str:
    """An ``arko.v1.JobState`` number as a listing's filter takes states: lower-cased.

    ``JOB_STATE_UNSPECIFIED`` becomes a word no state has, which the filter
    refuses by name like any other unknown state.

    Raises:
        ValueError: the number names nothing in ``arko.v1.JobState``.
    """
    return jobs_pb2.JobState.Name(number).lower()
