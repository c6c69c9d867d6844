"""arko.v1.Jobs on real daemons: streamed output, Watch, Get/List, Cancel, detach."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2, struct_pb2

from arko.gen import execution_pb2, execution_pb2_grpc
from arko.testing import Daemon, Fleet, wait_until
from arko.v1 import jobs_pb2, jobs_pb2_grpc

STREAM = "MyPipelineLogs.Stream"
OUTPUT = jobs_pb2.JobEvent.OUTPUT
FINISHED = jobs_pb2.JobEvent.FINISHED


class Jobs:
    """A blocking arko.v1.Jobs client for one master."""

    def __init__(self, master: Daemon) -> None:
        self.channel = grpc.insecure_channel(
            master.address, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        )
        self.stub = jobs_pb2_grpc.JobsStub(self.channel)

    def run(
        self, method: str, timeout: float = 60, **fields: object
    ) -> Iterator[jobs_pb2.JobEvent]:
        """Start Jobs/Run; ``args`` (a dict) becomes the Struct, the rest are request fields."""
        args = fields.pop("args", None)
        if "timeout_field" in fields:  # RunRequest.timeout, apart from the call's own
            fields["timeout"] = fields.pop("timeout_field")
        request = jobs_pb2.RunRequest(method=method, **fields)  # type: ignore[arg-type]
        if args is not None:
            request.args.update(args)  # type: ignore[arg-type]
        return self.stub.Run(request, timeout=timeout)  # type: ignore[no-any-return]

    def watch(self, job_id: str, from_seq: int = 0) -> list[jobs_pb2.JobEvent]:
        return list(
            self.stub.Watch(jobs_pb2.WatchRequest(job_id=job_id, from_seq=from_seq), timeout=60)
        )

    def get(self, job_id: str) -> jobs_pb2.Job:
        return self.stub.Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=10)


@pytest.fixture
def jobs_for() -> Iterator[type[Jobs]]:
    made: list[Jobs] = []

    class _Tracked(Jobs):
        def __init__(self, master: Daemon) -> None:
            super().__init__(master)
            made.append(self)

    yield _Tracked
    for client in made:
        client.channel.close()


@pytest.fixture
def master(fleet: Fleet) -> Daemon:
    """A master with one example slave."""
    m = fleet.master()
    fleet.slave(m, "--run_delay", "0")
    return m


def _numbers(events: list[jobs_pb2.JobEvent]) -> list[int]:
    return [json.loads(e.output)["number"] for e in events if e.kind == OUTPUT]


def test_ten_thousand_lines_stream_in_order_then_read_back(master: Daemon, jobs_for) -> None:
    """10,000 lines arrive complete and in order through Run, and again through Watch."""
    jobs = jobs_for(master)
    events = list(jobs.run(STREAM, args={"lines": 10_000}))
    assert events[0].kind == jobs_pb2.JobEvent.ACCEPTED and events[0].job.id
    assert events[1].kind == jobs_pb2.JobEvent.STARTED
    assert _numbers(events) == list(range(1, 10_001))
    assert events[-1].kind == FINISHED
    assert events[-1].job.state == jobs_pb2.SUCCEEDED
    assert [e.seq for e in events] == list(range(len(events)))
    job_id = events[0].job_id
    again = jobs.watch(job_id)
    assert _numbers(again) == list(range(1, 10_001))
    assert [(e.seq, e.kind) for e in again] == [(e.seq, e.kind) for e in events]
    stored = jobs.get(job_id)
    assert stored.state == jobs_pb2.SUCCEEDED and json.loads(stored.result)["number"] == 10_000


def test_unary_method_gives_one_output_event(master: Daemon, jobs_for) -> None:
    """A unary method: ACCEPTED, STARTED, one OUTPUT with the reply, FINISHED."""
    events = list(jobs_for(master).run("MyPipeline.DryRun"))
    kinds = [jobs_pb2.JobEvent.Kind.Name(e.kind) for e in events]
    assert kinds == ["ACCEPTED", "STARTED", "OUTPUT", "FINISHED"]
    assert json.loads(events[2].output) == {"message": "job execution done"}


def test_a_watcher_attaching_mid_job_gets_earlier_then_live_lines(master: Daemon, jobs_for) -> None:
    """Two watchers attach while lines still come: both get every event, the same ones."""
    jobs = jobs_for(master)
    run = jobs.run(STREAM, args={"lines": 60, "interval": 0.05})
    first = next(run)
    seen: list[jobs_pb2.JobEvent] = [first]
    for event in run:
        seen.append(event)
        if event.kind == OUTPUT and json.loads(event.output)["number"] == 10:
            break
    with ThreadPoolExecutor(max_workers=2) as pool:
        watchers = [pool.submit(jobs.watch, first.job_id) for _ in range(2)]
        seen += list(run)
        a, b = (w.result(timeout=60) for w in watchers)
    assert _numbers(a) == list(range(1, 61))
    assert [(e.seq, e.kind, e.output) for e in a] == [(e.seq, e.kind, e.output) for e in b]
    assert [(e.seq, e.output) for e in a] == [(e.seq, e.output) for e in seen]


def test_watch_from_a_sequence_number(master: Daemon, jobs_for) -> None:
    """Watch from seq N starts there, on a finished job too."""
    jobs = jobs_for(master)
    events = list(jobs.run(STREAM, args={"lines": 20}))
    tail = jobs.watch(events[0].job_id, from_seq=10)
    assert [e.seq for e in tail] == [e.seq for e in events if e.seq >= 10]


def test_slow_reader_keeps_the_master_memory_bounded(fleet: Fleet, jobs_for) -> None:
    """A caller reading one 1 KiB line per 10 ms: the master does not buffer the stream.

    The slave could send 100 MiB at once; gRPC flow control holds it back, so
    the master's RSS grows by no more than its kept output (1 MiB here), the
    live ring (1 MiB) and the transport's windows.
    """
    m = fleet.master("--max_output_bytes", "1048576")
    slave = fleet.slave(m, "--run_delay", "0")
    jobs = jobs_for(m)
    baseline = _rss(m)
    run = jobs.run(STREAM, args={"lines": 100_000, "prefix": "x" * 1024})
    read = 0
    peak = baseline
    deadline = time.monotonic() + 5
    for event in run:
        if event.kind == OUTPUT:
            read += 1
            time.sleep(0.01)
            if read % 50 == 0:
                peak = max(peak, _rss(m))
        if time.monotonic() > deadline:
            break
    run.cancel()
    grown = (peak - baseline) / 2**20
    assert read >= 100
    assert grown < 48, f"master RSS grew {grown:.1f} MiB for a slow reader"
    wait_until(lambda: slave.events("logs_cancelled"), 20, "the slave's handler to be cancelled")
    sent = slave.events("logs_cancelled")[-1]["sent"]
    print(f"slow reader: read {read}, slave sent {sent}, master RSS +{grown:.1f} MiB")
    assert sent < 20_000, f"the slave sent {sent} lines to a reader that took {read}"


def _rss(daemon: Daemon) -> int:
    for line in Path(f"/proc/{daemon.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_cancel_mid_stream_stops_the_slave_and_is_recorded(
    master: Daemon, fleet: Fleet, jobs_for
) -> None:
    """Cancel while lines stream: the slave's handler is cancelled, the record says CANCELLED."""
    slave = next(d for d in fleet.daemons if d.kind == "slave")
    jobs = jobs_for(master)
    run = jobs.run(STREAM, args={"lines": 1000, "interval": 0.02})
    first = next(run)
    for event in run:
        if event.kind == OUTPUT:
            break
    cancelled = jobs.stub.Cancel(
        jobs_pb2.CancelRequest(job_id=first.job_id, reason="wrong branch"), timeout=10
    )
    assert cancelled.state == jobs_pb2.CANCELLED
    assert "wrong branch" in cancelled.cancelled_by and "127.0.0.1" in cancelled.cancelled_by
    with pytest.raises(grpc.RpcError) as err:
        list(run)
    assert err.value.code() == grpc.StatusCode.CANCELLED
    slave.wait_for_event("logs_cancelled")
    record = jobs.get(first.job_id)
    assert (record.state, record.code) == (jobs_pb2.CANCELLED, "CANCELLED")


