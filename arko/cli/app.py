"""The ``arko`` commands: parse, call the master, print. Exit codes in :class:`Exit`."""

from __future__ import annotations

import contextlib
import datetime as dt
import json as json_lib
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, BinaryIO

import grpc
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from arko import __version__
from arko.cli.client import (
    DEFAULT_MASTER,
    EXIT_HELP,
    CliError,
    Connection,
    Exit,
    Stubs,
    read_token,
    with_code,
)
from arko.cli.handling import err, handled
from arko.cli.lineage import fetch_tree, tree_dicts, tree_lines
from arko.cli.render import (
    as_dict,
    dumps,
    fields_table,
    grpcurl_command,
    job_lines,
    jobs_table,
    methods_table,
    policy_line,
    slave_notes,
    slaves_table,
    tsv,
    wire,
)
from arko.cli.rerun import rerun_request
from arko.cli.secrets import secrets_app
from arko.cli.typed import build_request
from arko.v1 import admin_pb2, jobs_pb2

app = typer.Typer(
    help=f"Talk to an arko master: its slaves, methods and jobs.\n\n{EXIT_HELP}",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
app.add_typer(secrets_app, name="secrets")

Json = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output")]
JobId = Annotated[str, typer.Argument(help="The job's id (32 hex digits)")]
Detach = Annotated[
    bool, typer.Option("--detach", "-d", help="Print the job id only; the job runs on")
]
Deadline = Annotated[
    float | None,
    typer.Option(
        "--deadline",
        min=0.1,
        help="Seconds the job may run (queue included); then it fails with "
        "DEADLINE_EXCEEDED [default: the master's --job_timeout]. "
        "--timeout bounds only this command's calls to the master, not the job",
    ),
]
EventsJson = Annotated[bool, typer.Option("--json", help="Events as JSON lines")]
_FINAL = {
    jobs_pb2.SUCCEEDED: Exit.OK,
    jobs_pb2.FAILED: Exit.JOB_FAILED,
    jobs_pb2.INTERRUPTED: Exit.JOB_FAILED,
    jobs_pb2.CANCELLED: Exit.CANCELLED,
}


def _stdout() -> Console:
    # Lines are never broken by Rich (a pipe gets them whole); tables fit its
    # width (80 columns off a terminal), so lists avoid Rich there (_table).
    return Console(highlight=False, soft_wrap=True)


def _table(table: Table, notes: list[str] | None = None) -> None:
    """A table on stdout: fitted to a terminal, tab-separated whole values in a pipe.

    Notes (a footnote to a star) follow the table on a terminal and go to
    stderr in a pipe, so the lines a script reads are all rows.
    """
    if sys.stdout.isatty():
        out = _stdout()
        out.print(table)
        for note in notes or []:
            out.print(note, markup=False)
        return
    print(tsv(table))
    for note in notes or []:
        err.print(note, markup=False)


def _print_version(wanted: bool) -> None:
    """``--version``: print it and exit before the rest of the line is looked at."""
    if wanted:
        print(f"arko {__version__}")
        raise typer.Exit()


@app.callback()
def connect(
    ctx: typer.Context,
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the installed arko's version and exit",
        ),
    ] = False,
    master: Annotated[
        str, typer.Option("--master", envvar="ARKO_MASTER", help="host:port of the master")
    ] = DEFAULT_MASTER,
    tls: Annotated[bool, typer.Option("--tls", help="Talk TLS to the master")] = False,
    ca_file: Annotated[
        Path | None, typer.Option("--ca_file", help="PEM CA that vouches for the master")
    ] = None,
    cert_file: Annotated[
        Path | None, typer.Option("--cert_file", help="PEM client certificate (mutual TLS)")
    ] = None,
    key_file: Annotated[
        Path | None, typer.Option("--key_file", help="PEM key of --cert_file")
    ] = None,
    client_token_file: Annotated[
        Path | None,
        typer.Option(
            "--client_token_file",
            help="File with the master's client token (or env ARKO_CLIENT_TOKEN)",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=0.1,
            help="Seconds one call to the master may take; not a job's run "
            "nor a stream (arko run --deadline bounds the job)",
        ),
    ] = 30.0,
) -> None:
    """Options every command shares: where the master is and how to prove who we are."""
    if (ca_file or cert_file or key_file) and not tls:
        raise typer.BadParameter("--ca_file, --cert_file and --key_file need --tls")
    try:
        token = read_token(client_token_file)
    except CliError as exc:
        raise typer.BadParameter(exc.message) from None
    ctx.obj = Connection(master, tls, ca_file, cert_file, key_file, token, timeout)


