"""``arko-slave`` / ``python -m arko.slave``."""

from __future__ import annotations

import sys

from arko.common.daemon import run_daemon
from arko.slave.app import Slave
from arko.slave.settings import SlaveSettings


def main() -> None:
    """Entry point of the ``arko-slave`` command."""
    sys.exit(run_daemon(SlaveSettings, Slave))


if __name__ == "__main__":
    main()
