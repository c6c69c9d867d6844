"""Records and events as ``arko.v1`` messages: what every adapter answers with.

The gRPC servicers send these messages as they are; the HTTP API renders the
same ones in the protobuf JSON mapping, so a job reads the same over both.
"""

from __future__ import annotations

import datetime as dt

from arko.master.jobs.live import OUTPUT, Event
from arko.master.jobs.state import JobState
from arko.master.store.rows import JOB_TIMES, JobRow
from arko.v1 import jobs_pb2


def job_message(row: JobRow) -> jobs_pb2.Job:
    """A record as the wire carries it."""
    job = jobs_pb2.Job(
        id=row.id,
        method=row.method,
        params=row.params,
        state=row.state.wire,
        slave=row.slave,
        code=row.error_code or ("OK" if row.state == JobState.SUCCEEDED else ""),
        error=row.error,
        result=row.result,
        cancelled_by=row.cancelled_by,
        detached=row.detached,
        output_bytes=row.output_bytes,
        output_truncated=row.output_truncated,
        parent_id=row.parent_id,
        trigger=row.trigger,
        depth=row.depth,
        outlive_parent=row.outlive_parent,
    )
    if row.args:
        job.args.update(row.args)
    for name in JOB_TIMES:
        stamp: dt.datetime | None = getattr(row, name)
        if stamp is not None:
            getattr(job, name).FromDatetime(stamp.replace(tzinfo=stamp.tzinfo or dt.UTC))
    return job


def event_message(job_id: str, event: Event) -> jobs_pb2.JobEvent:
    """An event as the wire carries it."""
    message = jobs_pb2.JobEvent(
        job_id=job_id,
        seq=event.seq,
        kind=event.kind,
        state=event.state.wire,
    )
    message.time.FromNanoseconds(int(event.time * 1e9))
    if event.kind == OUTPUT:
        message.output = event.data
    elif event.data:
        message.note = event.data
    if event.record is not None:
        message.job.CopyFrom(job_message(event.record))
    return message
