"""Tests of arko.master.store.sql on real databases.

Behaviour every backend must share runs on a SQLite file and on a fresh
PostgreSQL database (the ``db`` fixture); what only SQLite has (files, WAL,
``user_version``) runs on files in a temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from arko.common.errors import StartupError
from arko.master.store import migrations
from arko.master.store.migrations import LATEST
from arko.master.store.rows import (
    STATUS_DOWN,
    STATUS_LIVE,
    EventRow,
    JobFilter,
    JobRow,
    RecordRefused,
    SlaveRow,
)
from arko.master.store.sql import (
    BackupUnsupported,
    DatabaseStore,
    PostgresStore,
    SqliteStore,
    is_postgres,
    open_store,
)
from tests.unit.master.job_rows import every_field_set

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion on a fresh event loop."""
    return asyncio.run(coro)


def with_store(path: Path | str, body: Callable[[DatabaseStore], Awaitable[T]]) -> T:
    """Open the store ``path`` names (file or URL), run ``body`` on it, and always close it."""

    async def scenario() -> T:
        store = await open_store(path)
        try:
            return await body(store)
        finally:
            await store.close()

    return run(scenario())


def open_error(path: Path) -> StartupError:
    """The StartupError that opening ``path`` raises."""

    async def scenario() -> StartupError:
        before = set(threading.enumerate())
        with pytest.raises(StartupError) as caught:
            await SqliteStore.open(path)
        # aiosqlite stops a connection that failed to open without awaiting its
        # worker thread; let that thread finish while this loop still runs, or it
        # reports "Event loop is closed" in the background of a later test.
        for thread in set(threading.enumerate()) - before:
            if thread.name.endswith("(_connection_worker_thread)"):
                await asyncio.to_thread(thread.join, 10)
        return caught.value

    return run(scenario())


def user_version(path: Path) -> int:
    """The schema version stored in a database file."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def select(db: str | Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` read with the database's own driver, around arko's store."""
    if isinstance(db, str) and is_postgres(db):

        async def read() -> list[tuple[Any, ...]]:
            conn = await asyncpg.connect(db)
            try:
                return [tuple(r) for r in await conn.fetch(sql)]
            finally:
                await conn.close()

        return run(read())
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


def last_errors(db: str | Path) -> dict[int, str]:
    """Each slave's stored ``last_error``, by id."""
    return dict(select(db, "SELECT id, last_error FROM slave"))


def test_new_file_starts_empty(tmp_path: Path) -> None:
    """Opening a new file creates the schema and lists no slaves."""

    async def body(store: DatabaseStore) -> list[SlaveRow]:
        return await store.list_slaves()

    assert with_store(tmp_path / "arko.db", body) == []
    assert (tmp_path / "arko.db").is_file()


def test_upsert_twice_keeps_one_row_and_its_id(db: str) -> None:
    """Registering the same host:port twice updates the one row and keeps its id."""

    async def body(store: DatabaseStore) -> tuple[SlaveRow, SlaveRow, list[SlaveRow]]:
        first = await store.upsert_slave("10.0.0.1", 10002, STATUS_LIVE)
        second = await store.upsert_slave("10.0.0.1", 10002, STATUS_DOWN)
        return first, second, await store.list_slaves()

    first, second, rows = with_store(db, body)
    assert second.id == first.id
    assert first.status == STATUS_LIVE
    assert second.status == STATUS_DOWN
    assert rows == [second]


def test_same_host_other_port_is_another_slave(db: str) -> None:
    """Slaves are keyed by host and port together."""

    async def body(store: DatabaseStore) -> list[SlaveRow]:
        await store.upsert_slave("h", 1, STATUS_LIVE)
        await store.upsert_slave("h", 2, STATUS_LIVE)
        return await store.list_slaves()

    assert [(r.host, r.port) for r in with_store(db, body)] == [
        ("h", 1),
        ("h", 2),
    ]


