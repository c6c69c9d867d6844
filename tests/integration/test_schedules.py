"""Schedules through real masters: ``every`` fires, a slot fires once fleet-wide, bad cron stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from arko.testing import Daemon, Fleet, wait_until

DRY_RUN = "MyPipeline.DryRun"
JOIN = {"ARKO_MASTER_JOIN_TOKEN": "schedules-join", "ARKO_SLAVE_JOIN_TOKEN": "schedules-join"}


def _config(folder: Path, every: str) -> Path:
    path = folder / "master.toml"
    path.write_text(
        f'[[schedule]]\nname = "tick"\nevery = "{every}"\nmethod = "{DRY_RUN}"\n'
        'params = { ref = "main" }\n'
    )
    return path


def _fired(masters: list[Daemon]) -> list[str]:
    """Every slot any of the masters fired, one entry per firing."""
    return [e["slot"] for m in masters for e in m.events("schedule_fired")]


def test_every_two_seconds_fires_jobs_with_the_schedule_as_trigger(fleet: Fleet) -> None:
    """Three slots fire; each made one job, ``schedule:tick``, with the declared params."""
    config = _config(fleet.workdir, "2s")
    master = fleet.master("--config", str(config), "--job_flush_interval", "0.2")
    fleet.slave(master, "--run_delay", "0")
    master.wait_for_event("schedule_fired", timeout=30, count=3)
    slots = _fired([master])
    assert len(set(slots)) == len(slots)

    def stored() -> list[tuple[str, str, str]] | None:
        rows = fleet.query("SELECT trigger, method, params FROM job")
        return rows if len(rows) >= 3 else None

    rows = wait_until(stored, 15, "three scheduled jobs on record")
    assert {(t, m) for t, m, _ in rows} == {("schedule:tick", DRY_RUN)}
    assert all('"ref": "main"' in p or '"ref":"main"' in p for _, _, p in rows)


def test_a_bad_cron_expression_stops_the_master_naming_the_schedule(fleet: Fleet) -> None:
    config = fleet.workdir / "bad.toml"
    config.write_text(
        f'[[schedule]]\nname = "nightly"\ncron = "0 25 * * *"\nmethod = "{DRY_RUN}"\n'
    )
    master = fleet.master("--config", str(config), wait=False)
    assert master.proc is not None
    assert master.proc.wait(30) == 2
    assert "schedule 'nightly'" in master.log_text()


@pytest.mark.one_pass("its masters are on PostgreSQL in the SQLite pass already")
def test_two_masters_on_postgresql_fire_each_slot_exactly_once(
    postgres_url: str, fleet: Fleet
) -> None:
    """Over ten one-second slots, each slot is fired by one master and made one job."""
    config = _config(fleet.workdir, "1s")
    masters = [
        fleet.master(
            "--config",
            str(config),
            "--name",
            f"m{i}",
            "--job_flush_interval",
            "0.2",
            db=postgres_url,
            env=JOIN,
        )
        for i in range(2)
    ]
    fleet.slave(masters, "--run_delay", "0", env=JOIN)
    first = len(_fired(masters))
    wait_until(lambda: len(_fired(masters)) >= first + 12, 60, "twelve more slots fired")
    fired = _fired(masters)
    assert len(fired) == len(set(fired)), "a slot fired twice"
    slots = sorted(fired)[first + 1 : first + 11]  # ten slots while both ran
    assert len(slots) == 10
    claimed = fleet.query("SELECT slot, master FROM schedule_slot", db=postgres_url)
    assert len(claimed) == len({slot for slot, _ in claimed}) >= len(fired)

    def jobs() -> int | None:
        count = fleet.query(
            "SELECT count(*) FROM job WHERE trigger = 'schedule:tick'", db=postgres_url
        )[0][0]
        return count if count >= len(fired) else None

    assert wait_until(jobs, 15, "every fired slot's job on record") >= len(fired)
    assert (
        len(claimed)
        == fleet.query("SELECT count(*) FROM job WHERE trigger = 'schedule:tick'", db=postgres_url)[
            0
        ][0]
    )