def test_a_caller_going_away_cancels_the_slave_call(master: Daemon, fleet: Fleet, jobs_for) -> None:
    """A Run caller that disconnects (not detached) cancels the job on the slave."""
    slave = next(d for d in fleet.daemons if d.kind == "slave")
    jobs = jobs_for(master)
    run = jobs.run(STREAM, args={"lines": 1000, "interval": 0.02})
    first = next(run)
    next(e for e in run if e.kind == OUTPUT)
    jobs.channel.close()
    slave.wait_for_event("logs_cancelled")
    other = jobs_for(master)
    record = wait_until(
        lambda: (r := other.get(first.job_id)).state != jobs_pb2.RUNNING and r, 10, "the record"
    )
    assert (record.state, record.cancelled_by) == (jobs_pb2.CANCELLED, "caller went away")


def test_a_detached_job_runs_on_and_can_be_watched(master: Daemon, fleet: Fleet, jobs_for) -> None:
    """detach: Run answers with ACCEPTED only; the job runs on without its caller."""
    jobs = jobs_for(master)
    events = list(jobs.run(STREAM, detach=True, args={"lines": 30, "interval": 0.02}))
    assert [e.kind for e in events] == [jobs_pb2.JobEvent.ACCEPTED]
    assert events[0].job.detached
    jobs.channel.close()
    later = jobs_for(master)
    watched = later.watch(events[0].job_id)
    assert _numbers(watched) == list(range(1, 31))
    assert watched[-1].job.state == jobs_pb2.SUCCEEDED


