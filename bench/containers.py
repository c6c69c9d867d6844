"""``make bench-containers``: a build step in a podman container against the same step
on the host, in the same run.

One slave (``--mode rpc --engine podman``) serves two steps with the same
command, ``python3`` printing 1,000 lines: ``host`` runs it as a process of
the slave, ``container`` in a fresh container of the base image (``--network
none``, ``podman run --rm``). The client calls ``arko.v1.Steps/Run`` straight
on the slave (no master: only the step's own cost is measured), alternating
host and container so a noisy moment on the shared machine hits both alike:

- first line: from the call until the step's first output line arrives;
- total: from the call until its exit arrives (the container removed).

Then 20 steps at once, all host or all container, repeated: the wall time
until the last ended, and each step's own total. Every call is bounded
(``--timeout``) and the repeats are few, so the whole run is.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from arko.testing import Daemon, Fleet
from arko.v1 import steps_pb2, steps_pb2_grpc
from bench.stats import Spread

IMAGE = "localhost/arko-base:latest"
KINDS = ("host", "container")
EXIT = steps_pb2.StepOutput.EXIT
# The repository's podman settings for hosts like these, unless the caller set its own.
CONF = Path(__file__).resolve().parent.parent / "containers" / "containers.conf"
_PRINT = "for i in range(1000): print('line', i)"


def _config(folder: Path, image: str) -> Path:
    """The slave's config: the same command on the host and in a container."""
    path = folder / "slave.toml"
    path.write_text(
        'service = ["arko.slave.builtin.steps:plugin"]\n'
        f'[steps.host]\nargv = ["{{python}}", "-c", "{_PRINT}"]\n'
        f'[steps.container]\nimage = "{image}"\nargv = ["{{python}}", "-c", "{_PRINT}"]\n'
    )
    return path


def run_step(stub: steps_pb2_grpc.StepsStub, step: str, timeout: float) -> tuple[float, float]:
    """Seconds from the call to the first line, and to the exit (which must be 0)."""
    began = time.perf_counter()
    first = float("nan")
    for out in stub.Run(steps_pb2.StepRequest(step=step), timeout=timeout):
        if out.stream == EXIT:
            if out.exit_code != 0:
                raise RuntimeError(f"step {step!r} exited with code {out.exit_code}")
            return first, time.perf_counter() - began
        if first != first:  # NaN: this is the first line
            first = time.perf_counter() - began
    raise RuntimeError(f"step {step!r} ended without its exit")


def one_by_one(
    stub: steps_pb2_grpc.StepsStub, rounds: int, timeout: float
) -> dict[str, dict[str, list[float]]]:
    """Alternating host and container steps, after a warm-up of each."""
    for kind in KINDS:
        run_step(stub, kind, timeout)
    raw: dict[str, dict[str, list[float]]] = {k: {"first": [], "total": []} for k in KINDS}
    for _ in range(rounds):
        for kind in KINDS:
            first, total = run_step(stub, kind, timeout)
            raw[kind]["first"].append(first)
            raw[kind]["total"].append(total)
    return raw


def at_once(
    stub: steps_pb2_grpc.StepsStub, kind: str, count: int, repeats: int, timeout: float
) -> dict[str, list[float]]:
    """``count`` steps started together, ``repeats`` times: wall times and each step's total."""
    walls: list[float] = []
    totals: list[float] = []
    with ThreadPoolExecutor(count) as pool:
        for _ in range(repeats):
            began = time.perf_counter()
            results = list(pool.map(lambda _: run_step(stub, kind, timeout), range(count)))
            walls.append(time.perf_counter() - began)
            totals.extend(total for _, total in results)
    return {"wall": walls, "per_step": totals}


def render(
    rounds: int,
    raw: dict[str, dict[str, list[float]]],
    count: int,
    burst: dict[str, dict[str, list[float]]],
) -> str:
    """The two tables, in milliseconds and seconds: median [lowest-highest]."""
    ms = {k: {m: Spread.of([x * 1000 for x in v]) for m, v in raw[k].items()} for k in KINDS}
    rows = [
        f"One step at a time: python3 printing 1,000 lines; {rounds} alternating rounds,"
        " ms, median [lowest-highest]",
        f"{'':22}{'call to first line':>28}{'call to exit':>28}",
    ]
    for kind in KINDS:
        rows.append(f"{kind:22}{ms[kind]['first'].show(1):>28}{ms[kind]['total'].show(1):>28}")
    # Round by round, so a noisy moment counts against both sides alike.
    extra = {
        m: Spread.of(
            [(c - h) * 1000 for c, h in zip(raw["container"][m], raw["host"][m], strict=True)]
        ).show(1)
        for m in ("first", "total")
    }
    rows.append(f"{'container minus host':22}{extra['first']:>28}{extra['total']:>28}")
    cores = os.cpu_count()
    repeats = len(burst["host"]["wall"])
    rows += [
        "",
        f"{count} steps at once on {cores} cores; {repeats} repeats, s, median [lowest-highest]",
        f"{'':22}{'wall, all ended':>28}{'each step, call to exit':>28}",
    ]
    for kind in KINDS:
        wall = Spread.of(burst[kind]["wall"]).show(2)
        each = Spread.of(burst[kind]["per_step"]).show(2)
        rows.append(f"{kind:22}{wall:>28}{each:>28}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Measure and print; nothing is written but the daemons' temporary folder."""
    parser = argparse.ArgumentParser(prog="python -m bench.containers", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and repeats")
    parser.add_argument("--image", default=IMAGE, help=f"image of the container step ({IMAGE})")
    parser.add_argument("--at-once", type=int, default=20, help="steps started together (20)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one call may take")
    args = parser.parse_args(argv)
    rounds, repeats = (5, 1) if args.quick else (20, 3)
    env = {"CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(CONF))}
    with (
        tempfile.TemporaryDirectory(prefix="arko-bench-containers-") as tmp,
        Fleet(Path(tmp)).running() as fleet,
    ):
        config = _config(Path(tmp), args.image)
        slave: Daemon = fleet.slave(None, "--engine", "podman", "--config", str(config), env=env)
        with grpc.insecure_channel(slave.address) as channel:
            stub = steps_pb2_grpc.StepsStub(channel)
            print(f"{rounds} rounds one by one...", file=sys.stderr)
            raw = one_by_one(stub, rounds, args.timeout)
            burst: dict[str, dict[str, list[float]]] = {}
            for kind in KINDS:
                print(f"{args.at_once} {kind} steps at once...", file=sys.stderr)
                burst[kind] = at_once(stub, kind, args.at_once, repeats, args.timeout)
    print(render(rounds, raw, args.at_once, burst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
