"""A master restart, as the fleet's protected slaves and the callers see it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from arko.testing import Fleet, wait_until

PATIENT = ("--connect_timeout", "20")


def test_jobs_after_a_restart_wait_for_the_slave_to_register_again(
    fleet: Fleet, client_for
) -> None:
    """A job sent before the protected slave registered again waits for it, then runs.

    The restarted master does not know the slave's call secret until the
    slave registers again, so the job cannot run at once; it must neither
    fail UNAVAILABLE nor be logged as a slave going down. The master comes
    back just after the slave has started a wait of six seconds or more, so
    the job arrives before the registration even on a loaded machine. (CI
    twice saw no job_waiting here: the refused reflection stream reached the
    master's probe as INTERNAL, see test_probe, and the slave was taken for
    down.)
    """
    master = fleet.master(*PATIENT)
    slave = fleet.slave(master, "--run_delay", "0", "--register_backoff_max", "10")
    master.stop()
    wait_until(
        lambda: any(e["retry_in"] >= 6 for e in slave.events("register_retry")),
        timeout=60,
        what="the slave to back off for 6 s or more",
    )
    again = fleet.master(*PATIENT, port=master.port)
    client = client_for(again)
    with ThreadPoolExecutor(max_workers=1) as pool:
        call = pool.submit(client.run, "MyPipeline.Run", 40, param="after-restart")
        waiting = again.wait_for_event("job_waiting")
        reply = call.result(timeout=40)
    assert waiting["reason"] == "waiting for the slave to register again"
    assert "after-restart" in reply
    assert slave.events("pipeline_run")[-1]["param"] == "after-restart"
    assert again.events("slave_awaiting_registration")
    assert not again.events("slave_down"), again.events("slave_down")
