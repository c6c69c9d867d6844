"""``arko-master`` / ``python -m arko.master``."""

from __future__ import annotations

import sys

from arko.common.daemon import run_daemon
from arko.master.app import Master
from arko.master.settings import MasterSettings


def main() -> None:
    """Entry point of the ``arko-master`` command."""
    sys.exit(run_daemon(MasterSettings, Master, uvloop_wanted=True))


if __name__ == "__main__":
    main()