def _conn(ctx: typer.Context) -> Connection:
    conn: Connection = ctx.obj
    return conn


def _slaves(stubs: Stubs) -> list[admin_pb2.SlaveInfo]:
    reply = stubs.admin.ListSlaves(admin_pb2.ListSlavesRequest(), **stubs.options())
    return list(reply.slaves)


@app.command()
@handled
def slaves(ctx: typer.Context, json: Json = False) -> None:
    """The slaves the master knows: status, running jobs, methods, last answer.

    A starred status (DOWN*) has a reason, given under the table.
    """
    with _conn(ctx).open() as stubs:
        found = _slaves(stubs)
    if json:
        print(dumps({"slaves": [as_dict(s) for s in found]}))
    elif not found:
        err.print("no slaves registered")
    else:
        _table(slaves_table(found, dt.datetime.now(dt.UTC)), slave_notes(found))


@app.command()
@handled
def methods(ctx: typer.Context, json: Json = False) -> None:
    """Every method the fleet offers, with how many slaves offer it."""
    with _conn(ctx).open() as stubs:
        found = _slaves(stubs)
    offered: dict[str, list[admin_pb2.SlaveInfo]] = {}
    for slave in found:
        for method in slave.methods:
            offered.setdefault(method, []).append(slave)
    if json:
        listing = [
            {
                "method": m,
                "slaves": [s.address for s in ss],
                "live": [s.status for s in ss].count("LIVE"),
            }
            for m, ss in sorted(offered.items())
        ]
        print(dumps({"methods": listing}))
    elif not offered:
        err.print("no methods: no slave registered yet")
    else:
        _table(methods_table(offered))


def _describe(stubs: Stubs, method: str) -> admin_pb2.MethodInfo:
    request = admin_pb2.DescribeMethodRequest(method=method)
    return stubs.admin.DescribeMethod(request, **stubs.options())  # type: ignore[no-any-return]


@app.command()
@handled
def describe(
    ctx: typer.Context,
    method: Annotated[str, typer.Argument(help="Service.Method")],
    json: Json = False,
) -> None:
    """A method's request fields (types, enum values, defaults) and job policy."""
    with _conn(ctx).open() as stubs:
        info = _describe(stubs, method)
    if json:
        print(dumps(as_dict(info)))
        return
    out = _stdout()
    kind = "server-streaming" if info.server_streaming else "unary"
    signature = f"{info.method}({info.request_type}) returns {info.response_type}, {kind}"
    out.print(wire(signature), markup=False)
    if info.comment:
        out.print(wire(info.comment, multiline=True), markup=False)
    out.print(wire(f"policy: {policy_line(info.policy)}"), markup=False)
    out.print(wire(f"slaves: {', '.join(info.slaves)}"), markup=False)
    for message in info.messages:
        out.print()
        out.print(fields_table(message))


class _Pump:
    """A server stream read in a thread of its own.

    Ctrl-C lands in the main thread, waiting on the queue, so it never cuts the
    call: the events keep coming while the user is asked whether to cancel,
    and reading goes on afterwards on the same call. The queue is bounded so
    that a slow reader of stdout still holds the stream back (gRPC flow
    control) instead of arko holding a whole job's output.
    """

    def __init__(self, call: Iterator[jobs_pb2.JobEvent]) -> None:
        self._queue: queue.Queue[jobs_pb2.JobEvent | grpc.RpcError | None] = queue.Queue(64)
        threading.Thread(target=self._read, args=(call,), daemon=True).start()

    def _read(self, call: Iterator[jobs_pb2.JobEvent]) -> None:
        try:
            for event in call:
                self._queue.put(event)
        except grpc.RpcError as exc:
            self._queue.put(exc)
        else:
            self._queue.put(None)

    def next(self) -> jobs_pb2.JobEvent | None:
        """The next event; None once the stream has ended.

        Raises:
            grpc.RpcError: the call failed.
        """
        item = self._queue.get()
        if isinstance(item, grpc.RpcError):
            raise item
        return item