def test_registration_order_is_preserved(db: str) -> None:
    """Slaves are listed in first-registration order, even after re-registering one."""

    async def body(store: DatabaseStore) -> list[SlaveRow]:
        for host in ("c", "a", "b"):
            await store.upsert_slave(host, 10002, STATUS_LIVE)
        await store.upsert_slave("c", 10002, STATUS_LIVE)
        return await store.list_slaves()

    rows = with_store(db, body)
    assert [r.host for r in rows] == ["c", "a", "b"]
    assert [r.id for r in rows] == sorted(r.id for r in rows)


def test_update_slave_persists_status_and_methods(db: str) -> None:
    """update_slave saves liveness and the method list in order."""
    methods = ("MyPipeline.Run", "MyPipeline.DryRun", "acme.ci.Build.Run")

    async def body(store: DatabaseStore) -> list[SlaveRow]:
        row = await store.upsert_slave("h", 1, STATUS_LIVE)
        await store.update_slave(row.id, STATUS_DOWN, methods)
        return await store.list_slaves()

    (row,) = with_store(db, body)
    assert row.status == STATUS_DOWN
    assert row.methods == methods


def test_upsert_keeps_the_known_methods(db: str) -> None:
    """Re-registering a slave changes its status but not its stored methods."""

    async def body(store: DatabaseStore) -> SlaveRow:
        row = await store.upsert_slave("h", 1, STATUS_DOWN)
        await store.update_slave(row.id, STATUS_DOWN, ("MyPipeline.Run",))
        return await store.upsert_slave("h", 1, STATUS_LIVE)

    row = with_store(db, body)
    assert (row.status, row.methods) == (STATUS_LIVE, ("MyPipeline.Run",))


def test_reopening_the_database_returns_the_same_slaves(db: str) -> None:
    """A store reopened on the same file knows every slave it knew."""

    async def fill(store: DatabaseStore) -> list[SlaveRow]:
        a = await store.upsert_slave("a", 1, STATUS_LIVE)
        await store.upsert_slave("::1", 2, STATUS_DOWN)
        await store.update_slave(a.id, STATUS_LIVE, ("MyPipeline.Run",))
        return await store.list_slaves()

    async def read(store: DatabaseStore) -> list[SlaveRow]:
        return await store.list_slaves()

    before = with_store(db, fill)
    assert with_store(db, read) == before
    assert len(before) == 2


def test_update_slave_keeps_why_it_is_down(db: str) -> None:
    """The reason a slave is down is saved with it, and cleared when it is back."""

    async def body(store: DatabaseStore) -> SlaveRow:
        row = await store.upsert_slave("h", 1, STATUS_LIVE)
        await store.update_slave(row.id, STATUS_DOWN, (), "UNAVAILABLE: connection refused")
        return row

    row = with_store(db, body)
    assert last_errors(db) == {row.id: "UNAVAILABLE: connection refused"}

    async def revive(store: DatabaseStore) -> None:
        await store.update_slave(row.id, STATUS_LIVE, ("MyPipeline.Run",))

    with_store(db, revive)
    assert last_errors(db) == {row.id: ""}


def test_a_reader_in_a_transaction_never_blocks_a_write(tmp_path: Path) -> None:
    """The file is in WAL mode: a reader holding a snapshot open does not stop the store writing.

    In SQLite's default rollback-journal mode the write would wait out the
    busy timeout behind the reader's lock and then fail.
    """
    path = tmp_path / "arko.db"

    async def body(store: DatabaseStore) -> tuple[object, ...]:
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as reader:
            reader.execute("BEGIN")
            assert reader.execute("SELECT count(*) FROM slave").fetchone() == (0,)
            await store.upsert_slave("h", 1, STATUS_LIVE)
            await store.save_jobs([job("j1", "queued")])
            # The reader still sees its snapshot, from before the writes.
            seen = reader.execute("SELECT count(*) FROM slave").fetchone()
            reader.execute("COMMIT")
            mode = reader.execute("PRAGMA journal_mode").fetchone()
        return seen, mode

    assert with_store(path, body) == ((0,), ("wal",))