def test_a_detached_job_can_be_cancelled(master: Daemon, fleet: Fleet, jobs_for) -> None:
    """Cancel stops a detached job too; Cancel answers once it has ended."""
    slave = next(d for d in fleet.daemons if d.kind == "slave")
    jobs = jobs_for(master)
    (accepted,) = list(jobs.run(STREAM, detach=True, args={"lines": 1000, "interval": 0.02}))
    slave.wait_for_event("logs_started")
    record = jobs.stub.Cancel(jobs_pb2.CancelRequest(job_id=accepted.job_id), timeout=10)
    assert record.state == jobs_pb2.CANCELLED
    slave.wait_for_event("logs_cancelled")


@pytest.mark.parametrize("detach", [False, True])
def test_the_requests_timeout_ends_the_job_with_deadline_exceeded(
    master: Daemon, jobs_for, detach: bool
) -> None:
    """RunRequest.timeout is the job's deadline, attached or detached: FAILED, DEADLINE_EXCEEDED.

    The call itself has a minute: only the request's second can end the job.
    """
    jobs = jobs_for(master)
    second = duration_pb2.Duration(seconds=1)
    run = jobs.run(
        STREAM, detach=detach, timeout_field=second, args={"lines": 1000, "interval": 0.1}
    )
    accepted = next(run)
    if not detach:
        with pytest.raises(grpc.RpcError) as err:
            list(run)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    final = jobs.watch(accepted.job_id)[-1].job
    assert (final.state, final.code, final.detached) == (
        jobs_pb2.FAILED,
        "DEADLINE_EXCEEDED",
        detach,
    )


