"""How every ``arko`` command ends on a ``CliError``: one line on stderr, its exit code."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from arko.cli.client import CliError
from arko.cli.render import wire

P = ParamSpec("P")
R = TypeVar("R")

err = Console(stderr=True, highlight=False, soft_wrap=True)


def handled(command: Callable[P, R]) -> Callable[P, R]:
    """Report a CliError in one line on stderr and exit with its code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except CliError as exc:
            err.print(f"arko: {wire(exc.message, multiline=True)}", markup=False)
            raise typer.Exit(int(exc.code)) from None

    return wrapper
