"""``arko triggers``: the master's webhooks and schedules, each with its last job.

Kept apart from :mod:`arko.cli.app`, which imports this module at its end so
the command is registered on the same ``app``.
"""

from __future__ import annotations

import datetime as dt

import typer
from rich.table import Table

from arko.cli.app import Json, _conn, _table, app
from arko.cli.handling import err, handled
from arko.cli.render import as_dict, cell, dumps
from arko.v1 import admin_pb2, jobs_pb2


def _moment(stamp: dt.datetime) -> str:
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC")


def triggers_table(found: list[admin_pb2.TriggerInfo]) -> Table:
    """TRIGGER KIND METHOD WHEN NEXT LAST JOB STATE."""
    table = Table(box=None, pad_edge=False)
    for name in ("TRIGGER", "KIND", "METHOD", "WHEN", "NEXT", "LAST JOB", "STATE"):
        table.add_column(name, no_wrap=name != "METHOD", overflow="fold")
    for t in found:
        nxt = _moment(t.next_time.ToDatetime(tzinfo=dt.UTC)) if t.HasField("next_time") else "-"
        last = t.last_job if t.HasField("last_job") else None
        table.add_row(
            cell(t.trigger),
            cell(t.kind),
            cell(t.method),
            cell(t.when or t.path),
            nxt,
            last.id if last is not None else "-",
            jobs_pb2.JobState.Name(last.state) if last is not None else "-",
        )
    return table


@app.command()
@handled
def triggers(ctx: typer.Context, json: Json = False) -> None:
    """The master's triggers (webhooks) and schedules: last job, a schedule's next time."""
    with _conn(ctx).open() as stubs:
        reply = stubs.admin.ListTriggers(admin_pb2.ListTriggersRequest(), **stubs.options())
    found = list(reply.triggers)
    if json:
        print(dumps({"triggers": [as_dict(t) for t in found]}))
    elif not found:
        err.print("no triggers or schedules: declare [[trigger]] or [[schedule]] in --config")
    else:
        _table(triggers_table(found))