def test_a_timeout_that_is_not_positive_is_refused(master: Daemon, jobs_for) -> None:
    """A zero or negative RunRequest.timeout is INVALID_ARGUMENT naming it, before any job."""
    jobs = jobs_for(master)
    with pytest.raises(grpc.RpcError) as err:
        list(jobs.run(STREAM, timeout_field=duration_pb2.Duration(seconds=-2)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "timeout must be positive" in err.value.details()


def test_a_master_restart_keeps_finished_output_readable(fleet: Fleet, jobs_for) -> None:
    """Output of a finished job is read back after the master restarts."""
    m = fleet.master()
    fleet.slave(m, "--run_delay", "0")
    events = list(jobs_for(m).run(STREAM, args={"lines": 500}))
    assert m.stop() == 0
    again = fleet.master(port=m.port)
    watched = jobs_for(again).watch(events[0].job_id)
    assert _numbers(watched) == list(range(1, 501))
    assert watched[-1].job.state == jobs_pb2.SUCCEEDED


def test_kept_output_is_cut_with_a_marker_while_live_output_goes_on(fleet: Fleet, jobs_for) -> None:
    """Past --max_output_bytes the kept copy ends with TRUNCATED; the caller gets every line."""
    m = fleet.master("--max_output_bytes", "4096")
    fleet.slave(m, "--run_delay", "0")
    jobs = jobs_for(m)
    events = list(jobs.run(STREAM, args={"lines": 400}))
    assert _numbers(events) == list(range(1, 401))
    kinds = [e.kind for e in events]
    assert kinds.count(jobs_pb2.JobEvent.TRUNCATED) == 1
    watched = jobs.watch(events[0].job_id)
    kept = _numbers(watched)
    assert kept == list(range(1, len(kept) + 1)) and 20 < len(kept) < 400
    assert watched[-2].kind == jobs_pb2.JobEvent.TRUNCATED
    assert watched[-1].kind == FINISHED and watched[-1].job.output_truncated
    assert sum(len(e.output) for e in watched) <= 4096


def test_list_is_newest_first_filtered_and_paged(master: Daemon, jobs_for) -> None:
    """List pages through every job newest first, and filters by method and state."""
    jobs = jobs_for(master)
    ran = [list(jobs.run("MyPipeline.DryRun"))[-1].job_id for _ in range(7)]
    with pytest.raises(grpc.RpcError):
        list(jobs.run("MyPipeline.Nope"))
    seen: list[str] = []
    token = ""
    while True:
        page = jobs.stub.List(
            jobs_pb2.ListJobsRequest(method="MyPipeline.DryRun", page_size=3, page_token=token),
            timeout=10,
        )
        seen += [j.id for j in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ran))
    failed = jobs.stub.List(jobs_pb2.ListJobsRequest(states=[jobs_pb2.FAILED]), timeout=10)
    assert [j.method for j in failed.jobs] == ["MyPipeline.Nope"]
    assert failed.jobs[0].code == "NOT_FOUND"


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda s: s.Get(jobs_pb2.GetJobRequest(job_id="nope")), "INVALID_ARGUMENT"),
        (lambda s: s.Get(jobs_pb2.GetJobRequest(job_id="0" * 32)), "NOT_FOUND"),
        (lambda s: list(s.Watch(jobs_pb2.WatchRequest(job_id="0" * 32))), "NOT_FOUND"),
        (lambda s: list(s.Watch(jobs_pb2.WatchRequest(job_id="x;drop"))), "INVALID_ARGUMENT"),
        (
            lambda s: list(s.Watch(jobs_pb2.WatchRequest(job_id="0" * 32, from_seq=-1))),
            "INVALID_ARGUMENT",
        ),
        (lambda s: s.Cancel(jobs_pb2.CancelRequest(job_id="0" * 32)), "NOT_FOUND"),
        (lambda s: s.List(jobs_pb2.ListJobsRequest(page_token="garbage!")), "INVALID_ARGUMENT"),
        (lambda s: s.List(jobs_pb2.ListJobsRequest(page_size=2**31 - 1)), "INVALID_ARGUMENT"),
        (lambda s: s.List(jobs_pb2.ListJobsRequest(page_size=-5)), "INVALID_ARGUMENT"),
        (lambda s: s.List(jobs_pb2.ListJobsRequest(states=[99])), "INVALID_ARGUMENT"),
    ],
)
def test_bad_ids_tokens_and_sizes_are_refused(master: Daemon, jobs_for, call, code: str) -> None:
    """Malformed requests get INVALID_ARGUMENT or NOT_FOUND, never UNKNOWN."""
    with pytest.raises(grpc.RpcError) as err:
        call(jobs_for(master).stub)
    assert err.value.code().name == code, err.value.details()


