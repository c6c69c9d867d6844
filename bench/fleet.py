"""Fleet scale: registration rate, ping sweeps over a thousand slaves, master memory.

Slave addresses come from :mod:`bench.fleet_server` processes (hundreds or
thousands of ports each, live: they answer health and reflection) plus dead
ports nobody listens on (refused at once). The master under test is a
real ``arko-master`` subprocess; everything about it is read from outside:
its JSON log (sweep timing), and ``/proc`` (CPU, RSS).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from arko.testing import LOOPBACK, Daemon, Fleet
from bench.config import BenchConfig
from bench.dispatch import SLACK
from bench.observe import LogTail, RssPeak, cpu_seconds, event_time, rss_mb
from bench.procs import LoadGen, dead_ports, start_fleet_server

Say = Callable[[str], None]
SWEEP_EVENT = "ping_sweep_done"
# How often the log is read while waiting for a sweep to end.
POLL = 0.02
# Thousands of slaves register from this one host: the master's per-peer rate
# limit and slave cap, which guard against strangers, would measure themselves.
UNCAPPED = ("--register_rate_limit", "0", "--max_slaves", "1000000")


def _register(
    gen: LoadGen, master: Daemon, addresses: list[tuple[str, int]], concurrency: int, seconds: float
) -> dict[str, Any]:
    """Register every address with ``concurrency`` registrants; failures are counted, not fatal."""
    return gen.run(
        "register",
        timeout=seconds + SLACK,
        address=master.address,
        slaves=[list(a) for a in addresses],
        concurrency=concurrency,
        max_seconds=seconds,
    )


def _time_sweeps(
    master: Daemon, slaves: int, count: int, interval: float, timeout: float, since: float
) -> list[dict[str, float]]:
    """Time ``count`` full sweeps that started after ``since``, with the master's CPU in each.

    A sweep starts ``interval`` seconds after the previous one's
    ``ping_sweep_done`` (the ping loop sleeps between sweeps), so its duration
    is the gap between two such events less the interval -- unless the master
    logs ``seconds`` itself, which is then used. CPU is read just before the
    sweep is due and again as soon as its end is logged.
    """
    proc = psutil.Process(master.pid)
    tail = LogTail(master.log_path)
    deadline = time.monotonic() + (count + 2) * (interval + 3 * timeout) + SLACK
    previous: dict[str, Any] | None = None
    cpu_before: float | None = None
    sweeps: list[dict[str, float]] = []
    while len(sweeps) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(sweeps)} of {count} sweeps ended in time")
        done = [
            e for e in tail.read(SWEEP_EVENT) if e.get("slaves") == slaves and event_time(e) > since
        ]
        if not done:
            time.sleep(POLL)
            continue
        event = done[-1]
        cpu_now = cpu_seconds(proc)
        if previous is not None and cpu_before is not None:
            gap = event_time(event) - event_time(previous) - interval
            logged = event.get("seconds")
            sweeps.append(
                {
                    "seconds": float(logged) if logged is not None else gap,
                    "cpu_seconds": cpu_now - cpu_before,
                    "live": float(event.get("live", 0)),
                }
            )
        previous = event
        # Sleep until just before the next sweep is due, then read the CPU.
        due = event_time(event) + interval - 0.05
        time.sleep(max(0.0, due - time.time()))
        cpu_before = cpu_seconds(proc)
    return sweeps


def fleet_scale(
    cfg: BenchConfig, fleet: Fleet, gen: LoadGen, workdir: Path, say: Say
) -> dict[str, Any]:
    """Registration rate on fresh masters, then sweep time and CPU on the last one."""
    servers: list[Daemon] = []
    live: list[int] = []
    per_server = -(-cfg.fleet_live // cfg.fleet_servers)
    for i in range(cfg.fleet_servers):
        server, ports = start_fleet_server(fleet, min(per_server, cfg.fleet_live - i * per_server))
        servers.append(server)
        live += ports
    dead = dead_ports(cfg.fleet_dead)
    addresses = [(LOOPBACK, p) for p in live + dead]
    random.Random(5).shuffle(addresses)  # dead ones spread through registration order
    say(f"fleet: {len(live)} live ports in {len(servers)} processes, {len(dead)} dead ports")

    registrations: list[dict[str, Any]] = []
    result: dict[str, Any] = {"slaves": len(addresses), "live": len(live), "dead": len(dead)}
    master: Daemon | None = None
    try:
        for rep in range(cfg.fleet_repeats):
            master = fleet.master(
                *UNCAPPED,
                "--ping_interval",
                str(cfg.ping_interval),
                "--ping_timeout",
                str(cfg.ping_timeout),
                "--log_level",
                "debug",
                db=workdir / f"fleet-{rep}.db",
            )
            run = _register(gen, master, addresses, cfg.registrants, 120.0)
            registrations.append(run)
            say(
                f"registration repeat {rep + 1}/{cfg.fleet_repeats}: {run['rate']:.0f}/s, "
                f"{run['errors']} failed ({run['first_error'][:80]})"
            )
            if rep + 1 < cfg.fleet_repeats:
                master.stop()
        assert master is not None
        ended = time.time()
        sweeps = _time_sweeps(
            master, len(addresses), cfg.sweeps, cfg.ping_interval, cfg.ping_timeout, ended
        )
        say(
            "sweeps: "
            + ", ".join(f"{s['seconds']:.2f} s ({s['cpu_seconds']:.2f} s CPU)" for s in sweeps)
        )
        result.update(
            registrations=registrations,
            sweeps=sweeps,
            master_rss_mb=rss_mb(psutil.Process(master.pid)),
            master_log_mb=master.log_path.stat().st_size / 1e6,
        )
    finally:
        if master is not None:
            master.stop()
        for process in servers:
            process.stop()
    return result


def memory(cfg: BenchConfig, fleet: Fleet, gen: LoadGen, workdir: Path, say: Say) -> dict[str, Any]:
    """Master RSS: idle, with ``cfg.mem_slaves`` slaves, along ``cfg.mem_jobs`` jobs, in a sweep.

    The master pings only once an hour here, so the RSS series along the jobs
    shows the job path alone (a sweep's channels would mask a slow leak); the
    sweep's own cost is measured apart, by restarting the master on the same
    database: it loads every slave and sweeps them at once. The master logs at
    ``warning``: at ``info`` each registration logs the whole fleet, which for
    10,000 slaves is gigabytes of log (see the report).
    """
    db = workdir / "memory.db"
    quiet = (*UNCAPPED, "--ping_interval", "3600", "--log_level", "warning")
    master = fleet.master(*quiet, db=db)
    proc = psutil.Process(master.pid)
    slave: Daemon | None = None
    try:
        time.sleep(2.0)  # let start-up garbage settle before calling it idle
        idle = rss_mb(proc)
        slave = fleet.slave(master)  # registered first, so the scheduler finds it first
        addresses = [(LOOPBACK, p) for p in dead_ports(cfg.mem_slaves)]
        with RssPeak(proc) as peak:
            reg = _register(gen, master, addresses, cfg.registrants, cfg.mem_register_seconds)
        time.sleep(2.0)
        registered = rss_mb(proc)
        say(
            f"memory: idle {idle:.1f} MB; {reg['count']} dead slaves registered in "
            f"{reg['elapsed_s']:.1f} s ({reg['errors']} failed): {registered:.1f} MB, "
            f"peak {peak.peak_mb:.1f} MB"
        )
        chunks = _jobs_with_rss(cfg, gen, master, proc)
        say(
            f"memory: {chunks[-1]['jobs'] if chunks else 0} jobs at "
            f"~{chunks[-1]['rate'] if chunks else 0:.0f}/s, RSS "
            + " ".join(f"{c['rss_mb']:.0f}" for c in chunks)
        )
    finally:
        if slave is not None:
            slave.stop()
        master.stop()
    restart = _restart_sweep(fleet, db, cfg.mem_slaves + 1, cfg.ping_timeout)
    say(
        f"memory: restarted master swept {restart['slaves']} slaves in "
        f"{restart['sweep_seconds']:.1f} s, RSS peak {restart['peak_mb']:.1f} MB, "
        f"after {restart['after_mb']:.1f} MB"
    )
    return {
        "idle_mb": idle,
        "slaves": cfg.mem_slaves,
        "registration": reg,
        "registered_mb": registered,
        "registration_peak_mb": peak.peak_mb,
        "jobs": chunks[-1]["jobs"] if chunks else 0,
        "jobs_target": cfg.mem_jobs,
        "chunks": chunks,
        "restart_sweep": restart,
    }


def memory_live(
    cfg: BenchConfig, fleet: Fleet, gen: LoadGen, workdir: Path, say: Say
) -> dict[str, Any]:
    """Master RSS with ``cfg.mem_slaves`` live slaves, and a restarted master's sweep of them.

    :func:`memory` registers dead ports: the cheap case, since a refused
    connection leaves the master nothing to hold. Here every address is a
    port of a :mod:`bench.fleet_server` process answering health and
    reflection, so the master keeps a connection and a descriptor catalog per
    slave, as it would for a real fleet.
    """
    servers: list[Daemon] = []
    ports: list[int] = []
    per_server = -(-cfg.mem_slaves // cfg.mem_live_servers)
    try:
        for i in range(cfg.mem_live_servers):
            count = min(per_server, cfg.mem_slaves - i * per_server)
            server, served = start_fleet_server(fleet, count)
            servers.append(server)
            ports += served
        db = workdir / "memory-live.db"
        master = fleet.master(*UNCAPPED, "--ping_interval", "3600", "--log_level", "warning", db=db)
        proc = psutil.Process(master.pid)
        try:
            time.sleep(2.0)  # let start-up garbage settle before calling it idle
            idle = rss_mb(proc)
            addresses = [(LOOPBACK, p) for p in ports]
            with RssPeak(proc) as peak:
                reg = _register(gen, master, addresses, cfg.registrants, cfg.mem_register_seconds)
            time.sleep(2.0)
            registered = rss_mb(proc)
        finally:
            master.stop()
        say(
            f"memory, live: idle {idle:.1f} MB; {reg['count']} live slaves registered in "
            f"{reg['elapsed_s']:.1f} s ({reg['errors']} failed): {registered:.1f} MB, "
            f"peak {peak.peak_mb:.1f} MB"
        )
        restart = _restart_sweep(fleet, db, len(ports), cfg.ping_timeout)
        say(
            f"memory, live: restarted master swept {restart['slaves']} slaves "
            f"({restart['live']} live) in {restart['sweep_seconds']:.1f} s, "
            f"RSS peak {restart['peak_mb']:.1f} MB, after {restart['after_mb']:.1f} MB"
        )
    finally:
        for server in servers:
            server.stop()
    return {
        "slaves": len(ports),
        "idle_mb": idle,
        "registration": reg,
        "registered_mb": registered,
        "registration_peak_mb": peak.peak_mb,
        "restart_sweep": restart,
    }


def _jobs_with_rss(
    cfg: BenchConfig, gen: LoadGen, master: Daemon, proc: psutil.Process
) -> list[dict[str, Any]]:
    """Run ``cfg.mem_jobs`` jobs in equal slices, reading RSS after each; time-bounded."""
    chunks: list[dict[str, Any]] = []
    per_chunk = cfg.mem_jobs // cfg.mem_chunks
    budget_end = time.monotonic() + cfg.mem_jobs_seconds
    done = 0
    for _ in range(cfg.mem_chunks):
        left = budget_end - time.monotonic()
        if left <= 0:
            break
        run = gen.run(
            "unary",
            timeout=left + SLACK,
            address=master.address,
            target="execute",
            count=per_chunk,
            inflight=64,
            max_seconds=left,
            warmup=0,
        )
        done += run["count"]
        chunks.append(
            {"jobs": done, "rss_mb": rss_mb(proc), "rate": run["rate"], "errors": run["errors"]}
        )
    return chunks


def _restart_sweep(fleet: Fleet, db: Path, slaves: int, timeout: float) -> dict[str, Any]:
    """Start a master on ``db`` and watch it load and sweep every stored slave.

    The sweep starts as the master starts (``master_started``) and ends with
    ``ping_sweep_done``; RSS is sampled all along.
    """
    master = fleet.master(
        *UNCAPPED, "--ping_interval", "3600", "--log_level", "debug", db=db, wait=False
    )
    try:
        proc = psutil.Process(master.pid)
        tail = LogTail(master.log_path)
        deadline = time.monotonic() + 10 * timeout + SLACK
        started: dict[str, Any] | None = None
        done: dict[str, Any] | None = None
        # Registrations that failed on a loaded machine stored nothing: the
        # sweep to wait for is of the slaves the master loaded.
        loaded = slaves
        with RssPeak(proc, interval=0.05) as peak:
            while done is None:
                if time.monotonic() > deadline or not master.alive():
                    raise TimeoutError(f"restarted master did not sweep {loaded} slaves in time")
                for event in tail.read():
                    if event.get("event") == "master_started":
                        started = event
                    elif event.get("event") == "slaves_loaded":
                        loaded = int(event["count"])
                    elif event.get("event") == SWEEP_EVENT and event.get("slaves") == loaded:
                        done = event
                time.sleep(POLL)
        cpu = cpu_seconds(proc)
        time.sleep(1.0)
        return {
            "slaves": loaded,
            "live": int(done.get("live", 0)),
            "sweep_seconds": event_time(done) - event_time(started) if started else float("nan"),
            "cpu_seconds_until_swept": cpu,
            "peak_mb": peak.peak_mb,
            "after_mb": rss_mb(proc),
        }
    finally:
        master.stop()


def render(scale: dict[str, Any], live: dict[str, Any]) -> str:
    """What :func:`fleet_scale` and :func:`memory_live` measured, as a few lines of text."""
    rates = ", ".join(f"{r['rate']:.0f}" for r in scale["registrations"])
    sweeps = ", ".join(
        f"{s['seconds']:.2f} s ({s['cpu_seconds']:.2f} s CPU)" for s in scale["sweeps"]
    )
    restart, reg = live["restart_sweep"], live["registration"]
    return "\n".join(
        [
            f"Fleet: {scale['slaves']} slaves ({scale['live']} live, {scale['dead']} dead ports)",
            f"  registrations/s, fresh masters: {rates}",
            f"  sweeps: {sweeps}; master RSS {scale['master_rss_mb']:.1f} MB",
            f"Live fleet: {live['slaves']} slaves",
            f"  registered at {reg['rate']:.0f}/s ({reg['errors']} failed): RSS "
            f"{live['registered_mb']:.1f} MB (peak {live['registration_peak_mb']:.1f}), "
            f"idle {live['idle_mb']:.1f} MB",
            f"  restarted master: first sweep {restart['sweep_seconds']:.2f} s "
            f"({restart['live']} live, {restart['cpu_seconds_until_swept']:.1f} s CPU), "
            f"RSS peak {restart['peak_mb']:.1f} MB, after {restart['after_mb']:.1f} MB",
        ]
    )
