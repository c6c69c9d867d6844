"""Throw-away PostgreSQL databases for tests: one fresh database per test, dropped after.

The server is ``ARKO_TEST_POSTGRES`` (default the machine's own,
``postgresql://postgres@127.0.0.1:5432/test``; its database is only used to
create and drop the others). A server that cannot be reached fails the test
with a message saying so: these tests are never skipped quietly. Setting
``ARKO_TEST_POSTGRES=off`` skips them, for a machine known to have none.
"""

from __future__ import annotations

import asyncio
import os
import urllib.parse
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    """The maintenance URL of the test server."""
    return os.environ.get("ARKO_TEST_POSTGRES", DEFAULT)


async def admin(sql: str) -> None:
    """Run one statement on the maintenance database (CREATE or DROP DATABASE)."""
    conn = await asyncpg.connect(server_url(), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def fresh_database() -> Iterator[str]:
    """Create an empty database, yield its URL, drop it (closing what still uses it)."""
    if server_url() == "off":
        pytest.skip("ARKO_TEST_POSTGRES=off: PostgreSQL tests skipped on purpose")
    name = f"arko_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {server_url()} ({type(exc).__name__}: {exc}); "
            "start it (README, Development) or set ARKO_TEST_POSTGRES to another server",
            pytrace=False,
        )
    parts = urllib.parse.urlsplit(server_url())
    try:
        yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
