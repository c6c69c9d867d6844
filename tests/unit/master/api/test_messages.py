"""Events as the wire carries them: time to the nanosecond, output or note by kind."""

from __future__ import annotations

import pytest

from arko.master.api.messages import event_message
from arko.master.jobs.live import FINISHED, OUTPUT, STARTED, TRUNCATED, Event
from arko.master.jobs.state import JobState
from arko.v1 import jobs_pb2

JOB = "ab" * 16


@pytest.mark.parametrize(
    ("kind", "data", "output", "note"),
    [
        (OUTPUT, '{"number": 1}', '{"number": 1}', ""),
        (OUTPUT, "", "", ""),
        (STARTED, "127.0.0.1:1", "", "127.0.0.1:1"),
        (TRUNCATED, "output kept up to 10 bytes", "", "output kept up to 10 bytes"),
        (FINISHED, "", "", ""),
    ],
)
def test_an_event_carries_its_data_as_output_or_note(
    kind: str, data: str, output: str, note: str
) -> None:
    event = Event(3, kind, 1_700_000_000.123456, JobState.RUNNING, data)
    message = event_message(JOB, event)
    assert (message.job_id, message.seq) == (JOB, 3)
    assert message.kind == jobs_pb2.JobEvent.Kind.Value(kind)
    assert message.state == jobs_pb2.RUNNING
    assert (message.output, message.note) == (output, note)
    assert not message.HasField("job")
    expected = jobs_pb2.JobEvent().time
    expected.FromNanoseconds(int(event.time * 1e9))
    assert message.time == expected
