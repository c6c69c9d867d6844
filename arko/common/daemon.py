"""Run a daemon until SIGTERM or SIGINT, for both ``__main__`` modules."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import structlog

from arko.common.errors import StartupError
from arko.common.logging import configure_logging
from arko.common.settings import DaemonSettings, load_settings

S = TypeVar("S", bound=DaemonSettings)


class Daemon(Protocol):
    """What :func:`run_daemon` drives."""

    async def start(self) -> None: ...

    async def wait(self) -> None: ...

    async def stop(self) -> None: ...

    @property
    def exit_code(self) -> int: ...


async def _serve(daemon: Daemon) -> int:
    """Start the daemon, wait for a signal or its own end, and stop it in this task.

    The signal handler only asks for the stop; the stop itself runs here, in
    the task that started the daemon, as ``async with`` would. It matters to
    the master's database layer (peewee's ``pwasyncio``), which lends each task
    its own connection until the task ends: the pool closes the connection of
    the task that closes it, while one still held by a running task would
    outlive the event loop, and its aiosqlite thread would print an "Event loop
    is closed" traceback after ``master_stopped``.
    """
    loop = asyncio.get_running_loop()
    await daemon.start()
    # What start-up built (modules, descriptor pools, settings, the catalog)
    # lives as long as the daemon: out of the collector's sight, a full
    # collection no longer walks it. Under load, those walks were an eighth
    # of the master's CPU (py-spy, make bench).
    gc.freeze()
    signalled = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signalled.set)
    waiters = [asyncio.ensure_future(signalled.wait()), asyncio.ensure_future(daemon.wait())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    await daemon.stop()
    return daemon.exit_code


def event_loop_factory(uvloop_wanted: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when wanted and installed (Linux and macOS), else asyncio's own.

    gRPC's asyncio stack runs on it unchanged, and a job's hop through the
    master costs less CPU on it: the event loop's own work is a large share
    of a job that does little else (``make bench``). Not for the slave: its
    steps are child processes, and children that libuv forked beside gRPC's
    threads now and then died of SIGSEGV before their command ran
    (``test_container_steps``, ``test_steps``); asyncio's own spawn never did.
    """
    if not uvloop_wanted:
        return None
    try:
        import uvloop
    except ImportError:  # Windows: uvloop is not built there
        return None
    return uvloop.new_event_loop


def run_daemon(
    settings_cls: type[S],
    factory: Callable[[S], Daemon],
    argv: Sequence[str] | None = None,
    uvloop_wanted: bool = False,
) -> int:
    """Load settings, configure logs, run the daemon; return the exit status.

    ``uvloop_wanted``: run on uvloop (see :func:`event_loop_factory`).

    Start-up problems print one line and exit 2; a signal stops it cleanly (0).
    """
    args = sys.argv[1:] if argv is None else argv
    try:
        settings = load_settings(settings_cls, args)
    except StartupError as exc:
        print(f"{settings_cls.model_config.get('cli_prog_name')}: {exc.message}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        with asyncio.Runner(loop_factory=event_loop_factory(uvloop_wanted)) as runner:
            return runner.run(_serve(factory(settings)))
    except StartupError as exc:
        structlog.get_logger("arko").error("startup_failed", reason=exc.message)
        return 2
