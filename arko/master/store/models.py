"""peewee models of the master's database, at the newest schema version.

Only :mod:`arko.master.store.sql` and :mod:`arko.master.store.migrations` use them; the
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
    # Public half of the slave's call secret: with the join token, any master
    # derives the secret from it (arko.common.auth.call_secret).
    call_nonce = peewee.TextField(default="")
    # Several masters on one database: which one pings the slave, until when.
    owner = peewee.CharField(default="", max_length=255)
    lease_until = peewee.DateTimeField(null=True)
    # What its arko.v1.Slave/Status last said, for masters that do not ping it.
    labels = peewee.TextField(default="{}")
    capacity = peewee.IntegerField(default=0)
    # PostgreSQL: the id of the transaction that last changed what other
    # masters read (not the lease), so a heartbeat reads only newer rows.
    changed = peewee.BigIntegerField(default=0, index=True)

    class Meta:
        table_name = "slave"
        indexes = ((("host", "port"), True),)


class JobModel(peewee.Model):
    id = peewee.CharField(primary_key=True, max_length=32)
    method = peewee.CharField(max_length=512)
    params = peewee.TextField(default="{}")
    state = peewee.CharField(max_length=16, index=True)
    slave = peewee.TextField(default="")  # host:port, up to 253 + 6 characters
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
    # The master running the job; another takes it over should that one die.
    master = peewee.CharField(default="", max_length=255)
    parent_id = peewee.CharField(default="", max_length=32)
    trigger = peewee.CharField(default="api", max_length=300)
    depth = peewee.IntegerField(default=0)
    outlive_parent = peewee.BooleanField(default=False)
    token_hash = peewee.CharField(default="", max_length=64)

    class Meta:
        table_name = "job"
        indexes = (
            (("master", "state"), False),
            (("parent_id", "created_at"), False),
            (("trigger", "created_at"), False),
        )


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


class SecretModel(peewee.Model):
    """A secret for jobs: its value encrypted (AES-GCM), never in clear."""

    name = peewee.CharField(primary_key=True, max_length=128)
    # nonce + ciphertext + tag, base64; the name is the associated data.
    sealed = peewee.TextField()
    methods = peewee.TextField(default='["*"]')  # JSON list of globs
    created_at = peewee.DateTimeField(default=_now)
    updated_at = peewee.DateTimeField(default=_now)

    class Meta:
        table_name = "secret"


class DeliveryModel(peewee.Model):
    """A webhook delivery a trigger has seen, and the job it started ("" while starting)."""

    trigger = peewee.CharField(max_length=100)
    delivery = peewee.CharField(max_length=200)
    job_id = peewee.CharField(default="", max_length=32)
    received_at = peewee.DateTimeField(default=_now)

    class Meta:
        table_name = "delivery"
        primary_key = peewee.CompositeKey("trigger", "delivery")


class ScheduleSlotModel(peewee.Model):
    """A schedule's slot that has fired, and which master fired it."""

    schedule = peewee.CharField(max_length=100)
    slot = peewee.DateTimeField()
    master = peewee.CharField(default="", max_length=255)
    fired_at = peewee.DateTimeField(default=_now)

    class Meta:
        table_name = "schedule_slot"
        primary_key = peewee.CompositeKey("schedule", "slot")


class MasterModel(peewee.Model):
    """A master sharing the database, and when it last said it is alive."""

    id = peewee.CharField(primary_key=True, max_length=255)
    address = peewee.TextField(default="")
    started_at = peewee.DateTimeField(default=_now)
    heartbeat_at = peewee.DateTimeField(default=_now)

    class Meta:
        table_name = "master"