class _Follower:
    """Prints a job's events as they come and cancels it on Ctrl-C."""

    def __init__(self, stubs: Stubs, json: bool, interactive: bool, owns_job: bool) -> None:
        """``owns_job``: Ctrl-C cancels the job (``arko run``); else it only stops following."""
        self.stubs = stubs
        self.json = json
        self.interactive = interactive
        self.owns_job = owns_job
        self._cancel_sent = False

    def show(self, event: jobs_pb2.JobEvent) -> None:
        if self.json:
            print(json_lib.dumps(as_dict(event), sort_keys=True), flush=True)
        elif event.kind == jobs_pb2.JobEvent.OUTPUT:
            print(wire(event.output, multiline=True), flush=True)

    def follow(self, events: _Pump, job_id: str) -> jobs_pb2.Job:
        """Print ``events`` to FINISHED; the final record.

        Ctrl-C is taken while printing too, not only while waiting: a stream
        that starts with a backlog of stored output spends its time printing.
        """
        while True:
            try:
                event = events.next()
                if event is not None:
                    self.show(event)
            except KeyboardInterrupt:
                self._interrupted(job_id)
                continue
            if event is None:
                return self._get(job_id)
            if event.kind == jobs_pb2.JobEvent.FINISHED:
                final: jobs_pb2.Job = event.job
                return final

    def _get(self, job_id: str) -> jobs_pb2.Job:
        request = jobs_pb2.GetJobRequest(job_id=job_id)
        found: jobs_pb2.Job = self.stubs.jobs.Get(request, **self.stubs.options())
        return found

    def _interrupted(self, job_id: str) -> None:
        """Ctrl-C: cancel the job (asking first on a terminal), then keep following."""
        if not self.owns_job:
            raise typer.Exit(int(Exit.OK))  # arko logs -f: the user stops reading
        if self._cancel_sent:
            raise CliError(f"stopped following job {job_id}; it is being cancelled", Exit.CANCELLED)
        if self.interactive and not typer.confirm(
            f"\nCancel job {job_id}?", default=True, err=True
        ):
            return
        self._cancel_sent = True
        request = jobs_pb2.CancelRequest(job_id=job_id, reason="Ctrl-C in arko run")
        self.stubs.jobs.Cancel(request, **self.stubs.options(False))


@contextlib.contextmanager
def _spinner(label: str, on: bool) -> Iterator[None]:
    """A spinner with elapsed time on stderr while the job runs (only on a terminal).

    Output printed meanwhile goes to stdout above it (Rich redirects stdout
    while the display is live), so lines are never mixed into the spinner.
    """
    if not on:
        yield
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}", markup=False), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, redirect_stdout=True) as progress:
        progress.add_task(label, total=None)
        yield


def _tty() -> bool:
    return sys.stdout.isatty() and sys.stderr.isatty()


@app.command(context_settings={"allow_interspersed_args": True})
@handled
def run(
    ctx: typer.Context,
    method: Annotated[str, typer.Argument(help="Service.Method")],
    pairs: Annotated[
        list[str] | None,
        typer.Argument(help="name=value fields of the request (typed by describe)"),
    ] = None,
    detach: Detach = False,
    deadline: Deadline = None,
    json: EventsJson = False,
) -> None:
    """Run a method: output printed as it comes; exits with the job's outcome.

    Ctrl-C cancels the job (asking first on a terminal).
    """
    with _conn(ctx).open() as stubs:
        info = _describe(stubs, method)
        params, args = build_request(info, pairs or [])
        request = jobs_pb2.RunRequest(method=info.method, params=params, detach=detach)
        if args:
            request.args.update(args)
        _launch(stubs, request, deadline, json)