def test_typed_args_are_checked_against_the_request_type(master: Daemon, jobs_for) -> None:
    """args follow the JSON mapping: a wrong type or a field given twice names the field."""
    jobs = jobs_for(master)
    for args, params, needle in [
        ({"lines": "many"}, {}, "lines"),
        ({"lines": 2.5}, {}, "lines"),
        ({"nope": 1}, {}, "nope"),
        ({"lines": 3}, {"lines": "3"}, "both"),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            list(jobs.run(STREAM, args=args, params=params))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert needle in err.value.details()
    events = list(jobs.run(STREAM, args={"lines": 2, "prefix": "p-"}))
    assert [json.loads(e.output)["text"] for e in events if e.kind == OUTPUT] == [
        "p-line 1 of 2",
        "p-line 2 of 2",
    ]


def test_secrets_are_redacted_in_events_and_records(master: Daemon, jobs_for) -> None:
    """A password passed to the job never shows in its events, record or listing."""
    jobs = jobs_for(master)
    events = list(jobs.run("MyPipeline.Run", params={"param": "one", "password": "s3cr3t-pw-77"}))
    record = jobs.get(events[0].job_id)
    listing = jobs.stub.List(jobs_pb2.ListJobsRequest(), timeout=10)
    watched = jobs.watch(events[0].job_id)
    for text in [str(e) for e in events + watched] + [str(record), str(listing)]:
        assert "s3cr3t-pw-77" not in text
    assert record.params["password"] == "***"


def test_execute_job_on_a_streaming_method_answers_a_json_array(master: Daemon) -> None:
    """Execution/ExecuteJob runs a server-streaming method and answers its messages as an array."""
    with grpc.insecure_channel(master.address) as channel:
        reply = execution_pb2_grpc.ExecutionStub(channel).ExecuteJob(
            execution_pb2.JobParams(method=STREAM, params={"lines": "3"}), timeout=30
        )
    head, _, body = reply.message.partition("Job finished with status OK: ")
    assert head == f"{STREAM} done: "
    assert [m["number"] for m in json.loads(body)] == [1, 2, 3]


def test_grpcurl_streams_a_job_through_jobs_run(master: Daemon, grpcurl: str) -> None:
    """The real grpcurl, through reflection: Jobs/Run prints each event as it comes."""
    body = json.dumps({"method": STREAM, "args": {"lines": 3}})
    out = subprocess.run(
        [grpcurl, "-plaintext", "-d", body, master.address, "arko.v1.Jobs/Run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    events = [json.loads(chunk) for chunk in _json_objects(out)]
    assert [e["kind"] for e in events] == ["ACCEPTED", "STARTED", *["OUTPUT"] * 3, "FINISHED"]
    assert events[-1]["job"]["state"] == "SUCCEEDED"


def _json_objects(text: str) -> Iterator[str]:
    """Split grpcurl's stream output (pretty-printed objects one after another)."""
    decoder = json.JSONDecoder()
    index = 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        _, end = decoder.raw_decode(text, index)
        yield text[index:end]
        index = end


def test_jobs_api_needs_the_client_token_when_one_is_set(fleet: Fleet) -> None:
    """With a client token, Jobs refuses callers without it, like Execution."""
    m = fleet.master(env={"ARKO_MASTER_CLIENT_TOKEN": "tok-123456"})
    with grpc.insecure_channel(m.address) as channel:
        stub = jobs_pb2_grpc.JobsStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.List(jobs_pb2.ListJobsRequest(), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        ok = stub.List(
            jobs_pb2.ListJobsRequest(),
            timeout=10,
            metadata=[("authorization", "Bearer tok-123456")],
        )
        assert list(ok.jobs) == []


def test_struct_args_survive_the_record(master: Daemon, jobs_for) -> None:
    """Typed args are kept in the record as given (secrets redacted)."""
    jobs = jobs_for(master)
    events = list(jobs.run(STREAM, args={"lines": 2, "prefix": "a"}))
    record = jobs.get(events[0].job_id)
    assert dict(record.args) == {"lines": 2.0, "prefix": "a"}
    assert isinstance(record.args, struct_pb2.Struct)
