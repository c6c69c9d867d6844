"""JobRow is the one definition of a job record: the SQL schema and statements agree with it."""

from __future__ import annotations

import dataclasses
import re

import peewee

from arko.master.jobs.state import JobState
from arko.master.store.models import JobModel
from arko.master.store.rows import JOB_FIELDS, JOB_TIMES, JobRow
from arko.master.store.sql import job_upsert
from tests.unit.master.job_rows import every_field_set


def test_job_fields_are_the_row_fields_in_order() -> None:
    """JOB_FIELDS lists JobRow's fields, in declaration order."""
    assert tuple(f.name for f in dataclasses.fields(JobRow)) == JOB_FIELDS


def test_job_fields_are_the_job_table_columns() -> None:
    """The job table's model has one column per field, in the same order."""
    assert tuple(f.column_name for f in JobModel._meta.sorted_fields) == JOB_FIELDS


def test_job_times_are_the_date_columns() -> None:
    """The fields converted between Unix seconds and datetimes are the table's date columns."""
    dates = [f.name for f in JobModel._meta.sorted_fields if isinstance(f, peewee.DateTimeField)]
    assert list(JOB_TIMES) == dates


def test_the_job_insert_writes_every_field_in_order() -> None:
    """The statement that saves job records names every field, and passes one value each."""
    row = JobRow(id="a" * 32, method="A.B", params={"p": "1"}, state=JobState.QUEUED)
    sql, values = job_upsert([row])
    insert = re.match(r'INSERT INTO "job" \(([^)]*)\)', sql)
    assert insert is not None
    assert tuple(c.strip().strip('"') for c in insert.group(1).split(",")) == JOB_FIELDS
    assert len(values) == len(JOB_FIELDS)


def test_the_sample_record_sets_every_field() -> None:
    """every_field_set() leaves no field at its default, so round trips check them all."""
    row = every_field_set()
    defaults = {
        f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        for f in dataclasses.fields(JobRow)
    }
    assert [name for name in JOB_FIELDS if getattr(row, name) == defaults[name]] == []
