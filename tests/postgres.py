"""Throw-away PostgreSQL databases for tests: one fresh database per test, dropped after.

The server is ``ARKO_TEST_POSTGRES`` (default the machine's own,
``postgresql://postgres@127.0.0.1:5432/test``; its database is only used to
create and drop the others). A server that cannot be reached fails the test
with a message saying so: these tests are never skipped quietly. Setting
``ARKO_TEST_POSTGRES=off`` skips them, for a machine known to have none.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from arko.testing import (
    PostgresUnavailable,
    create_postgres_database,
    drop_postgres_database,
    postgres_server,
)

OFF = "off"


def fresh_database() -> Iterator[str]:
    """Create an empty database, yield its URL, drop it (closing what still uses it)."""
    if postgres_server() == OFF:
        pytest.skip("ARKO_TEST_POSTGRES=off: PostgreSQL tests skipped on purpose")
    try:
        url = create_postgres_database()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield url
    finally:
        drop_postgres_database(url)
