"""Schema versions of the master's database and the steps between them.

Each step creates tables from models frozen as they were at that version
(never from :mod:`arko.master.store.models`, which moves on) and alters them with
peewee's schema migrator, so one migration path serves every database peewee
speaks. SQLite keeps the version in ``PRAGMA user_version``; other databases
in a one-row ``arko_schema`` table. A database made by an older arko is
upgraded step by step; one made by a newer arko is refused rather than
damaged. These functions are synchronous peewee code, run off the event loop
(through ``AsyncDatabase.run``, a greenlet).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import peewee
from playhouse.migrate import SchemaMigrator, migrate

LATEST = 8
# PostgreSQL advisory lock key taken while the schema is upgraded ("arko" in ASCII).
_UPGRADE_LOCK = 0x61726B6F


class SchemaTooNew(Exception):
    """The database was written by a newer arko than this one."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _SlaveV1(peewee.Model):
    host = peewee.CharField()
    port = peewee.IntegerField()
    status = peewee.IntegerField()
    methods = peewee.TextField()
    registered_at = peewee.DateTimeField(default=_now)
    updated_at = peewee.DateTimeField(default=_now)

    class Meta:
        table_name = "slave"
        indexes = ((("host", "port"), True),)


class _JobV2(peewee.Model):
    id = peewee.CharField(primary_key=True, max_length=32)
    method = peewee.CharField(max_length=512)
    params = peewee.TextField(default="{}")
    state = peewee.CharField(max_length=16, index=True)
    slave = peewee.CharField(default="")
    result = peewee.TextField(default="")
    error_code = peewee.CharField(default="", max_length=32)
    error = peewee.TextField(default="")
    created_at = peewee.DateTimeField(null=True)
    started_at = peewee.DateTimeField(null=True)
    ended_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "job"


class _JobEventV3(peewee.Model):
    job_id = peewee.CharField(max_length=32)
    seq = peewee.IntegerField()
    kind = peewee.CharField(max_length=16)
    time = peewee.FloatField()
    data = peewee.TextField(default="")

    class Meta:
        table_name = "job_event"
        primary_key = peewee.CompositeKey("job_id", "seq")


def _v1(db: peewee.Database) -> None:
    """0.1: the slave list (SQLite databases of that release have user_version 0)."""
    db.bind([_SlaveV1])
    db.create_tables([_SlaveV1], safe=True)


def _v2(db: peewee.Database) -> None:
    """Job records, and why a slave is down."""
    migrator = SchemaMigrator.from_database(db)
    migrate(migrator.add_column("slave", "last_error", peewee.TextField(default="")))
    db.bind([_JobV2])
    db.create_tables([_JobV2])


def _v3(db: peewee.Database) -> None:
    """The Jobs API (typed arguments, who cancelled, kept output and its events),
    and when each slave went down, so long-dead slaves can be forgotten.

    A slave already down is taken as down since its row last changed.
    """
    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column("slave", "down_since", peewee.DateTimeField(null=True)),
        migrator.add_column("job", "args", peewee.TextField(default="{}")),
        migrator.add_column("job", "cancelled_by", peewee.TextField(default="")),
        migrator.add_column("job", "detached", peewee.BooleanField(default=False)),
        migrator.add_column("job", "output_bytes", peewee.IntegerField(default=0)),
        migrator.add_column("job", "output_truncated", peewee.BooleanField(default=False)),
        migrator.add_column("job", "last_seq", peewee.IntegerField(default=0)),
        migrator.add_index("job", ("created_at",), False),
    )
    db.execute_sql('UPDATE "slave" SET "down_since" = "updated_at" WHERE "status" = 0')
    db.bind([_JobEventV3])
    db.create_tables([_JobEventV3])


class _MasterV4(peewee.Model):
    id = peewee.CharField(primary_key=True, max_length=255)
    address = peewee.TextField(default="")
    started_at = peewee.DateTimeField(default=_now)
    heartbeat_at = peewee.DateTimeField(default=_now)

    class Meta:
        table_name = "master"


def _v4(db: peewee.Database) -> None:
    """Several masters on one database: their heartbeats, who pings each slave
    (a lease) and what it last reported (labels, capacity), which master runs
    each job, and the public half of each slave's call secret."""
    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column("slave", "call_nonce", peewee.TextField(default="")),
        migrator.add_column("slave", "owner", peewee.CharField(default="", max_length=255)),
        migrator.add_column("slave", "lease_until", peewee.DateTimeField(null=True)),
        migrator.add_column("slave", "labels", peewee.TextField(default="{}")),
        migrator.add_column("slave", "capacity", peewee.IntegerField(default=0)),
        migrator.add_column("job", "master", peewee.CharField(default="", max_length=255)),
        migrator.add_index("job", ("master", "state"), False),
    )
    db.bind([_MasterV4])
    db.create_tables([_MasterV4])


