"""``arko secrets set|list|rm``: the master's secrets, by name; a value goes in, never out.

A value is read from stdin (hidden at a prompt on a terminal), never from the
command line, where ``ps`` and shell history would show it.
"""

from __future__ import annotations

import datetime as dt
import getpass
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from arko.cli.client import CliError, Connection, Exit
from arko.cli.handling import err, handled
from arko.cli.render import ago, as_dict, dumps, tsv, wire
from arko.v1 import secrets_pb2

secrets_app = typer.Typer(
    help="The master's secrets: values jobs receive as ${secret:NAME}, never shown again.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="The secret's name, e.g. DEPLOY_KEY")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output")]


def _conn(ctx: typer.Context) -> Connection:
    conn: Connection = ctx.obj
    return conn


def read_value(name: str) -> str:
    """The value from stdin: hidden at a prompt on a terminal, else all of it.

    One trailing newline is dropped (``echo`` and most files end with one).

    Raises:
        CliError: the value is empty.
    """
    if sys.stdin.isatty():
        value = getpass.getpass(f"value of {name}: ")
    else:
        value = sys.stdin.read()
        value = value.removesuffix("\n").removesuffix("\r")
    if not value:
        raise CliError(f"no value for secret {name}: pipe it on stdin", Exit.USAGE)
    return value


def secrets_table(secrets: list[secrets_pb2.Secret], now: dt.datetime) -> Table:
    """NAME METHODS CREATED UPDATED."""
    table = Table(box=None, pad_edge=False)
    table.add_column("NAME", no_wrap=True)
    table.add_column("METHODS", overflow="fold")
    table.add_column("CREATED", no_wrap=True)
    table.add_column("UPDATED", no_wrap=True)
    for secret in secrets:
        table.add_row(
            secret.name,
            ",".join(secret.methods),
            ago(secret.created_at.ToDatetime(tzinfo=dt.UTC), now),
            ago(secret.updated_at.ToDatetime(tzinfo=dt.UTC), now),
        )
    return table


@secrets_app.command("set")
@handled
def set_secret(
    ctx: typer.Context,
    name: Name,
    methods: Annotated[
        list[str] | None,
        typer.Option(
            "--methods",
            metavar="GLOB",
            help="Glob over Service.Method allowed to receive it (repeat it); none: every method",
        ),
    ] = None,
    json: Json = False,
) -> None:
    """Create or replace secret NAME with the value on stdin."""
    request = secrets_pb2.SetSecretRequest(name=name, value=read_value(name), methods=methods)
    with _conn(ctx).open() as stubs:
        secret = stubs.secrets.Set(request, **stubs.options())
    if json:
        print(dumps(as_dict(secret)))
    else:
        print(wire(f"secret {secret.name} set for {', '.join(secret.methods)}"))


@secrets_app.command("list")
@handled
def list_secrets(ctx: typer.Context, json: Json = False) -> None:
    """The secrets by name, with their method globs and times (never their values)."""
    with _conn(ctx).open() as stubs:
        found = stubs.secrets.List(secrets_pb2.ListSecretsRequest(), **stubs.options())
    if json:
        print(dumps(as_dict(found)))
    elif not found.secrets:
        err.print("no secrets")
    elif sys.stdout.isatty():
        Console(highlight=False, soft_wrap=True).print(
            secrets_table(list(found.secrets), dt.datetime.now(dt.UTC))
        )
    else:
        print(tsv(secrets_table(list(found.secrets), dt.datetime.now(dt.UTC))))


@secrets_app.command("rm")
@handled
def remove_secret(ctx: typer.Context, name: Name) -> None:
    """Delete secret NAME (exit 4 when there is none)."""
    with _conn(ctx).open() as stubs:
        stubs.secrets.Delete(secrets_pb2.DeleteSecretRequest(name=name), **stubs.options())
    print(wire(f"secret {name} deleted"))
