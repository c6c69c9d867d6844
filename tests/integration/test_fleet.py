"""Registration, pings, failover and restarts with several real daemons."""

from __future__ import annotations

import grpc
import pytest

from arko.gen import register_pb2, register_pb2_grpc
from arko.testing import Daemon, Fleet, free_port, wait_until

FAST_PING = ("--ping_interval", "0.3", "--ping_timeout", "1")


def _rows(fleet: Fleet) -> list[tuple[str, int, int]]:
    return fleet.query("SELECT host, port, status FROM slave ORDER BY id")


def _register(master: Daemon, host: str, port: int) -> str:
    with grpc.insecure_channel(master.address) as channel:
        stub = register_pb2_grpc.RegisterStub(channel)
        reply = stub.RegisterNewSlave(register_pb2.SlaveConfig(host=host, port=port), timeout=10)
        return str(reply.message)


def test_job_moves_to_second_slave_after_first_dies(fleet: Fleet, client_for) -> None:
    """When the first slave dies, a ping marks it down and jobs go to the second."""
    master = fleet.master(*FAST_PING)
    first = fleet.slave(master, "--run_delay", "0")
    second = fleet.slave(master, "--run_delay", "0")
    client = client_for(master)
    client.run("MyPipeline.Run", param="a")
    assert first.events("pipeline_run") and not second.events("pipeline_run")
    first.kill()
    master.wait_for_event("slave_down", timeout=10)
    client.run("MyPipeline.Run", param="b")
    assert second.events("pipeline_run")[-1]["param"] == "b"


def test_dead_slave_before_any_ping_is_skipped(fleet: Fleet, client_for) -> None:
    """A job never reaches a dead slave's socket: it goes to the next one at once."""
    master = fleet.master("--ping_interval", "3600")
    first = fleet.slave(master, "--run_delay", "0")
    second = fleet.slave(master, "--run_delay", "0")
    first.kill()
    client_for(master).run("MyPipeline.Run", param="c")
    assert second.events("pipeline_run")[-1]["param"] == "c"


def test_only_dead_slaves_give_unavailable(fleet: Fleet, client_for) -> None:
    """With every slave that has the method down, the job answers UNAVAILABLE."""
    master = fleet.master(*FAST_PING)
    slave = fleet.slave(master)
    slave.kill()
    master.wait_for_event("slave_down", timeout=10)
    with pytest.raises(grpc.RpcError) as err:
        client_for(master).run("MyPipeline.DryRun")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert slave.address in err.value.details()


def test_slave_that_returns_is_live_after_next_ping(fleet: Fleet, client_for) -> None:
    """A slave restarted on the same port is used again once a ping sees it."""
    master = fleet.master(*FAST_PING)
    slave = fleet.slave(master, "--run_delay", "0")
    slave.kill()
    master.wait_for_event("slave_down", timeout=10)
    fleet.slave(None, "--run_delay", "0", port=slave.port)  # rpc mode: no re-registration
    client = client_for(master)
    wait_until(lambda: _try(client), timeout=10, what="job to succeed on the revived slave")


def _try(client) -> bool:
    try:
        client.run("MyPipeline.DryRun", timeout=5)
    except grpc.RpcError:
        return False
    return True


def test_registering_twice_keeps_one_row(fleet: Fleet) -> None:
    """RegisterNewSlave for the same host:port twice stores one slave."""
    master = fleet.master()
    slave = fleet.slave(None)
    assert _register(master, "127.0.0.1", slave.port) == "done"
    assert _register(master, "127.0.0.1", slave.port) == "done"
    assert _rows(fleet) == [("127.0.0.1", slave.port, 1)]


def test_empty_host_means_the_callers_address(fleet: Fleet) -> None:
    """A registration without host is stored with the address the call came from."""
    master = fleet.master()
    slave = fleet.slave(None)
    _register(master, "", slave.port)
    assert _rows(fleet) == [("127.0.0.1", slave.port, 1)]


def test_unreachable_slave_is_kept_down(fleet: Fleet) -> None:
    """A slave that cannot be reached at registration is stored with status 0."""
    master = fleet.master("--ping_timeout", "1")
    port = free_port()
    assert _register(master, "127.0.0.1", port) == "done"
    assert _rows(fleet) == [("127.0.0.1", port, 0)]
    assert "slave_down" in {e["event"] for e in master.events()}


@pytest.mark.parametrize(
    ("host", "port", "needle"),
    [("127.0.0.1", 0, "port"), ("127.0.0.1", 70000, "port"), ("bad host!", 5000, "host")],
)
def test_bad_registration_is_invalid_argument(
    fleet: Fleet, host: str, port: int, needle: str
) -> None:
    """A registration with a bad host or port answers INVALID_ARGUMENT naming the field."""
    master = fleet.master()
    with pytest.raises(grpc.RpcError) as err:
        _register(master, host, port)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in err.value.details()
    assert _rows(fleet) == []


def test_restarted_master_knows_its_slaves(fleet: Fleet, client_for) -> None:
    """A master restarted on the same database knows and pings the slaves it knew."""
    master = fleet.master()
    slave = fleet.slave(None, "--run_delay", "0")  # rpc mode: never registers by itself
    assert _register(master, "127.0.0.1", slave.port) == "done"
    master.kill()
    again = fleet.master(port=master.port)
    assert again.wait_for_event("slaves_loaded")["count"] == 1
    reply = client_for(again).run("MyPipeline.Run", param="after-restart")
    assert "after-restart" in reply


def test_registered_slave_is_back_after_master_restart(fleet: Fleet, client_for) -> None:
    """A protected slave registers again by itself when its master restarts.

    Its call secret lives only in the master's memory, so the restarted
    master can call it once it has registered again.
    """
    master = fleet.master()
    slave = fleet.slave(master, "--run_delay", "0", "--register_backoff_max", "0.5")
    master.kill()
    again = fleet.master(port=master.port)
    slave.wait_for_event("registered", count=2)
    reply = client_for(again).run("MyPipeline.Run", param="after-restart")
    assert "after-restart" in reply
    assert _rows(fleet) == [("127.0.0.1", slave.port, 1)]


def test_master_logs_slaves_and_methods_when_they_change(fleet: Fleet) -> None:
    """The master logs the slave list with methods after a registration."""
    master = fleet.master()
    slave = fleet.slave(master)
    event = master.wait_for_event("slaves_changed")
    assert event["slaves"] == [
        {
            "slave": slave.address,
            "status": 1,
            "methods": [
                "MyPipeline.Run",
                "MyPipeline.DryRun",
                "MyPipeline.Rollback",
                "MyPipelineLogs.Stream",
            ],
        }
    ]
