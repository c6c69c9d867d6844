"""A stand-in for the other masters of a shared database, for unit tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from arko.master.cluster.coordination import SingleMaster
from arko.master.store.rows import JobRow


class NotAlone(SingleMaster):
    """A master named ``name`` that shares its database: it pings only the
    slaves it is granted, and its early job writes go to ``commit``."""

    __slots__ = ("_commit", "_name")

    def __init__(
        self, name: str = "m1", commit: Callable[[list[JobRow]], Awaitable[None]] | None = None
    ) -> None:
        self._name = name
        self._commit = commit

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def alone(self) -> bool:
        return False

    async def commit_jobs(self, rows: Sequence[JobRow]) -> None:
        if self._commit is not None:
            await self._commit(list(rows))
