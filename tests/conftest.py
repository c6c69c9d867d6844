"""Fixtures shared by all tests, and the PostgreSQL pass of the integration suite.

With ``ARKO_TEST_MASTER_DB=postgresql`` every fleet puts its masters on a fresh
PostgreSQL database (see arko.testing.Fleet), so the same tests check the
master on both databases. Tests about the SQLite file itself are marked
``sqlite_only("why")`` and skipped in that pass, the reason shown; so are
tests marked ``one_pass("why")``, which start no master on the pass's
database and would only repeat what the SQLite pass already ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from arko.testing import (
    MASTER_DB_ENV,
    POSTGRES_ENV,
    PostgresUnavailable,
    check_postgres,
    master_db_kind,
    postgres_server,
)
from tests.postgres import OFF, fresh_database


def pytest_configure(config: pytest.Config) -> None:
    """In the PostgreSQL pass, stop at once when there is no server rather than fail each test."""
    try:
        kind = master_db_kind()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    if kind != "postgresql":
        return
    if postgres_server() == OFF:
        raise pytest.UsageError(
            f"{MASTER_DB_ENV}=postgresql asks for PostgreSQL, but {POSTGRES_ENV}=off says "
            "there is none: drop one of the two"
        )
    try:
        check_postgres()
    except PostgresUnavailable as exc:
        raise pytest.UsageError(str(exc)) from None


# Marker name -> how its skip in the PostgreSQL pass is worded.
_SQLITE_PASS_ONLY = {"sqlite_only": "SQLite only", "one_pass": "run in the SQLite pass"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``sqlite_only`` and ``one_pass`` tests in the PostgreSQL pass, with their
    reason; demand one."""
    postgres = master_db_kind() == "postgresql"
    for item in items:
        for name, why in _SQLITE_PASS_ONLY.items():
            marker = item.get_closest_marker(name)
            if marker is None:
                continue
            if len(marker.args) != 1 or not isinstance(marker.args[0], str):
                raise pytest.UsageError(f"{item.nodeid}: {name} takes one reason, a string")
            if postgres:
                item.add_marker(pytest.mark.skip(reason=f"{why}: {marker.args[0]}"))
                break


# Modules whose tests one pytest-xdist worker runs, one after the other, so
# that their module fixture is made once: one browser and site, one wheel
# built and installed. (Not xdist_group marks: xdist groups by renaming node
# ids, which pytest 9.2 no longer lets a plugin do, so the marks did nothing.)
ONE_WORKER = {
    "tests/integration/test_web_ui.py": "web_ui",
    "tests/integration/test_wheel.py": "wheel",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``--dist loadgroup``, xdist's scheduler with the ONE_WORKER modules as groups."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class Grouped(LoadGroupScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            group = ONE_WORKER.get(nodeid.split("::")[0])
            return f"group:{group}" if group else str(super()._split_scope(nodeid))

    return Grouped(config, log)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (dropped after the test)."""
    yield from fresh_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The master's ``--db``: a new SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "arko.db")
    else:
        yield from fresh_database()


@pytest.fixture
def master_db(tmp_path: Path) -> Iterator[str]:
    """An empty database of the kind this pass puts masters on (``ARKO_TEST_MASTER_DB``)."""
    if master_db_kind() == "postgresql":
        yield from fresh_database()
    else:
        yield str(tmp_path / "arko.db")
