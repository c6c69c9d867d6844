"""peewee models of the master's database, at the newest schema version.

Only :mod:`arko.master.store` and :mod:`arko.master.migrations` use them; the
database is bound at run time, never here.
"""

from __future__ import annotations

import datetime as dt

import peewee


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SlaveModel(peewee.Model):
    id = peewee.AutoField()
    host = peewee.CharField()
    port = peewee.IntegerField()
    status = peewee.IntegerField(default=0)
    methods = peewee.TextField(default="[]")
    registered_at = peewee.DateTimeField(default=_now)
    updated_at = peewee.DateTimeField(default=_now)
    last_error = peewee.TextField(default="")
    # When the slave was last seen going down; NULL while it is live.
    down_since = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "slave"
        indexes = ((("host", "port"), True),)


class JobModel(peewee.Model):
    id = peewee.CharField(primary_key=True, max_length=32)
    method = peewee.CharField(max_length=512)
    params = peewee.TextField(default="{}")
    state = peewee.CharField(max_length=16, index=True)
    slave = peewee.CharField(default="")
    result = peewee.TextField(default="")
    error_code = peewee.CharField(default="", max_length=32)
    error = peewee.TextField(default="")
    created_at = peewee.DateTimeField(null=True, index=True)
    started_at = peewee.DateTimeField(null=True)
    ended_at = peewee.DateTimeField(null=True)
    args = peewee.TextField(default="{}")
    cancelled_by = peewee.TextField(default="")
    detached = peewee.BooleanField(default=False)
    output_bytes = peewee.IntegerField(default=0)
    output_truncated = peewee.BooleanField(default=False)
    last_seq = peewee.IntegerField(default=0)

    class Meta:
        table_name = "job"


class JobEventModel(peewee.Model):
    """A job's kept output (OUTPUT and TRUNCATED events); the rest comes from the job row."""

    job_id = peewee.CharField(max_length=32)
    seq = peewee.IntegerField()
    kind = peewee.CharField(max_length=16)
    time = peewee.FloatField()
    data = peewee.TextField(default="")

    class Meta:
        table_name = "job_event"
        primary_key = peewee.CompositeKey("job_id", "seq")
