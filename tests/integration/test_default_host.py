"""The daemons on the listen host a user gets: every listener answers on 127.0.0.1 and on ::1.

Other tests start the daemons with ``--listen_host 127.0.0.1``. Here the flag
is left out, as after a plain ``arko-master`` or ``arko-slave``, so the
default ``[::]`` is what is served; the daemons are still only dialled on
loopback.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

from arko.testing import Daemon, Fleet, free_port, wait_until

LOOPBACKS = ("127.0.0.1", "[::1]")
# Set in the run of this module inside a namespace whose IPv6 sockets are IPv6-only.
IPV6_ONLY_RUN = "ARKO_TEST_IPV6_ONLY_RUN"
# Inside a new network namespace: bring its loopback up, make "::" IPv6-only, run the rest.
_IPV6_ONLY_SETUP = 'ip link set lo up && echo 1 > /proc/sys/net/ipv6/bindv6only && exec "$@"'


@dataclass(frozen=True)
class Listener:
    """One listening port of a started daemon, and what to ask it."""

    port: int
    path: str | None  # an HTTP path to GET; None for gRPC (a health check)


@dataclass(frozen=True)
class Started:
    """A master and a slave, each with every listener on."""

    master: Daemon
    slave: Daemon
    listeners: dict[str, Listener]


LISTENERS = ["master gRPC", "master HTTP", "master metrics", "slave gRPC", "slave metrics"]


def _start(fleet: Fleet, listen_host: str | None) -> Started:
    """A master (gRPC, HTTP, metrics) and a slave (gRPC, metrics) on ``listen_host``."""
    http, master_metrics, slave_metrics = free_port(), free_port(), free_port()
    master = fleet.master(
        "--http_port", str(http), "--metrics_port", str(master_metrics), listen_host=listen_host
    )
    slave = fleet.slave(master, "--metrics_port", str(slave_metrics), listen_host=listen_host)
    listeners = [
        Listener(master.port, None),
        Listener(http, "/api/v1/slaves"),
        Listener(master_metrics, "/metrics"),
        Listener(slave.port, None),
        Listener(slave_metrics, "/metrics"),
    ]
    return Started(master, slave, dict(zip(LISTENERS, listeners, strict=True)))


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    """Both daemons on the default listen host, shared by the module."""
    with Fleet(tmp_path_factory.mktemp("default_host")).running() as fleet:
        yield _start(fleet, None)


def _get(url: str) -> requests.Response:
    # No proxy from the environment: the request must go to this machine's loopback.
    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, timeout=10)


def _ask(listener: Listener, host: str) -> None:
    """A health check (gRPC) or a GET (HTTP) through ``host``, which must succeed."""
    if listener.path is None:
        with grpc.insecure_channel(f"{host}:{listener.port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    else:
        response = _get(f"http://{host}:{listener.port}{listener.path}")
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("host", LOOPBACKS)
@pytest.mark.parametrize("name", LISTENERS)
def test_listener_answers_on_both_loopbacks(started: Started, name: str, host: str) -> None:
    """Each listener of each daemon, on the default listen host, answers IPv4 and IPv6."""
    _ask(started.listeners[name], host)


@pytest.mark.parametrize(("host", "other"), [LOOPBACKS, LOOPBACKS[::-1]])
def test_an_explicit_loopback_is_served_alone(fleet: Fleet, host: str, other: str) -> None:
    """``--listen_host 127.0.0.1`` or ``[::1]`` serves every listener there, and HTTP there only."""
    daemons = _start(fleet, host)
    refused = []
    for name, listener in daemons.listeners.items():
        _ask(listener, host)
        if listener.path is not None:
            try:
                _get(f"http://{other}:{listener.port}{listener.path}")
            except requests.ConnectionError:
                refused.append(name)
    assert refused == ["master HTTP", "master metrics", "slave metrics"]


def test_the_http_url_the_master_logs_answers(started: Started) -> None:
    """The ``url`` of ``http_started``, which a user copies to a browser, serves the web UI."""
    url = started.master.wait_for_event("http_started")["url"]
    response = _get(url)
    assert response.status_code == 200, response.text
    assert "<html" in response.text.lower()


@pytest.mark.parametrize("kind", ["master", "slave"])
def test_the_metrics_url_each_daemon_logs_answers(started: Started, kind: str) -> None:
    """The ``url`` of ``metrics_serving`` is on loopback and serves the daemon's own metrics.

    Not the wildcard it listens on: dialling "::" or "0.0.0.0" reaches this
    machine on Linux only.
    """
    daemon = started.master if kind == "master" else started.slave
    url = daemon.wait_for_event("metrics_serving")["url"]
    host = urllib.parse.urlsplit(url).hostname
    assert host is not None and ipaddress.ip_address(host).is_loopback, url
    response = _get(url)
    assert response.status_code == 200, response.text
    assert "arko_" in response.text


def test_an_http_port_held_on_ipv4_stops_the_start(fleet: Fleet) -> None:
    """On the default host, an HTTP port another program holds on 127.0.0.1 is a start-up error.

    One ``startup_failed`` line names the port, and nothing follows it: no
    traceback of the gRPC server the master had already started.
    """
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        master = fleet.master("--http_port", str(port), listen_host=None, wait=False)
        wait_until(
            lambda: not master.alive() or master.events("master_started"),
            30,
            "the master to fail or start",
        )
    assert master.proc is not None and master.proc.returncode == 2, master.log_text()
    reasons = [event["reason"] for event in master.events("startup_failed")]
    assert len(reasons) == 1 and f"cannot serve HTTP on port {port}" in reasons[0], reasons
    assert "Traceback" not in master.log_text()


def test_the_same_where_ipv6_sockets_are_ipv6_only(tmp_path: Path) -> None:
    """With ``net.ipv6.bindv6only=1`` (the BSDs' way) every test above passes too.

    On Linux's default an IPv6 socket on "::" takes IPv4 unless told
    otherwise, which hides a listener that forgets to say so. The module runs
    again in a network namespace of its own (an unprivileged user namespace:
    only its own loopback and its own sysctl, nothing else on the machine
    changes), where that default is the other way round.
    """
    if os.environ.get(IPV6_ONLY_RUN):
        pytest.skip("this is the run inside the namespace")
    # A PID namespace too, killed with unshare: a timed-out run leaves no daemon behind.
    namespace = ["--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child"]
    unshare = ["unshare", *namespace, "sh", "-c", _IPV6_ONLY_SETUP, "sh"]
    probe = subprocess.run([*unshare, "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"no unprivileged network namespace here (unshare): {probe.stderr.strip()}")
    tests = [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider"]
    run = subprocess.run(
        [*unshare, *tests, "--basetemp", str(tmp_path / "inner")],
        capture_output=True,
        text=True,
        timeout=110,
        # The namespace reaches no PostgreSQL server: its masters keep SQLite.
        env={**os.environ, IPV6_ONLY_RUN: "1", "ARKO_TEST_MASTER_DB": "sqlite"},
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