@app.command()
@handled
def rerun(
    ctx: typer.Context,
    job_id: JobId,
    detach: Detach = False,
    deadline: Deadline = None,
    json: EventsJson = False,
) -> None:
    """Run a job again: its method, params and args, as recorded; then as arko run.

    Refused (exit 2) when the record hid a value as ***: it cannot be sent again.
    """
    with _conn(ctx).open() as stubs:
        found = stubs.jobs.Get(jobs_pb2.GetJobRequest(job_id=job_id), **stubs.options())
        _launch(stubs, rerun_request(found, detach), deadline, json)


def _launch(stubs: Stubs, request: jobs_pb2.RunRequest, deadline: float | None, json: bool) -> None:
    """Start the job; print its id (``--detach``) or follow it and exit with its outcome."""
    if deadline is not None:
        request.timeout.FromTimedelta(dt.timedelta(seconds=deadline))
    # Attached unless --detach: the job is ours until it ends, and leaving
    # (a second Ctrl-C, a killed arko) cancels it on the master.
    events = _Pump(stubs.jobs.Run(request, **stubs.options(False)))
    accepted = events.next()
    if accepted is None:
        raise CliError("the master ended the call before accepting the job", Exit.ERROR)
    if request.detach:
        print(dumps({"job_id": accepted.job_id}) if json else wire(accepted.job_id))
        return
    follower = _Follower(stubs, json, _tty(), owns_job=True)
    follower.show(accepted)
    started = time.monotonic()
    with _spinner(wire(f"{request.method} {accepted.job_id}"), _tty() and not json):
        job = follower.follow(events, accepted.job_id)
    code = _FINAL.get(job.state, Exit.JOB_FAILED)
    if not json:
        _summary(job, time.monotonic() - started, code)
    raise typer.Exit(int(code))


def _summary(job: jobs_pb2.Job, seconds: float, code: Exit) -> None:
    """One line on stderr: how the job ended (always when it did not succeed)."""
    state = jobs_pb2.JobState.Name(job.state).lower()
    if code == Exit.OK:
        if sys.stderr.isatty():
            err.print(wire(f"job {job.id} {state} in {seconds:.1f}s"), markup=False)
        return
    ended = f"arko: job {job.id} {state}: {with_code(job.code, job.error)}"
    err.print(wire(ended, multiline=True), markup=False)


