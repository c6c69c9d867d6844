"""Schema versions of the master's database and the steps between them.

The version lives in SQLite's ``PRAGMA user_version``. A database made by an
older arko is upgraded step by step with peewee's migrator; one made by a newer
arko is refused rather than damaged. These functions are synchronous peewee
code, run through ``AsyncSqliteDatabase.run`` (a greenlet), off the event loop.
"""

from __future__ import annotations

from collections.abc import Callable

import peewee
from playhouse.migrate import SqliteMigrator, migrate

from arko.master.models import JobModel, SlaveModel

LATEST = 3


class SchemaTooNew(Exception):
    """The database was written by a newer arko than this one."""


def _v1(db: peewee.Database) -> None:
    """0.1: the slave list (databases of that release have user_version 0)."""
    if "slave" not in db.get_tables():
        db.execute_sql(
            'CREATE TABLE "slave" ("id" INTEGER NOT NULL PRIMARY KEY, "host" VARCHAR(255) '
            'NOT NULL, "port" INTEGER NOT NULL, "status" INTEGER NOT NULL, "methods" TEXT '
            'NOT NULL, "registered_at" DATETIME NOT NULL, "updated_at" DATETIME NOT NULL)'
        )
        db.execute_sql('CREATE UNIQUE INDEX "slave_host_port" ON "slave" ("host", "port")')


def _v2(db: peewee.Database) -> None:
    """Job records, and why a slave is down."""
    migrator = SqliteMigrator(db)
    migrate(migrator.add_column("slave", "last_error", SlaveModel.last_error))
    db.create_tables([JobModel])


def _v3(db: peewee.Database) -> None:
    """When each slave went down, so long-dead slaves can be forgotten.

    A slave already down is taken as down since its row last changed.
    """
    migrator = SqliteMigrator(db)
    migrate(migrator.add_column("slave", "down_since", SlaveModel.down_since))
    db.execute_sql('UPDATE "slave" SET "down_since" = "updated_at" WHERE "status" = 0')


STEPS: dict[int, Callable[[peewee.Database], None]] = {1: _v1, 2: _v2, 3: _v3}


def version(db: peewee.Database) -> int:
    """The schema version stored in the database file."""
    return int(db.execute_sql("PRAGMA user_version").fetchone()[0])


def upgrade(db: peewee.Database) -> int:
    """Bring the schema to :data:`LATEST`; return the version it started at.

    Raises:
        SchemaTooNew: the file's version is above :data:`LATEST`.
    """
    start = version(db)
    if start > LATEST:
        raise SchemaTooNew(f"schema version {start} is newer than this arko ({LATEST})")
    for target in range(start + 1, LATEST + 1):
        with db.atomic():
            STEPS[target](db)
            db.execute_sql(f"PRAGMA user_version = {target}")
    return start