def test_a_write_waits_for_another_writer_instead_of_failing(tmp_path: Path) -> None:
    """With a busy timeout, a write that meets another connection's write lock waits for it.

    Nothing outside SQLite shows the moment the store's write reaches the
    lock, so the other writer keeps it for half a second: a store without a
    busy timeout fails within that time ("database is locked"); this one
    waits, and writes once the lock is released.
    """
    path = tmp_path / "arko.db"

    async def body(store: DatabaseStore) -> list[SlaveRow]:
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            write = asyncio.create_task(store.upsert_slave("h", 1, STATUS_LIVE))
            await asyncio.sleep(0.5)
            if write.done():
                pytest.fail(f"the write did not wait for the lock: {write.exception()!r}")
            other.execute("COMMIT")
            await write
        return await store.list_slaves()

    assert [(r.host, r.port) for r in with_store(path, body)] == [("h", 1)]


def job(job_id: str, state: str, **fields: Any) -> JobRow:
    """A job record with a fixed method and parameters."""
    return JobRow(
        id=job_id, method="MyPipeline.Run", params={"param": "one"}, state=state, **fields
    )


def test_saved_jobs_read_back_equal(db: str) -> None:
    """A job record saved then read back has every field unchanged, each time its own."""
    created = dt.datetime(2026, 1, 2, 3, 4, 5, 600_000, tzinfo=dt.UTC)
    started = created + dt.timedelta(seconds=1, microseconds=1)
    ended = started + dt.timedelta(minutes=2)
    done = job(
        "j1",
        "succeeded",
        slave="h:1",
        result="{}",
        error_code="OK?",
        error="none",
        created_at=created,
        started_at=started,
        ended_at=ended,
    )

    async def body(store: DatabaseStore) -> JobRow | None:
        await store.save_jobs([done])
        return await store.get_job("j1")

    assert with_store(db, body) == done


def test_a_record_with_every_field_set_reads_back_equal(db: str) -> None:
    """Every field of a job record is written and read back, by both databases."""
    row = every_field_set()

    async def body(store: DatabaseStore) -> list[JobRow | None]:
        await store.save_jobs([row])
        return [await store.get_job(row.id), *await store.list_jobs(JobFilter())]

    assert with_store(db, body) == [row, row]


def test_nul_characters_are_kept_as_replacement_characters(db: str) -> None:
    """A NUL from a caller or a slave (PostgreSQL text cannot hold one) is
    stored as U+FFFD, on both databases, and fails neither its own write nor
    the rest of the batch."""
    odd = job("j1", "failed", error="bad\x00name", result="r\x00")
    odd = dataclasses.replace(odd, method="My\x00Pipeline.Run")
    plain = job("j2", "succeeded", result="{}")
    events = [EventRow("j1", 1, "OUTPUT", 1.5, "line\x00\n")]

    async def body(store: DatabaseStore) -> tuple[Any, ...]:
        await store.save_jobs([odd, plain], events)
        row = await store.upsert_slave("h", 1, STATUS_LIVE)
        await store.update_slave(row.id, STATUS_DOWN, (), "refused\x00")
        return (
            await store.get_job("j1"),
            await store.get_job("j2"),
            await store.list_events("j1", 0, 10),
        )

    got, other, kept = with_store(db, body)
    assert (got.method, got.error, got.result) == (
        "My\ufffdPipeline.Run",
        "bad\ufffdname",
        "r\ufffd",
    )
    assert other == plain
    assert [e.data for e in kept] == ["line\ufffd\n"]
    assert list(last_errors(db).values()) == ["refused\ufffd"]


