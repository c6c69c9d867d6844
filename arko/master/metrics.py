"""The master's Prometheus metrics (``arko_*``), fed from where things already happen.

Counters and histograms are updated by the job service when a job ends, by
the registry when it probes or registers a slave; the slave gauge is read
from the registry at scrape time, so nothing is kept in step by hand.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from arko.common.errors import InvalidArgument, MethodNotFound
from arko.common.methods import parse_method_name
from arko.master.jobs.records import Job
from arko.master.jobs.state import FINAL, JobState
from arko.master.slaves.slave import Slave, SlaveState

# Jobs last from milliseconds (DryRun) to an hour (a deploy).
JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
PING_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
UNKNOWN_METHOD = "(unknown)"


class SlaveList(Protocol):
    """What metrics read from the registry: its slaves and the methods they offer."""

    def slaves(self) -> Sequence[Slave]:
        """All slaves, in registration order."""
        ...

    def offering(self, method: str) -> Sequence[Slave]:
        """Slaves offering ``method``; raises MethodNotFound when none does."""
        ...


class _SlavesByStatus(Collector):
    """``arko_slaves{status}`` counted from the registry on each scrape."""

    def __init__(self, registry: SlaveList) -> None:
        self._registry = registry

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "arko_slaves", "Slaves the master knows, by status", None, ["status"]
        )
        counts = dict.fromkeys(SlaveState, 0)
        for slave in self._registry.slaves():
            counts[slave.state] += 1
        for state, count in counts.items():
            family.add_metric([state.value], count)
        yield family


class MasterMetrics:
    """Every metric family of one master, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._jobs = Counter(
            "arko_jobs", "Jobs that ended, by method and outcome", ["method", "outcome"], registry=r
        )
        self._duration = Histogram(
            "arko_job_duration_seconds",
            "Seconds from a job reaching a slave to its end",
            ["method"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self._wait = Histogram(
            "arko_job_queue_wait_seconds",
            "Seconds from a job's acceptance to its dispatch to a slave",
            ["method"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self._messages = Counter(
            "arko_stream_messages", "Messages relayed from slaves to callers", registry=r
        )
        self._ping = Histogram(
            "arko_slave_ping_seconds",
            "Seconds one probe of a slave took (health and reflection)",
            buckets=PING_BUCKETS,
            registry=r,
        )
        self._ping_failures = Counter(
            "arko_slave_ping_failures", "Probes that found a slave down", registry=r
        )
        self._registrations = Counter(
            "arko_slave_registrations", "Registrations accepted from slaves", registry=r
        )
        self._slaves: SlaveList | None = None
        # Bounded by the methods the fleet offers (see _label) times four outcomes.
        self._cache: dict[tuple[str, str], tuple[Counter, Histogram, Histogram]] = {}

    def watch_slaves(self, registry: SlaveList) -> None:
        """Report ``arko_slaves{status}`` from ``registry``, and label jobs by its methods."""
        self.registry.register(_SlavesByStatus(registry))
        self._slaves = registry

    def _label(self, job: Job) -> str:
        """The job's method by its canonical name, or ``(unknown)`` for one no slave offers.

        Any caller may send any string (``//MyPipeline/DryRun  `` runs
        ``MyPipeline.DryRun``); labelling by that string would let a stranger
        mint series without end, so only names the fleet has become labels.
        """
        try:
            name = parse_method_name(job.method).dotted
        except InvalidArgument:
            return UNKNOWN_METHOD
        if job.slave or self._slaves is None:
            return name  # a slave ran it, so the fleet offered it
        try:
            self._slaves.offering(name)
        except MethodNotFound:
            return UNKNOWN_METHOD
        return name

    def _children(self, method: str, outcome: str) -> tuple[Counter, Histogram, Histogram]:
        """The labelled series of a method, looked up once (``labels()`` costs µs per job)."""
        key = (method, outcome)
        found = self._cache.get(key)
        if found is None:
            found = (
                self._jobs.labels(method, outcome),
                self._wait.labels(method),
                self._duration.labels(method),
            )
            self._cache[key] = found
        return found

    def job_finished(self, job: Job, messages: int) -> None:
        """Count a job that reached its final state, with the messages it relayed."""
        outcome = job.state if job.state in FINAL else JobState.FAILED
        jobs, wait, duration = self._children(self._label(job), outcome)
        jobs.inc()
        if job.started_at is not None:
            wait.observe(max(0.0, job.started_at - job.created_at))
            if job.ended_at is not None:
                duration.observe(max(0.0, job.ended_at - job.started_at))
        if messages:
            self._messages.inc(messages)

    def probed(self, seconds: float, ok: bool) -> None:
        """Observe one probe of a slave."""
        self._ping.observe(seconds)
        if not ok:
            self._ping_failures.inc()

    def registered(self) -> None:
        """Count one registration."""
        self._registrations.inc()
