"""An operator's bad day: slaves killed and restarted on their ports while jobs stream in."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from arko.gen import execution_pb2, execution_pb2_grpc
from arko.testing import Fleet

KILLS = 5
KILL_EVERY = 8.0  # seconds from the start to each kill: the soak lasts KILLS * KILL_EVERY
CALLERS = 6
FINAL_STATES = ("succeeded", "failed", "cancelled", "interrupted")


def _job_id(reply: execution_pb2.JobStatus | None, err: grpc.RpcError | None) -> str | None:
    if reply is not None:
        return str(reply.job_id)
    assert err is not None
    for key, value in err.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "arko-job-id":
            return str(value)
    return None


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_slaves_killed_and_restarted_under_load_lose_no_job(fleet: Fleet) -> None:
    """Every answered job has a final record, and no caller ever sees UNKNOWN or INTERNAL.

    Each kill -9 and restart makes the master retire the slave's channel (a
    failed ping, then a new registration) while jobs are being sent on it.
    """
    master = fleet.master("--ping_interval", "1")
    slave_args = ("--run_delay", "0.05")
    slaves = [fleet.slave(master, *slave_args) for _ in range(3)]
    answers: Counter[str] = Counter()
    job_ids: list[str] = []
    missing_ids: list[str] = []
    unexpected: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    channel = grpc.insecure_channel(master.address)
    stub = execution_pb2_grpc.ExecutionStub(channel)

    def caller(i: int) -> None:
        for n in range(100_000):  # bounded by the clock long before the count
            if stop.is_set():
                return
            method = "MyPipeline.Run" if n % 2 else "MyPipeline.DryRun"
            reply, err = None, None
            try:
                reply = stub.ExecuteJob(
                    execution_pb2.JobParams(method=method, params={"param": f"{i}-{n}"}),
                    timeout=30,
                )
            except grpc.RpcError as exc:
                err = exc
            code = grpc.StatusCode.OK if err is None else err.code()
            job_id = _job_id(reply, err)
            with lock:
                answers[code.name] += 1
                if code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
                    unexpected.append(f"{code.name}: {err.details() if err else ''}")
                if job_id:
                    job_ids.append(job_id)
                else:
                    missing_ids.append(code.name)

    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        for i in range(CALLERS):
            pool.submit(caller, i)
        started = time.monotonic()
        # Kills on a fixed schedule, not a sleep after each restart: on a busy
        # machine slow restarts would otherwise leave fewer kills in the soak.
        try:
            for kill in range(KILLS):
                time.sleep(max(0.0, started + (kill + 1) * KILL_EVERY - time.monotonic()))
                victim = slaves[kill % len(slaves)]
                victim.kill()
                slaves[kill % len(slaves)] = fleet.slave(master, *slave_args, port=victim.port)
        finally:  # a failed restart must not leave the callers calling until the timeout
            stop.set()
    channel.close()

    assert master.alive(), master.log_text()[-3000:]
    assert not unexpected, f"{len(unexpected)} calls answered UNKNOWN/INTERNAL: {unexpected[:5]}"
    assert not missing_ids, f"answers without a job id: {missing_ids[:5]}"
    assert answers["OK"] > 100, answers
    assert master.stop() == 0
    states = dict(fleet.query("SELECT id, state FROM job"))
    assert len(states) == sum(answers.values()) == len(job_ids), (len(states), answers)
    assert all(states.get(job_id) in FINAL_STATES for job_id in job_ids), Counter(
        states.get(j) for j in job_ids
    )
