"""The port blocks that keep test processes running side by side off each other's ports."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from arko.testing import LOOPBACK, PortBlock, free_port

# A child that reserves a block of 10 among 3 under the given folder, prints its
# index and holds it until its standard input closes.
HOLDER = """
import sys
from pathlib import Path
from arko.testing import PortBlock
block = PortBlock(Path(sys.argv[1]), first=20000, end=20030, size=10)
print(block.index, flush=True)
sys.stdin.read()
"""


class Holders:
    """Child processes holding blocks; all killed by PID at the end."""

    def __init__(self, locks: Path) -> None:
        self.locks = locks
        self.procs: list[subprocess.Popen[str]] = []

    def start(self) -> tuple[subprocess.Popen[str], int]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(self.locks)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        return proc, int(proc.stdout.readline())

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def holders(tmp_path: Path) -> Iterator[Holders]:
    h = Holders(tmp_path)
    try:
        yield h
    finally:
        h.stop_all()


def test_processes_get_disjoint_blocks_until_none_is_left(holders: Holders) -> None:
    """Three processes get the three blocks, one each; a fourth finds none and says so."""
    indexes = {holders.start()[1] for _ in range(3)}
    assert indexes == {0, 1, 2}
    with pytest.raises(RuntimeError, match="all 3 port blocks"):
        PortBlock(holders.locks, first=20000, end=20030, size=10)


def test_a_released_block_is_reused(holders: Holders) -> None:
    """A block given back by its holder, with others still held, is the one handed out next."""
    held = [holders.start() for _ in range(3)]
    proc, index = held[1]
    assert proc.stdin is not None
    proc.stdin.close()  # the holder exits normally
    proc.wait(10)
    block = PortBlock(holders.locks, first=20000, end=20030, size=10)
    try:
        assert block.index == index
        assert block.ports == range(20000 + 10 * index, 20010 + 10 * index)
    finally:
        block.release()


def test_the_block_of_a_killed_process_is_reclaimed(holders: Holders) -> None:
    """A holder killed outright leaves its lock file behind; the next process takes the block."""
    held = [holders.start() for _ in range(3)]
    proc, index = held[2]
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert (holders.locks / f"block-{index}.lock").exists()
    block = PortBlock(holders.locks, first=20000, end=20030, size=10)
    try:
        assert block.index == index
    finally:
        block.release()


def test_a_port_in_use_is_never_handed_out(tmp_path: Path) -> None:
    """take() skips a port something listens on, and fails when the whole block is busy."""
    port = free_port()  # this process's own: nobody else binds it meanwhile
    block = PortBlock(tmp_path, first=port, end=port + 1, size=1)
    try:
        with socket.socket() as listener:
            listener.bind((LOOPBACK, port))
            listener.listen()
            with pytest.raises(RuntimeError, match="in use"):
                block.take()
        assert block.take() == port
    finally:
        block.release()


def test_free_ports_of_this_process_come_from_one_block() -> None:
    """free_port() hands out ports of PORT_RANGE, different from one call to the next."""
    ports = [free_port() for _ in range(5)]
    assert len(set(ports)) == 5
    assert all(20000 <= p < 32000 for p in ports)
