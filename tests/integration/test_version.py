"""``--version`` on the three commands and ``arko.__version__`` (issue 21, item 5).

A user reporting a problem is asked which arko runs; each answer must be the
installed distribution's own version, read from its metadata.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

import arko

INSTALLED = importlib.metadata.version("arko-ci")
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command", ["arko-master", "arko-slave", "arko"])
def test_version_flag_prints_the_installed_version(command: str) -> None:
    """The installed script prints ``<command> <version>`` and exits 0 without starting."""
    done = subprocess.run(
        [str(BIN / command), "--version"], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{command} {INSTALLED}\n", "")


def test_version_is_listed_in_help() -> None:
    """``--help`` shows the flag, so a user can find it."""
    for command in ("arko-master", "arko-slave", "arko"):
        done = subprocess.run(
            [str(BIN / command), "--help"], capture_output=True, text=True, timeout=60
        )
        assert "--version" in done.stdout, command


def test_module_version_is_the_metadata() -> None:
    """``arko.__version__`` is the installed arko-ci's version."""
    assert arko.__version__ == INSTALLED
