"""Where a build step's command runs: the seam between ``arko.v1.Steps`` and an engine.

:class:`~arko.slave.builtin.steps.StepRun` starts one process, reads its
pipes and watches it; what that process is, and how everything it started is
ended, is a :class:`Launch` a :class:`Runner` makes. On the host
(:class:`HostRunner`) the process is the step's own command in a session of
its own, ended by signalling its process group. In a container
(:class:`arko.slave.builtin.podman.PodmanRunner`) it is ``podman run``, and
ending it also removes the container.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import grpc
import structlog

from arko.common.errors import ArkoError
from arko.slave.builtin.stepspec import StepSpec

log = structlog.get_logger("arko.slave.steps")

_POLL = 0.05
# Process groups of steps still running, killed if the slave exits before they end.
_LIVE_GROUPS: set[int] = set()


class NotRunnable(ArkoError):
    """The step is declared but cannot run here (a missing tool, a container engine)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


def kill(pgid: int, sig: int) -> bool:
    """Signal a process group; False when none of it is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


@atexit.register
def _kill_leftovers() -> None:
    """A slave that exits mid-step leaves no step process behind."""
    for pgid in list(_LIVE_GROUPS):
        kill(pgid, signal.SIGKILL)


def track(pgid: int, live: bool) -> None:
    """Count a step's process group as running (killed at exit) or as ended."""
    if live:
        _LIVE_GROUPS.add(pgid)
    else:
        _LIVE_GROUPS.discard(pgid)


async def gone(pgid: int, within: float) -> bool:
    """Wait up to ``within`` seconds for the group to end; whether it has."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while kill(pgid, 0):
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(_POLL)
    return True


async def end_group(pgid: int, grace: float, step: str) -> None:
    """SIGTERM the group, SIGKILL whatever is left after ``grace`` seconds."""
    if not kill(pgid, signal.SIGTERM) or await gone(pgid, grace):
        return
    if kill(pgid, signal.SIGKILL):
        log.info("step_killed", step=step, pgid=pgid)


class Launch(Protocol):
    """One step's process to start, and how to end all it started."""

    @property
    def argv(self) -> list[str]:
        """The program the slave starts and its arguments."""
        ...

    @property
    def cwd(self) -> Path:
        """The folder the program starts in."""
        ...

    @property
    def env(self) -> Mapping[str, str]:
        """The program's whole environment."""
        ...

    @property
    def facts(self) -> dict[str, str]:
        """What to log about where the step runs (e.g. its container's name)."""
        ...

    async def end(self, pgid: int, grace: float, early: bool) -> None:
        """End what is left of the step: after its command exited, or ``early``
        when it is stopped or timed out while still running."""
        ...


class Runner(Protocol):
    """Makes the :class:`Launch` of a step."""

    @property
    def python(self) -> str:
        """What ``{python}`` in a step's argv means where the step runs."""
        ...

    def launch(
        self, step: str, spec: StepSpec, command: list[str], folder: Path, env: Mapping[str, str]
    ) -> Launch:
        """The process that runs ``command`` of step ``step`` in ``folder``.

        Raises:
            NotRunnable: the step cannot run here (e.g. ``folder`` is unusable).
        """
        ...


@dataclass(frozen=True, slots=True)
class HostLaunch:
    """The step's command itself, a process group of the slave's host."""

    argv: list[str]
    cwd: Path
    env: Mapping[str, str]
    step: str
    facts: dict[str, str] = field(default_factory=dict)

    async def end(self, pgid: int, grace: float, early: bool) -> None:
        """Whether it exited or not, children it left behind still run: end the group."""
        await end_group(pgid, grace, self.step)


class HostRunner:
    """Runs steps on the slave's host, ``{python}`` being the slave's own interpreter."""

    python = sys.executable

    def launch(
        self, step: str, spec: StepSpec, command: list[str], folder: Path, env: Mapping[str, str]
    ) -> HostLaunch:
        """The command as it is, in ``folder``, with ``env``."""
        return HostLaunch(command, folder, env, step)
