"""How the CLI shows records: tables for people (80 columns on a terminal, tab-separated
whole values in a pipe), dicts for ``--json``."""

from __future__ import annotations

import datetime as dt
import json
import shlex
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from rich.table import Table
from rich.text import Text

from arko.common.redact import REDACTED, is_secret_name, referenced
from arko.v1 import admin_pb2, jobs_pb2, options_pb2

# C0 controls, DEL and C1 controls (ESC among them), shown as \xNN.
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROLS_BUT_LINES = {code: shown for code, shown in _CONTROLS.items() if chr(code) not in "\n\t"}


def wire(text: str, multiline: bool = False) -> str:
    """Text that came over the wire, made safe for a terminal: control characters as ``\\xNN``.

    A method name, a slave's error or a job's output could otherwise carry
    escape sequences that retitle, clear or rewrite the user's terminal.
    ``multiline`` keeps newlines and tabs, for output that has lines.
    ``--json`` output needs none of this: JSON escapes control characters.
    """
    return text.translate(_CONTROLS_BUT_LINES if multiline else _CONTROLS)


def cell(text: str) -> Text:
    """A table cell of wire text: escaped, and a ``Text`` so Rich reads no markup in it."""
    return Text(wire(text))


def as_dict(message: Message) -> dict[str, Any]:
    """A message for ``--json``: proto field names, every field present (a stable shape)."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def dumps(value: Any) -> str:
    """The one JSON style of ``--json`` output."""
    return json.dumps(value, indent=2, sort_keys=True)


def ago(stamp: dt.datetime | None, now: dt.datetime) -> str:
    """``12s ago``, ``5m ago``, ``3h ago``, ``2d ago``; ``-`` when unset."""
    if stamp is None:
        return "-"
    seconds = max(0, int((now - stamp).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def took(job: jobs_pb2.Job) -> str:
    """Seconds from dispatch to end, ``-`` while unknown."""
    if not job.HasField("started_at") or not job.HasField("ended_at"):
        return "-"
    seconds = (job.ended_at.ToNanoseconds() - job.started_at.ToNanoseconds()) / 1e9
    return f"{seconds:.1f}s" if seconds < 60 else f"{seconds / 60:.1f}m"


def _stamp(message: Message, name: str) -> dt.datetime | None:
    if not message.HasField(name):
        return None
    stamp: dt.datetime = getattr(message, name).ToDatetime(tzinfo=dt.UTC)
    return stamp


def slaves_table(slaves: list[admin_pb2.SlaveInfo], now: dt.datetime) -> Table:
    """ADDRESS STATUS JOBS METHODS LAST SEEN."""
    table = Table(box=None, pad_edge=False)
    table.add_column("ADDRESS", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("JOBS", justify="right", no_wrap=True)
    table.add_column("METHODS", overflow="fold")
    table.add_column("LAST SEEN", no_wrap=True)
    for s in slaves:
        jobs = f"{s.running}/{s.capacity}" if s.capacity else str(s.running)
        status = s.status if not s.reason else f"{s.status}*"
        table.add_row(
            cell(s.address),
            cell(status),
            jobs,
            str(len(s.methods)),
            ago(_stamp(s, "last_seen"), now),
        )
    return table


def slave_notes(slaves: list[admin_pb2.SlaveInfo]) -> list[str]:
    """The footnote of a starred STATUS: why each such slave is not live."""
    return [wire(f"* {s.address} {s.status}: {s.reason}") for s in slaves if s.reason]


def tsv(table: Table) -> str:
    """A table for a pipe: a header line, then one line a row, whole values between tabs.

    Rich fits a table to the console and cuts or folds cells; a script reading
    ``arko jobs | cut -f3`` needs every column and whole values.
    """
    columns = table.columns
    lines = ["\t".join(str(c.header) for c in columns)]
    for row in zip(*(c.cells for c in columns), strict=True):
        lines.append("\t".join(str(cell) for cell in row))
    return "\n".join(lines)


def policy_line(policy: options_pb2.JobPolicy) -> str:
    """A method's job policy in words, ``none`` when it sets nothing."""
    parts = []
    if policy.timeout_seconds:
        parts.append(f"timeout {policy.timeout_seconds}s")
    if policy.max_concurrency == 1:
        parts.append("one job at a time")
    elif policy.max_concurrency:
        parts.append(f"at most {policy.max_concurrency} jobs at a time")
    if policy.required_labels:
        labels = ",".join(f"{k}={v}" for k, v in sorted(policy.required_labels.items()))
        parts.append(f"only on slaves labelled {labels}")
    if policy.retries:
        parts.append(f"sent again up to {policy.retries} times when it never started")
    return "; ".join(parts) or "none"


