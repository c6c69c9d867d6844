"""Build steps in containers: one ``podman run --rm`` per step (``--engine podman``).

The slave starts ``podman run`` as it would start the step's own command, in a
session of its own, and streams its stdout and stderr, which podman passes
through from the container (no terminal: the two stay apart). The container
gets a unique name, so it can be removed however the step ends: ``--rm``
removes it when its command exits; when the step is cancelled or times out
``podman rm --force`` stops it (SIGTERM, then SIGKILL after the step's
``kill_grace``) and removes it, and once the ``podman run`` client is gone it
is removed again, in case the client created it while being stopped. An init
(``--init``, catatonit) is the container's PID 1, so a SIGTERM ends the
command as it would on the host (a PID 1 ignores signals it has no handler
for) and the zombies of its children are reaped.

``podman run`` starts in a scratch folder of the slave's, removed when the
slave exits, never in the workdir: Debian bookworm's conmon (2.1.6) writes a
file called ``oom`` into its cwd when the container runs out of memory.

Only the names of the step's ``env`` go on podman's command line (``--env
NAME``); podman takes their values from its own environment, so they are not
shown by ``ps``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import math
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from arko.common.errors import StartupError
from arko.slave.builtin.runners import NotRunnable, end_group, gone
from arko.slave.builtin.stepspec import StepSpec

log = structlog.get_logger("arko.slave.steps")

PODMAN = "podman"
# Where a step's workdir is mounted in its container, and the command's cwd.
WORK = "/work"
# Container names begin so: `podman ps -a --filter name=^arko-step-` lists them.
NAME_PREFIX = "arko-step-"
# Seconds `podman info` may take at start-up (it reads its storage).
_ANSWER_TIMEOUT = 30.0
# Seconds `podman rm` may take besides the stop's grace.
_REMOVE_TIMEOUT = 60.0
# Seconds `podman run` gets to exit by itself once its container is removed.
_CLIENT_EXIT = 10.0
_SETUP = (
    "install Debian's podman and runc (apt-get install podman runc catatonit), and on hosts "
    "whose cgroups or ulimits podman's defaults do not fit point CONTAINERS_CONF at a "
    "containers.conf such as arko's containers/containers.conf"
)
# Containers of steps still running, removed if the slave exits before they end.
_LIVE_CONTAINERS: set[str] = set()


@atexit.register
def _remove_leftovers() -> None:
    """A slave that exits mid-step leaves no container behind."""
    if not _LIVE_CONTAINERS:
        return
    argv = [PODMAN, "rm", "--force", "--ignore", "--time", "0", *sorted(_LIVE_CONTAINERS)]
    # The slave is exiting: nobody is left to tell of a failure.
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(argv, capture_output=True, timeout=_REMOVE_TIMEOUT, check=False)


async def check_podman() -> str:
    """podman's version and OCI runtime (e.g. ``4.3.1 runc``), asked as the slave starts.

    ``podman info`` rather than ``podman version``: it reads the configuration,
    the storage and the runtime, so a host where no container could start is
    told at start-up, not at the first build.

    Raises:
        StartupError: podman is not on PATH, or ``podman info`` fails or hangs.
    """
    program = shutil.which(PODMAN)
    if program is None:
        raise StartupError(f"--engine podman: podman is not on PATH; {_SETUP}")
    proc = await asyncio.create_subprocess_exec(
        program,
        "info",
        "--format",
        "{{.Version.Version}} {{.Host.OCIRuntime.Name}}",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), _ANSWER_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise StartupError(
            f"--engine podman: `podman info` did not answer in {_ANSWER_TIMEOUT:g}s"
        ) from None
    if proc.returncode != 0:
        said = err.decode(errors="replace").strip().splitlines()
        raise StartupError(
            f"--engine podman: `podman info` failed (exit {proc.returncode}): "
            f"{said[-1] if said else 'no message'}; {_SETUP}"
        )
    return out.decode(errors="replace").strip()


def podman_argv(
    podman: str, name: str, spec: StepSpec, folder: Path, command: list[str]
) -> list[str]:
    """The ``podman run`` line of one step: ``command`` in a fresh container ``name``."""
    assert spec.image is not None, "only a step with an image runs in a container"
    argv = [podman, "run", "--rm", "--init", "--name", name, "--network", spec.network]
    argv += ["--volume", f"{folder}:{WORK}", "--workdir", WORK]
    if spec.memory is not None:  # swap as large as memory: the limit is a hard one
        argv += ["--memory", spec.memory, "--memory-swap", spec.memory]
    if spec.cpus is not None:
        argv += ["--cpus", str(spec.cpus)]
    for variable in spec.env:
        argv += ["--env", variable]
    return [*argv, spec.image, *command]


async def remove(podman: str, name: str, grace: float, step: str) -> None:
    """Stop container ``name`` (SIGTERM, SIGKILL after ``grace``) and remove it, if it exists."""
    argv = [podman, "rm", "--force", "--ignore", "--time", str(math.ceil(grace)), name]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), grace + _REMOVE_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        log.warning("container_not_removed", step=step, container=name, reason="podman rm hung")
        return
    if proc.returncode != 0:
        reason = err.decode(errors="replace").strip()[-500:]
        log.warning("container_not_removed", step=step, container=name, reason=reason)


@dataclass(frozen=True, slots=True)
class PodmanLaunch:
    """``podman run`` of one step, and the container's removal."""

    argv: list[str]
    cwd: Path  # the scratch folder, not the workdir (see the module's docstring)
    env: Mapping[str, str]
    step: str
    name: str
    podman: str

    @property
    def facts(self) -> dict[str, str]:
        """The container's name, to find it with ``podman ps``."""
        return {"container": self.name}

    async def end(self, pgid: int, grace: float, early: bool) -> None:
        """Remove the container when the step is stopped early; end the client's group.

        When the command exited on its own, ``--rm`` has removed the container
        before ``podman run`` exited.
        """
        try:
            if early:
                await remove(self.podman, self.name, grace, self.step)
                # Left alone, the client reports the container's end and exits;
                # signalled now, it would complain that the container is gone.
                await gone(pgid, _CLIENT_EXIT)
            await end_group(pgid, grace, self.step)
            if early:  # made by a client stopped before it had started the container
                await remove(self.podman, self.name, 0, self.step)
        finally:
            _LIVE_CONTAINERS.discard(self.name)