@app.command()
@handled
def jobs(
    ctx: typer.Context,
    method: Annotated[str, typer.Option("--method", help="Only jobs of this method")] = "",
    state: Annotated[
        list[str] | None,
        typer.Option("--state", help="Only jobs in this state (repeatable), e.g. failed"),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many")] = 20,
    parent: Annotated[
        str, typer.Option("--parent", help="Only the jobs this job started (its children)")
    ] = "",
    json: Json = False,
) -> None:
    """Job history, newest first."""
    states: list[str] = []
    for name in state or []:
        try:
            states.append(jobs_pb2.JobState.Name(jobs_pb2.JobState.Value(name.upper())))
        except ValueError:
            known = ", ".join(n.lower() for n in jobs_pb2.JobState.keys()[1:])
            raise CliError(f"unknown state {name!r}: use {known}", Exit.USAGE) from None
    request = jobs_pb2.ListJobsRequest(
        method=method, states=states, page_size=limit, parent_id=parent
    )
    with _conn(ctx).open() as stubs:
        reply = stubs.jobs.List(request, **stubs.options())
    if json:
        print(dumps({"jobs": [as_dict(j) for j in reply.jobs]}))
    elif not reply.jobs:
        err.print("no jobs")
    else:
        _table(jobs_table(list(reply.jobs), dt.datetime.now(dt.UTC)))


def _grpcurl_flags(conn: Connection) -> list[str]:
    if not conn.tls:
        flags = ["-plaintext"]
    else:
        flags = [
            f"-{name}={path}"
            for name, path in (
                ("cacert", conn.ca_file),
                ("cert", conn.cert_file),
                ("key", conn.key_file),
            )
            if path is not None
        ]
    if conn.token:
        flags += ["-H", "authorization: Bearer <TOKEN>"]
    return flags


@app.command()
@handled
def job(
    ctx: typer.Context,
    job_id: JobId,
    grpcurl: Annotated[
        bool, typer.Option("--grpcurl", help="Print a grpcurl command that runs it again")
    ] = False,
    json: Json = False,
) -> None:
    """One job's record, and the tree of the jobs it started (children, theirs, ...)."""
    conn = _conn(ctx)
    with conn.open() as stubs:
        found = stubs.jobs.Get(jobs_pb2.GetJobRequest(job_id=job_id), **stubs.options())
        if grpcurl:
            print(grpcurl_command(found, conn.master, _grpcurl_flags(conn)))
            return
        children = fetch_tree(stubs, found.id)
    if json:
        print(dumps({**as_dict(found), "children": tree_dicts(children)}))
        return
    print("\n".join(job_lines(found)))
    if children:
        print("children:")
        print("\n".join(tree_lines(children)))


@app.command()
@handled
def logs(
    ctx: typer.Context,
    job_id: JobId,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the job ends")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Events as JSON lines")] = False,
) -> None:
    """A job's output; with -f, follow a running job to its end."""
    with _conn(ctx).open() as stubs:
        follower = _Follower(stubs, json, _tty(), owns_job=False)
        if follow:
            request = jobs_pb2.WatchRequest(job_id=job_id)
            follower.follow(_Pump(stubs.jobs.Watch(request, **stubs.options(False))), job_id)
            return
        current = stubs.jobs.Get(jobs_pb2.GetJobRequest(job_id=job_id), **stubs.options())
        call = stubs.jobs.Watch(jobs_pb2.WatchRequest(job_id=job_id), **stubs.options(False))
        if current.state in _FINAL:
            for event in call:
                follower.show(event)
            return
        # A running job: print what the master holds now, stopping at the
        # first event newer than this call (or a pause), instead of waiting
        # for the job to end (that is -f).
        since = time.time()
        quiet = threading.Timer(0.5, call.cancel)
        quiet.start()
        try:
            for event in call:
                quiet.cancel()
                if event.time.ToNanoseconds() / 1e9 > since:
                    break
                follower.show(event)
                quiet = threading.Timer(0.5, call.cancel)
                quiet.start()
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                raise
        finally:
            quiet.cancel()
            call.cancel()


@app.command()
@handled
def cancel(ctx: typer.Context, job_id: JobId, json: Json = False) -> None:
    """Cancel a queued or running job; answers once it has ended."""
    request = jobs_pb2.CancelRequest(job_id=job_id, reason="arko cancel")
    with _conn(ctx).open() as stubs:
        found = stubs.jobs.Cancel(request, **stubs.options(False))
    if json:
        print(dumps(as_dict(found)))
    else:
        print(wire(f"job {found.id} {jobs_pb2.JobState.Name(found.state).lower()}"))


@app.command()
@handled
def backup(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Where to write the database copy")],
    json: Json = False,
) -> None:
    """Write a consistent copy of the master's database to FILE (a SQLite file)."""
    partial = file.with_name(f".{file.name}.partial")
    written = 0
    with _conn(ctx).open() as stubs:
        try:
            with _private_file(partial) as out:
                for chunk in stubs.admin.Backup(admin_pb2.BackupRequest(), **stubs.options(False)):
                    out.write(chunk.data)
                    written += len(chunk.data)
        except OSError as exc:
            raise CliError(f"cannot write {file}: {exc.strerror}", Exit.ERROR) from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    os.replace(partial, file)
    if json:
        print(dumps({"file": str(file), "bytes": written}))
    else:
        print(f"wrote {written} bytes to {file}")


def _private_file(path: Path) -> BinaryIO:
    """``path`` opened for writing, new and 0600: the copy holds every job's data.

    A stale file of an earlier, interrupted run is removed first, since an
    existing file would keep its own, perhaps wider, mode.
    """
    path.unlink(missing_ok=True)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def main() -> None:
    """Console script ``arko``."""
    app(prog_name="arko")


# Commands in modules of their own register themselves on ``app`` when imported.
from arko.cli import triggers as _triggers  # noqa: E402, F401