def methods_table(methods: dict[str, list[admin_pb2.SlaveInfo]]) -> Table:
    """METHOD LIVE SLAVES."""
    table = Table(box=None, pad_edge=False)
    table.add_column("METHOD", overflow="fold")
    table.add_column("LIVE", justify="right", no_wrap=True)
    table.add_column("SLAVES", justify="right", no_wrap=True)
    for name, slaves in sorted(methods.items()):
        live = sum(s.status == "LIVE" for s in slaves)
        table.add_row(cell(name), str(live), str(len(slaves)))
    return table


def fields_table(message: admin_pb2.MessageInfo) -> Table:
    """FIELD TYPE DEFAULT NOTE of one message."""
    title = cell(message.full_name)
    table = Table(box=None, pad_edge=False, title=title, title_justify="left")
    table.add_column("FIELD", no_wrap=True)
    table.add_column("TYPE", overflow="fold")
    table.add_column("DEFAULT", overflow="fold")
    table.add_column("NOTE", overflow="fold")
    for f in message.fields:
        kind = f.type_name or f.type
        if f.map:
            kind = f"map {kind}"
        elif f.repeated:
            kind = f"repeated {kind}"
        notes = []
        if f.enum_values:
            notes.append("one of " + ", ".join(f.enum_values))
        if f.secret:
            notes.append("secret: redacted in records")
        if f.comment:
            notes.append(f.comment)
        table.add_row(cell(f.name), cell(kind), cell(f.default), cell("; ".join(notes)))
    return table


def jobs_table(jobs: list[jobs_pb2.Job], now: dt.datetime) -> Table:
    """ID STATE METHOD CREATED TOOK (the full id: ``arko job`` takes it)."""
    table = Table(box=None, pad_edge=False)
    # Only METHOD gives way in 80 columns: the id must stay whole to be copied.
    table.add_column("ID", no_wrap=True, min_width=32)
    table.add_column("STATE", no_wrap=True, min_width=11)
    table.add_column("METHOD", overflow="ellipsis", no_wrap=True)
    table.add_column("CREATED", no_wrap=True, min_width=8)
    table.add_column("TOOK", justify="right", no_wrap=True, min_width=5)
    for j in jobs:
        state = jobs_pb2.JobState.Name(j.state)
        table.add_row(cell(j.id), state, cell(j.method), ago(_stamp(j, "created_at"), now), took(j))
    return table


def job_lines(job: jobs_pb2.Job) -> list[str]:
    """One job, ``name: value`` per line, empty fields left out; wire text escaped."""
    lines = [
        f"id:       {wire(job.id)}",
        f"method:   {wire(job.method)}",
        f"state:    {jobs_pb2.JobState.Name(job.state)}",
    ]
    optional = {
        "slave": wire(job.slave),
        "code": wire(job.code),
        "error": wire(job.error),
        "result": wire(job.result, multiline=True),
        "cancelled": wire(job.cancelled_by),
    }
    for name in ("created_at", "started_at", "ended_at"):
        stamp = _stamp(job, name)
        optional[name.removesuffix("_at")] = (
            stamp.isoformat(timespec="milliseconds") if stamp else ""
        )
    optional["took"] = "" if took(job) == "-" else took(job)
    lines += [f"{k + ':':<9} {v}" for k, v in optional.items() if v]
    for name, value in sorted(job.params.items()):
        lines.append(f"param:    {wire(name)}={wire(value)}")
    if job.HasField("args") and job.args.fields:
        args = json.dumps(json_format.MessageToDict(job.args), sort_keys=True)
        lines.append(f"args:     {wire(args)}")
    return lines


def _placeholders(values: dict[str, Any]) -> dict[str, Any]:
    """Secret values (stored as ``***``) become ``<NAME>`` for the user to fill in.

    A ``${secret:NAME}`` reference stays: the master fills it in again.
    """
    return {
        k: f"<{k.upper()}>" if referenced(v) is None and (is_secret_name(k) or v == REDACTED) else v
        for k, v in values.items()
    }


def grpcurl_command(job: jobs_pb2.Job, master: str, flags: list[str]) -> str:
    """A grpcurl command that runs ``job`` again through arko.v1.Jobs/Run."""
    body: dict[str, Any] = {"method": job.method}
    if job.params:
        body["params"] = _placeholders(dict(job.params))
    if job.HasField("args") and job.args.fields:
        body["args"] = _placeholders(json_format.MessageToDict(job.args))
    data = json.dumps(body, sort_keys=True)
    return shlex.join(["grpcurl", *flags, "-d", data, master, "arko.v1.Jobs/Run"])