class PodmanRunner:
    """Runs a step with an image in a fresh container; ``{python}`` is the image's ``python3``."""

    python = "python3"

    def __init__(self, podman: str) -> None:
        self._podman = podman
        self._scratch = Path(tempfile.mkdtemp(prefix="arko-podman-"))
        atexit.register(shutil.rmtree, self._scratch, ignore_errors=True)

    @classmethod
    def find(cls) -> PodmanRunner:
        """The runner of the ``podman`` on PATH.

        Raises:
            StartupError: podman is not on PATH.
        """
        program = shutil.which(PODMAN)
        if program is None:
            raise StartupError(f"steps with an image need podman, which is not on PATH; {_SETUP}")
        return cls(program)

    def launch(
        self, step: str, spec: StepSpec, command: list[str], folder: Path, env: Mapping[str, str]
    ) -> PodmanLaunch:
        """``podman run`` of ``command`` with ``folder`` at /work, in a container of its own.

        Raises:
            NotRunnable: ``folder`` is not a folder, or its path holds a colon
                (which ``--volume`` cannot take).
        """
        if not folder.is_dir():
            raise NotRunnable(f"step {step!r} cannot start: its workdir {folder} is not a folder")
        if ":" in str(folder):
            raise NotRunnable(
                f"step {step!r} cannot start: podman cannot mount {folder}, a path with a colon"
            )
        name = f"{NAME_PREFIX}{uuid.uuid4().hex[:12]}"
        _LIVE_CONTAINERS.add(name)
        argv = podman_argv(self._podman, name, spec, folder, command)
        return PodmanLaunch(argv, self._scratch, env, step, name, self._podman)
