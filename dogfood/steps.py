"""The commands behind arko's own build steps (``dogfood/slave.toml``).

Each sub-command is one step: ``lint``, ``wheel``, ``image``, ``deploy`` and
``undeploy``. They run from the checkout's root, print what they do line by
line (the step streams it) and exit non-zero on failure. Everything they make
goes under ``$ARKO_DOGFOOD_DIR`` (default ``build/dogfood`` in the checkout):
``wheels/`` holds the last wheel, ``deploy/`` the deployed master's
virtualenv, database, log and ``master.json`` (its pid and port).

The deployed master runs in a session of its own, so it outlives the step
that started it (a step's process group is ended with the step); its output
goes to ``deploy/master.log``, not to the step's pipes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("ARKO_DOGFOOD_DIR") or ROOT / "build" / "dogfood")
WHEELS = STATE / "wheels"
DEPLOY = STATE / "deploy"
RECORD = DEPLOY / "master.json"
HEALTH_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def run(*argv: str | Path) -> None:
    """Run one command with its output on ours; exit with its code if it fails."""
    print("$", " ".join(map(str, argv)), flush=True)
    code = subprocess.run([str(a) for a in argv], cwd=ROOT, check=False).returncode
    if code != 0:
        raise SystemExit(code)


def lint(_: argparse.Namespace) -> None:
    """ruff and mypy, as ``make lint``."""
    dirs = [
        d
        for d in ("arko", "tests", "bench", "scripts", "dogfood", "examples", "setup.py")
        if (ROOT / d).exists()
    ]
    run(sys.executable, "-m", "ruff", "check", *dirs)
    run(sys.executable, "-m", "ruff", "format", "--check", *dirs)
    run(sys.executable, "-m", "mypy")


def wheel(_: argparse.Namespace) -> None:
    """Build the checkout's wheel into ``wheels/`` (replacing the previous one)."""
    shutil.rmtree(WHEELS, ignore_errors=True)
    WHEELS.mkdir(parents=True)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", WHEELS, ".")
    print(f"wheel: {_wheel()}", flush=True)


def _wheel() -> Path:
    found = sorted(WHEELS.glob("arko_ci-*.whl"))
    if not found:
        raise SystemExit(f"no arko wheel in {WHEELS}: run the wheel step first")
    return found[-1]


def image(args: argparse.Namespace) -> None:
    """``docker build`` the master's and the slave's images (the step checks ``docker info``)."""
    for kind in ("master", "slave"):
        dockerfile = ROOT / "dogfood" / f"{kind}.Dockerfile"
        run("docker", "build", "--file", dockerfile, "--tag", f"arko-{kind}:{args.tag}", ".")


def _read_record() -> dict[str, int | str] | None:
    try:
        return json.loads(RECORD.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (ended, not yet reaped by init) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def _stop(record: dict[str, int | str]) -> None:
    """Stop the recorded master (SIGTERM, then SIGKILL) so it releases its database."""
    pid = int(record["pid"])
    if not _alive(pid):
        return
    print(f"stopping the deployed master (pid {pid})", flush=True)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def _healthy(address: str, proc: subprocess.Popen[bytes]) -> bool:
    """Wait until the master's gRPC health check answers SERVING (or it exits)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + HEALTH_TIMEOUT
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.RpcError:
                time.sleep(0.2)
                continue
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    return False


def install(built: Path, venv: Path) -> None:
    """A fresh virtualenv at ``venv`` with the wheel ``built`` and its dependencies.

    What a user gets from ``pip install``: nothing of the checkout, so the
    tests of the wheel use it too.
    """
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", built)


def deploy(args: argparse.Namespace) -> None:
    """Install the last wheel into a fresh virtualenv; replace the running master with it."""
    built = _wheel()
    DEPLOY.mkdir(parents=True, exist_ok=True)
    venv = DEPLOY / f"venv-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    install(built, venv)
    old = _read_record()
    if old is not None:
        _stop(old)
    address = f"127.0.0.1:{args.port}"
    database = DEPLOY / "arko.db"
    with (DEPLOY / "master.log").open("ab") as log:
        proc = subprocess.Popen(
            [
                venv / "bin" / "arko-master",
                "--port",
                str(args.port),
                "--http_port",
                str(args.http_port),
                "--listen_host",
                "127.0.0.1",
                "--db",
                str(database),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this step's process group
        )
    RECORD.write_text(json.dumps({"pid": proc.pid, "port": args.port, "venv": str(venv)}))
    if not _healthy(address, proc):
        tail = (DEPLOY / "master.log").read_text(errors="replace")[-2000:]
        print(f"the new master on {address} is not healthy; its log ends:\n{tail}", flush=True)
        if proc.poll() is None:
            proc.kill()
        raise SystemExit(1)
    if old is not None and old.get("venv") != str(venv):
        shutil.rmtree(str(old["venv"]), ignore_errors=True)
    print(f"deployed {built.name} on {address} (pid {proc.pid}, database {database})", flush=True)
    print(f"web UI: http://127.0.0.1:{args.http_port}/", flush=True)
    print("health: SERVING", flush=True)


def undeploy(_: argparse.Namespace) -> None:
    """Stop the deployed master (its database and log stay)."""
    record = _read_record()
    if record is None:
        print("nothing deployed", flush=True)
        return
    _stop(record)
    RECORD.unlink()
    print(f"stopped the master on port {record['port']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True)
    for name, func in [("lint", lint), ("wheel", wheel), ("undeploy", undeploy)]:
        commands.add_parser(name).set_defaults(func=func)
    img = commands.add_parser("image")
    img.add_argument("--tag", default="dev")
    img.set_defaults(func=image)
    dep = commands.add_parser("deploy")
    dep.add_argument("--port", type=int, required=True)
    dep.add_argument("--http_port", type=int, required=True)
    dep.set_defaults(func=deploy)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
