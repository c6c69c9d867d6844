"""How big each measurement is, for the full run and for ``--quick``.

Every loop in the suite is bounded twice, by a count and by seconds, and both
bounds live here, so the worst-case run time can be read off one place.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """Sizes of one run of the suite."""

    name: str
    """``full`` or ``quick``: names the output files."""
    repeats: int
    """Timed repeats of every sequential-latency figure (the median is reported)."""
    throughput_repeats: int
    """Timed repeats of every throughput figure."""
    warmup: int
    """Untimed calls before each timed run, at the same concurrency."""
    latency_calls: int
    """Sequential calls per repeat for the master and the direct call."""
    peer_latency_calls: int
    """Sequential calls per repeat for the slower peers (Celery, the naive relay)."""
    concurrencies: tuple[int, ...]
    """Calls in flight for the throughput curve."""
    throughput_calls: int
    """Most calls one throughput run issues."""
    throughput_seconds: float
    """Most seconds one throughput run lasts."""
    naive_inflight: int
    """Calls in flight when the cached and the naive designs are compared."""
    fleet_servers: int
    """Processes serving the live slave addresses of the sweep."""
    fleet_live: int
    """Live slave addresses (split over ``fleet_servers``)."""
    fleet_dead: int
    """Dead slave addresses (ports nobody listens on)."""
    fleet_repeats: int
    """Fresh masters the fleet is registered with (registration rate repeats)."""
    sweeps: int
    """Full ping sweeps timed on the last of them."""
    ping_interval: float
    """The fleet master's ``--ping_interval``: short, so sweeps come quickly."""
    ping_timeout: float
    """The fleet master's ``--ping_timeout`` (the spec's default), the sweep's yardstick."""
    registrants: int
    """Concurrent ``RegisterNewSlave`` callers."""
    mem_slaves: int
    """Slaves registered with each memory master: once as dead ports, once as live ones."""
    mem_live_servers: int
    """Processes serving the live slave addresses of the memory figures."""
    mem_jobs: int
    """Jobs run on the memory master after registration."""
    mem_chunks: int
    """RSS is sampled after each of this many equal slices of ``mem_jobs``."""
    mem_register_seconds: float
    """Most seconds the memory master's registration may take."""
    mem_jobs_seconds: float
    """Most seconds all of the memory master's jobs may take."""
    profile_seconds: float
    """Seconds py-spy samples the master under load."""
    stream_lines: int
    """Lines per streamed job (direct and through the master); each stream has 120 s at most."""
    stream_repeats: int
    """Alternating direct/master streams (and log-line cost repeats)."""
    log_cost_calls: int
    """Sequential ExecuteJob calls per repeat when timing the job_finished log line."""


FULL = BenchConfig(
    name="full",
    repeats=5,
    throughput_repeats=3,
    warmup=300,
    latency_calls=2000,
    peer_latency_calls=500,
    concurrencies=(1, 16, 64, 256),
    throughput_calls=30000,
    throughput_seconds=2.5,
    naive_inflight=64,
    fleet_servers=3,
    fleet_live=900,
    fleet_dead=100,
    fleet_repeats=3,
    sweeps=3,
    ping_interval=3.0,
    ping_timeout=5.0,
    registrants=200,
    mem_slaves=10000,
    mem_live_servers=4,
    mem_jobs=100000,
    mem_chunks=10,
    mem_register_seconds=300.0,
    mem_jobs_seconds=240.0,
    profile_seconds=8.0,
    stream_lines=20000,
    stream_repeats=5,
    log_cost_calls=2000,
)

QUICK = BenchConfig(
    name="quick",
    repeats=2,
    throughput_repeats=2,
    warmup=100,
    latency_calls=500,
    peer_latency_calls=150,
    concurrencies=(1, 16, 64, 256),
    throughput_calls=10000,
    throughput_seconds=1.0,
    naive_inflight=64,
    fleet_servers=1,
    fleet_live=90,
    fleet_dead=10,
    fleet_repeats=2,
    sweeps=2,
    ping_interval=2.0,
    ping_timeout=5.0,
    registrants=200,
    mem_slaves=1000,
    mem_live_servers=1,
    mem_jobs=10000,
    mem_chunks=5,
    mem_register_seconds=60.0,
    mem_jobs_seconds=30.0,
    profile_seconds=3.0,
    stream_lines=5000,
    stream_repeats=3,
    log_cost_calls=500,
)