def test_a_slave_address_as_long_as_registration_allows_is_kept(db: str) -> None:
    """A 253-character hostname and its port: past the old 255-character column,
    which PostgreSQL enforced, refusing the job's record."""
    host = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(host) == 253
    long = job("j1", "running", slave=f"{host}:65535")

    async def body(store: DatabaseStore) -> JobRow | None:
        await store.save_jobs([long])
        return await store.get_job("j1")

    assert with_store(db, body) == long


def test_a_record_the_database_refuses_raises_record_refused(db: str) -> None:
    """A refusal for what a record holds is told apart from an outage, and
    writes nothing of its batch."""
    fine = job("j1", "running")
    broken = job("j2", None)  # type: ignore[arg-type]  # the column is NOT NULL

    async def body(store: DatabaseStore) -> JobRow | None:
        with pytest.raises(RecordRefused):
            await store.save_jobs([fine, broken])
        return await store.get_job("j1")

    assert with_store(db, body) is None


def test_saving_a_job_again_replaces_it(db: str) -> None:
    """Saving a newer state of a job overwrites the record rather than adding one."""

    async def body(store: DatabaseStore) -> JobRow | None:
        await store.save_jobs([job("j1", "queued")])
        await store.save_jobs([job("j1", "running", slave="h:1")])
        return await store.get_job("j1")

    got = with_store(db, body)
    assert got is not None
    assert (got.state, got.slave) == ("running", "h:1")


@pytest.mark.parametrize("count", [250, 1100])
def test_many_jobs_are_saved_in_one_call(db: str, count: int) -> None:
    """A batch larger than one insert statement is saved whole: every row, every field.

    250 rows go in pieces of 128, 64, 32, 16, 8 and 2; 1,100 in pieces of
    512, 512, 64, 8 and 4: a lost or shifted piece shows as a missing or
    wrong row.
    """
    jobs = [job(f"j{i:04d}", "succeeded", slave=f"h:{i}", result=f"r{i}") for i in range(count)]

    async def body(store: DatabaseStore) -> None:
        await store.save_jobs(jobs)

    with_store(db, body)
    stored = select(db, "SELECT id, method, state, slave, result FROM job")
    assert sorted(stored) == [(j.id, j.method, j.state, j.slave, j.result) for j in jobs]


def test_unknown_job_is_none(db: str) -> None:
    """Asking for a job that was never saved gives None."""

    async def body(store: DatabaseStore) -> JobRow | None:
        return await store.get_job("nope")

    assert with_store(db, body) is None


def test_interrupt_unfinished_marks_only_queued_and_running(db: str) -> None:
    """After a crash, queued and running jobs become interrupted; finished ones stay."""
    states = {"q": "queued", "r": "running", "s": "succeeded", "f": "failed"}

    async def body(store: DatabaseStore) -> tuple[int, dict[str, JobRow | None]]:
        await store.save_jobs([job(job_id, state) for job_id, state in states.items()])
        count = await store.interrupt_unfinished("master restarted")
        return count, {job_id: await store.get_job(job_id) for job_id in states}

    count, rows = with_store(db, body)
    assert count == 2
    after = {k: (r.state, r.error_code, r.error) for k, r in rows.items() if r is not None}
    assert after == {
        "q": ("interrupted", "ABORTED", "master restarted"),
        "r": ("interrupted", "ABORTED", "master restarted"),
        "s": ("succeeded", "", ""),
        "f": ("failed", "", ""),
    }


