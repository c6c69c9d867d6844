"""Jobs through the master: typed parameters, packaged services, errors, load."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from arko.testing import Daemon, Fleet

TOOLBOX = ("--service", "toolbox_plugin:plugin")


def _reply(message: str) -> dict[str, object]:
    """The slave's reply, parsed out of the master's status line."""
    head, _, body = message.partition("Job finished with status OK: ")
    assert head.endswith("done: "), message
    return dict(json.loads(body))


@pytest.fixture
def toolbox_master(fleet: Fleet, toolbox_env: dict[str, str]) -> Daemon:
    """A master with one slave serving only the Toolbox test service."""
    master = fleet.master()
    fleet.slave(master, *TOOLBOX, env=toolbox_env)
    return master


def test_params_are_converted_by_field_type(toolbox_master: Daemon, client_for) -> None:
    """String parameters become ints, bools, doubles, enums, lists and maps."""
    client = client_for(toolbox_master)
    message = client.run(
        "arko.testing.v1.Toolbox.Echo",
        name="x",
        count="42",
        verbose="true",
        ratio="0.5",
        level="HIGH",
        tags='["a", "b"]',
        big="9000000000",
        labels='{"k": "v"}',
    )
    reply = _reply(message)
    assert reply["summary"] == ("name=x count=42 verbose=True ratio=0.5 big=9000000000 labels=k=v")
    assert reply["count"] == 42
    assert reply["level"] == "HIGH"
    assert reply["tags"] == ["a", "b"]


@pytest.mark.parametrize(
    "method", ["arko.testing.v1.Toolbox/Echo", "/arko.testing.v1.Toolbox/Echo"]
)
def test_slash_method_names_are_accepted(toolbox_master: Daemon, client_for, method: str) -> None:
    """Service/Method and /Service/Method name the same method as Service.Method."""
    reply = _reply(client_for(toolbox_master).run(method, name="slash"))
    assert "name=slash" in str(reply["summary"])


def test_unknown_method_is_not_found(toolbox_master: Daemon, client_for) -> None:
    """A method no slave exposes answers NOT_FOUND naming it."""
    with pytest.raises(grpc.RpcError) as err:
        client_for(toolbox_master).run("arko.testing.v1.Toolbox.Nope")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "arko.testing.v1.Toolbox.Nope" in err.value.details()


@pytest.mark.parametrize("method", ["", "Run", "a b.c", "MyPipeline."])
def test_malformed_method_is_invalid_argument(
    toolbox_master: Daemon, client_for, method: str
) -> None:
    """A method name that is not Service.Method answers INVALID_ARGUMENT."""
    with pytest.raises(grpc.RpcError) as err:
        client_for(toolbox_master).run(method)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "method" in err.value.details()


def test_unknown_parameter_is_invalid_argument(toolbox_master: Daemon, client_for) -> None:
    """A parameter the request message lacks answers INVALID_ARGUMENT naming it."""
    with pytest.raises(grpc.RpcError) as err:
        client_for(toolbox_master).run("arko.testing.v1.Toolbox.Echo", colour="red")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'colour'" in err.value.details()


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("count", "many"),
        ("count", "99999999999"),
        ("verbose", "perhaps"),
        ("level", "MEDIUM"),
        ("tags", "not json"),
    ],
)
def test_wrong_typed_parameter_is_invalid_argument(
    toolbox_master: Daemon, client_for, param: str, value: str
) -> None:
    """A value that does not fit its field's type answers INVALID_ARGUMENT naming it."""
    with pytest.raises(grpc.RpcError) as err:
        client_for(toolbox_master).run("arko.testing.v1.Toolbox.Echo", **{param: value})
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"'{param}'" in err.value.details()


@pytest.mark.parametrize("code", ["FAILED_PRECONDITION", "PERMISSION_DENIED", "INTERNAL"])
def test_slave_error_keeps_its_code_and_names_the_slave(
    fleet: Fleet, toolbox_env: dict[str, str], client_for, code: str
) -> None:
    """A slave's error status reaches the caller with its code, message and address."""
    master = fleet.master()
    slave = fleet.slave(master, *TOOLBOX, env=toolbox_env)
    with pytest.raises(grpc.RpcError) as err:
        client_for(master).run("arko.testing.v1.Toolbox.Fail", code=code, message="disk full")
    assert err.value.code() == grpc.StatusCode[code]
    assert "disk full" in err.value.details()
    assert slave.address in err.value.details()


def test_deadline_of_the_caller_reaches_the_slave(
    fleet: Fleet, toolbox_env: dict[str, str], client_for
) -> None:
    """A caller's short deadline is the slave call's deadline, and ends it there.

    The caller's own deadline fails the call locally whatever the master does,
    so the proof is on the slave: the call arrives with no more time than the
    caller gave, and its handler is cancelled.
    """
    master = fleet.master()
    slave = fleet.slave(master, *TOOLBOX, env=toolbox_env)
    with pytest.raises(grpc.RpcError) as err:
        client_for(master).run("arko.testing.v1.Toolbox.Sleep", timeout=0.5, seconds="30")
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    started = slave.wait_for_event("sleep_started")
    # gRPC rounds a deadline up on the wire (to the millisecond below a
    # second, to 10 s near an hour), hence the margin; without the caller's
    # deadline the slave would see the 3600 s --job_timeout.
    assert started["time_remaining"] is not None and started["time_remaining"] <= 0.55
    slave.wait_for_event("sleep_cancelled")
    assert not slave.events("sleep_finished")


def test_fifty_concurrent_jobs_all_succeed(fleet: Fleet, client_for) -> None:
    """50 ExecuteJob calls in flight at once all answer OK with their own params."""
    master = fleet.master()
    fleet.slave(master, "--run_delay", "0.2")
    client = client_for(master)
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(
            pool.map(lambda i: client.run("MyPipeline.Run", param=f"p{i}", password="x"), range(50))
        )
    for i, answer in enumerate(answers):
        assert _reply(answer) == {"message": f"job execution done with: p{i} x"}


def test_plugin_and_default_service_together(
    fleet: Fleet, toolbox_env: dict[str, str], client_for
) -> None:
    """Two --service plug-ins on one slave are both discovered and runnable."""
    master = fleet.master()
    fleet.slave(master, "--service", "arko.slave.mypipeline:plugin", *TOOLBOX, env=toolbox_env)
    client = client_for(master)
    assert _reply(client.run("MyPipeline.DryRun")) == {"message": "job execution done"}
    assert "name=both" in str(
        _reply(client.run("arko.testing.v1.Toolbox.Echo", name="both"))["summary"]
    )


def test_job_id_comes_back_in_trailing_metadata(toolbox_master: Daemon) -> None:
    """Success and failure both carry arko-job-id; on success it equals JobStatus.job_id."""
    from arko.gen import execution_pb2, execution_pb2_grpc

    with grpc.insecure_channel(toolbox_master.address) as channel:
        stub = execution_pb2_grpc.ExecutionStub(channel)
        reply, call = stub.ExecuteJob.with_call(
            execution_pb2.JobParams(method="arko.testing.v1.Toolbox.Echo"), timeout=10
        )
        assert dict(call.trailing_metadata())["arko-job-id"] == reply.job_id
        with pytest.raises(grpc.RpcError) as err:
            stub.ExecuteJob(execution_pb2.JobParams(method="arko.testing.v1.Toolbox.Nope"))
        job_id = dict(err.value.trailing_metadata())["arko-job-id"]
        assert len(job_id) == 32 and job_id != reply.job_id
