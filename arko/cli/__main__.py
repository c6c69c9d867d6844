"""Entry point of the ``arko`` console script."""

from __future__ import annotations

from arko.cli.app import main

if __name__ == "__main__":
    main()