def _v5(db: peewee.Database) -> None:
    """A job's slave address as text: a slave may register under a hostname of
    253 characters, and with its port that is past the 255 of the old column,
    so PostgreSQL refused the job's record. SQLite never enforced the length,
    and altering a column there copies the whole table: it is left as it is."""
    if isinstance(db, peewee.SqliteDatabase):
        return
    migrator = SchemaMigrator.from_database(db)
    migrate(migrator.alter_column_type("job", "slave", peewee.TextField(default="")))


def _v6(db: peewee.Database) -> None:
    """Which transaction last changed each slave, so a heartbeat on a shared
    database reads only the slaves changed since the last one."""
    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column("slave", "changed", peewee.BigIntegerField(default=0)),
        migrator.add_index("slave", ("changed",), False),
    )


class _SecretV7(peewee.Model):
    name = peewee.CharField(primary_key=True, max_length=128)
    sealed = peewee.TextField()
    methods = peewee.TextField(default='["*"]')
    created_at = peewee.DateTimeField(default=_now)
    updated_at = peewee.DateTimeField(default=_now)

    class Meta:
        table_name = "secret"


def _v7(db: peewee.Database) -> None:
    """Pipelines as code: child jobs (parent, trigger, depth, a job token's
    hash) and the secrets the master keeps for jobs."""
    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column("job", "parent_id", peewee.CharField(default="", max_length=32)),
        migrator.add_column("job", "trigger", peewee.CharField(default="api", max_length=300)),
        migrator.add_column("job", "depth", peewee.IntegerField(default=0)),
        migrator.add_column("job", "outlive_parent", peewee.BooleanField(default=False)),
        migrator.add_column("job", "token_hash", peewee.CharField(default="", max_length=64)),
        migrator.add_index("job", ("parent_id", "created_at"), False),
    )
    db.bind([_SecretV7])
    db.create_tables([_SecretV7])


class _DeliveryV8(peewee.Model):
    trigger = peewee.CharField(max_length=100)
    delivery = peewee.CharField(max_length=200)
    job_id = peewee.CharField(default="", max_length=32)
    received_at = peewee.DateTimeField(default=_now)

    class Meta:
        table_name = "delivery"
        primary_key = peewee.CompositeKey("trigger", "delivery")


class _ScheduleSlotV8(peewee.Model):
    schedule = peewee.CharField(max_length=100)
    slot = peewee.DateTimeField()
    master = peewee.CharField(default="", max_length=255)
    fired_at = peewee.DateTimeField(default=_now)

    class Meta:
        table_name = "schedule_slot"
        primary_key = peewee.CompositeKey("schedule", "slot")


def _v8(db: peewee.Database) -> None:
    """Triggers and schedules: each webhook delivery and each schedule slot is
    claimed by one row, so it starts one job however many masters share the
    database; and a trigger's jobs are found by their ``trigger``."""
    migrator = SchemaMigrator.from_database(db)
    migrate(migrator.add_index("job", ("trigger", "created_at"), False))
    db.bind([_DeliveryV8, _ScheduleSlotV8])
    db.create_tables([_DeliveryV8, _ScheduleSlotV8])


STEPS: dict[int, Callable[[peewee.Database], None]] = {
    1: _v1,
    2: _v2,
    3: _v3,
    4: _v4,
    5: _v5,
    6: _v6,
    7: _v7,
    8: _v8,
}


def version(db: peewee.Database) -> int:
    """The schema version stored in the database."""
    if isinstance(db, peewee.SqliteDatabase):
        return int(db.execute_sql("PRAGMA user_version").fetchone()[0])
    if "arko_schema" not in db.get_tables():
        return 0
    row = db.execute_sql("SELECT version FROM arko_schema").fetchone()
    return int(row[0]) if row else 0


def _set_version(db: peewee.Database, target: int) -> None:
    if isinstance(db, peewee.SqliteDatabase):
        db.execute_sql(f"PRAGMA user_version = {int(target)}")
        return
    db.execute_sql("CREATE TABLE IF NOT EXISTS arko_schema (version INTEGER NOT NULL)")
    db.execute_sql("DELETE FROM arko_schema")
    db.execute_sql(f"INSERT INTO arko_schema (version) VALUES ({int(target)})")


def upgrade(db: peewee.Database, upto: int = LATEST) -> int:
    """Bring the schema to ``upto`` (:data:`LATEST`; older ones for tests of upgrades);
    return the version it started at.

    Raises:
        SchemaTooNew: the database's version is above :data:`LATEST`.
    """
    if isinstance(db, peewee.PostgresqlDatabase):
        # Masters sharing one database may start together: the first to take
        # this lock upgrades, the others then find the schema current.
        with db.atomic():
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_UPGRADE_LOCK,))
            return _upgrade(db, upto)
    return _upgrade(db, upto)


def _upgrade(db: peewee.Database, upto: int) -> int:
    start = version(db)
    if start > LATEST:
        raise SchemaTooNew(f"schema version {start} is newer than this arko ({LATEST})")
    for target in range(start + 1, upto + 1):
        with db.atomic():
            STEPS[target](db)
            _set_version(db, target)
    return start