def test_database_of_the_first_release_is_upgraded(tmp_path: Path) -> None:
    """A 0.1 database (slave table only, version 0) is upgraded and keeps its slaves."""
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(
            'CREATE TABLE "slave" ("id" INTEGER NOT NULL PRIMARY KEY, "host" VARCHAR(255) '
            'NOT NULL, "port" INTEGER NOT NULL, "status" INTEGER NOT NULL, "methods" TEXT '
            'NOT NULL, "registered_at" DATETIME NOT NULL, "updated_at" DATETIME NOT NULL)'
        )
        conn.execute('CREATE UNIQUE INDEX "slave_host_port" ON "slave" ("host", "port")')
        conn.execute(
            "INSERT INTO slave VALUES (1, 'old-host', 10002, 1, '[\"MyPipeline.Run\"]', "
            "'2025-01-01 00:00:00', '2025-01-01 00:00:00')"
        )
        conn.commit()

    async def body(store: DatabaseStore) -> tuple[list[SlaveRow], JobRow | None]:
        await store.save_jobs([job("j1", "queued")])
        return await store.list_slaves(), await store.get_job("j1")

    slaves, saved = with_store(path, body)
    assert slaves == [SlaveRow(1, "old-host", 10002, STATUS_LIVE, ("MyPipeline.Run",))]
    assert saved is not None
    assert user_version(path) == LATEST


def test_database_of_a_newer_arko_is_refused(tmp_path: Path) -> None:
    """A database whose schema is newer than this arko is refused, not damaged."""
    path = tmp_path / "new.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST + 1}")
        conn.commit()
    error = open_error(path)
    assert "newer than this arko" in error.message
    assert user_version(path) == LATEST + 1


def test_file_that_is_not_a_database_is_a_startup_error(tmp_path: Path) -> None:
    """A file holding something else is refused with a message naming it."""
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite\x00\xff" * 512)
    error = open_error(path)
    assert str(path) in error.message
    assert "not a database" in error.message


def test_path_in_missing_directory_is_a_startup_error(tmp_path: Path) -> None:
    """A database path whose directory does not exist is refused with its path."""
    path = tmp_path / "no" / "such" / "dir" / "arko.db"
    error = open_error(path)
    assert str(path) in error.message
    assert "cannot use database" in error.message


def test_directory_as_database_is_a_startup_error(tmp_path: Path) -> None:
    """A path naming a directory is refused, not crashed on."""
    assert str(tmp_path) in open_error(tmp_path).message


def test_postgres_database_of_the_first_release_is_upgraded(postgres_url: str) -> None:
    """The one migration path also upgrades PostgreSQL from version 1, keeping the slaves."""

    async def make_v1() -> None:
        store = await open_store(postgres_url)  # creates LATEST: start over at version 1
        db = store._db
        try:
            await db.aexecute_sql('DROP TABLE "job_event", "job", "slave", "arko_schema"')
            await db.run(migrations.upgrade, db, 1)
            await db.aexecute_sql(
                "INSERT INTO slave (host, port, status, methods, registered_at, updated_at) "
                "VALUES ('h', 7, 1, '[\"A.B\"]', now(), now())"
            )
        finally:
            await store.close()

    run(make_v1())
    assert select(postgres_url, "SELECT version FROM arko_schema") == [(1,)]

    async def body(store: DatabaseStore) -> list[SlaveRow]:
        return await store.list_slaves()

    (slave,) = with_store(postgres_url, body)
    assert (slave.host, slave.port, slave.methods) == ("h", 7, ("A.B",))
    assert select(postgres_url, "SELECT version FROM arko_schema") == [(LATEST,)]
    assert select(postgres_url, "SELECT last_error, down_since FROM slave") == [("", None)]
    column = "SELECT data_type FROM information_schema.columns WHERE table_name = 'job' AND "
    assert select(postgres_url, column + "column_name = 'slave'") == [("text",)]


def test_postgres_backup_is_refused_naming_pg_dump(postgres_url: str, tmp_path: Path) -> None:
    """Admin/Backup copies SQLite files; on PostgreSQL it says what to use instead."""

    async def body(store: DatabaseStore) -> BackupUnsupported:
        assert isinstance(store, PostgresStore)
        with pytest.raises(BackupUnsupported) as caught:
            await store.backup(tmp_path / "copy.db")
        return caught.value

    error = with_store(postgres_url, body)
    assert error.code.name == "FAILED_PRECONDITION"
    assert "pg_dump" in error.message
    assert not (tmp_path / "copy.db").exists()
