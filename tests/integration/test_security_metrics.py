"""Issue 22, items 3 and 5: callers' strings cannot grow /metrics; /openapi.json is guarded."""

from __future__ import annotations

import random
import string
import urllib.error
import urllib.request

import grpc
from prometheus_client.parser import text_string_to_metric_families

from arko.testing import Fleet, free_port, wait_until
from arko.v1 import jobs_pb2, jobs_pb2_grpc
from tests.integration.web import start_web

REAL = "MyPipeline.DryRun"
# Spellings of a real method that the master accepts and runs.
RUNNABLE = [
    f"{pad}{name}{tail}"
    for pad, name, tail in (
        ("", "//MyPipeline/DryRun", "  "),
        ("  ", "/MyPipeline/DryRun", ""),
        ("", "MyPipeline/DryRun", "\t"),
        (" ", "MyPipeline.DryRun", " "),
        ("\n", "///MyPipeline/DryRun", ""),
    )
]
JUNK = 195  # with RUNNABLE, 200 distinct strings
TOKEN = "client-openapi-7Qz"


def _junk(rng: random.Random) -> set[str]:
    """Names no slave offers: random identifiers, near misses and free text."""
    alphabet = string.ascii_letters + string.digits + " ./-_ä\u200b"
    names: set[str] = set()
    while len(names) < JUNK:
        size = rng.randint(1, 40)
        names.add("".join(rng.choice(alphabet) for _ in range(size)))
        names.add(f"Svc{rng.randrange(10**6)}.M{rng.randrange(10**6)}")
        names.add(f"mypipeline.dryrun{' ' * rng.randint(0, 9)}")
    return set(sorted(names)[:JUNK])


def _jobs_labels(port: int) -> dict[tuple[str, str], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {
        (s.labels["method"], s.labels["outcome"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "arko_jobs_total"
    }


def _method_labels(port: int) -> set[str]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {
        s.labels["method"]
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if "method" in s.labels
    }


def test_callers_method_strings_never_become_metric_labels(fleet: Fleet) -> None:
    """200 distinct strings leave only canonical names and ``(unknown)`` in /metrics."""
    port = free_port()
    master = fleet.master("--metrics_port", str(port))
    fleet.slave(master, "--run_delay", "0")
    junk = _junk(random.Random(22))
    assert len(junk | set(RUNNABLE)) == 200
    with grpc.insecure_channel(master.address) as channel:
        stub = jobs_pb2_grpc.JobsStub(channel)
        for name in RUNNABLE:
            replies = list(stub.Run(jobs_pb2.RunRequest(method=name), timeout=15))
            assert replies, f"{name!r} should run {REAL}"
        for name in sorted(junk):
            try:
                list(stub.Run(jobs_pb2.RunRequest(method=name), timeout=15))
            except grpc.RpcError as exc:
                assert exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)

    def counted() -> float:
        return sum(_jobs_labels(port).values())

    wait_until(lambda: counted() == len(RUNNABLE) + len(junk), 15, "every job to be counted")
    assert _jobs_labels(port) == {
        (REAL, "succeeded"): len(RUNNABLE),
        ("(unknown)", "failed"): len(junk),
    }
    assert _method_labels(port) == {REAL, "(unknown)"}


def test_openapi_needs_the_client_token(fleet: Fleet) -> None:
    """With a client token, /openapi.json is 401 without it or with a wrong one, 200 with it."""
    web = start_web(fleet, env={"ARKO_MASTER_CLIENT_TOKEN": TOKEN})
    for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        refused = web.get("/openapi.json", headers=header)
        assert refused.status_code == 401
        assert "client token" in refused.json()["error"]["message"]
        assert "paths" not in refused.json()
    allowed = web.get("/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"})
    assert allowed.status_code == 200
    assert "/api/v1/run/MyPipeline.DryRun" in allowed.json()["paths"]
    assert TOKEN not in web.master.log_text()
