"""The commands behind arko's own build steps (``dogfood/slave.toml``).

Each sub-command is one step: ``lint``, ``wheel``, ``image``, ``deploy`` and
``undeploy``. They run from the checkout's root, print what they do line by
line (the step streams it) and exit non-zero on failure. Everything they make
goes under ``$ARKO_DOGFOOD_DIR`` (default ``build/dogfood`` in the checkout):
``wheels/`` holds the last wheel, ``image/wheels/`` it and the wheels of its
dependencies (the images' build context), ``deploy/`` the deployed master's
virtualenv, database, log and ``master.json`` (its pid or container, and port).

The deployed master runs in a session of its own, so it outlives the step
that started it (a step's process group is ended with the step); its output
goes to ``deploy/master.log``, not to the step's pipes. Deployed from the
image instead, it is a podman container named after ``$ARKO_DOGFOOD_DIR``
(so two checkouts' deploys do not meet), its database in ``deploy/data/``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("ARKO_DOGFOOD_DIR") or ROOT / "build" / "dogfood")
WHEELS = STATE / "wheels"
DEPLOY = STATE / "deploy"
RECORD = DEPLOY / "master.json"
CONTEXT = STATE / "image"
CONTAINERFILE = ROOT / "dogfood" / "Containerfile"
# The extra the images install with arko: a containerised master is the one
# most likely to keep its jobs in PostgreSQL.
IMAGE_REQUIREMENT = "arko-ci[postgres]"
CONTAINER = "arko-dogfood-" + hashlib.sha256(str(STATE.resolve()).encode()).hexdigest()[:12]
MASTER_PORT = 10001  # the master's default port, where its image listens
HTTP_PORT = 10003  # the port the deployed container's HTTP API and web UI listen on inside
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


def _podman(*argv: str) -> subprocess.CompletedProcess[str]:
    """One podman command, its output captured (for the caller to show or test)."""
    return subprocess.run(["podman", *argv], capture_output=True, text=True, check=False)


def image_name(kind: str, tag: str) -> str:
    """The name the image step gives the ``kind`` (master or slave) image."""
    return f"localhost/arko-{kind}:{tag}"


def image(args: argparse.Namespace) -> None:
    """Build ``localhost/arko-master`` and ``localhost/arko-slave`` with podman, offline.

    The build context is the last wheel (the wheel step's; built here when
    there is none) with the wheels of all its dependencies, fetched on the
    host: inside the build there is no network (``--network=none``). The
    step's ``needs`` has checked podman and the base image first.
    """
    if not sorted(WHEELS.glob("arko_ci-*.whl")):
        wheel(args)
    built = _wheel()
    print(f"image: from {built}", flush=True)
    wheels = CONTEXT / "wheels"
    shutil.rmtree(CONTEXT, ignore_errors=True)
    wheels.mkdir(parents=True)
    shutil.copy2(built, wheels)
    requirement = IMAGE_REQUIREMENT.replace("arko-ci", str(wheels / built.name), 1)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", wheels, requirement)
    digests = [
        f"{hashlib.sha256(w.read_bytes()).hexdigest()}  {w.name}\n"
        for w in sorted(wheels.glob("*.whl"))
    ]
    (CONTEXT / "wheels.sha256").write_text("".join(digests))
    for kind in ("master", "slave"):
        name = image_name(kind, args.tag)
        before = _image_id(name)
        started = time.monotonic()
        run(
            "podman", "build", "--network=none", "--target", kind,
            "--tag", name, "--file", CONTAINERFILE, CONTEXT,
        )  # fmt: skip
        print(f"built {name} in {time.monotonic() - started:.1f} s", flush=True)
        if before and before != _image_id(name):
            # The image this tag named before, untagged now: removed unless a container uses it.
            _podman("rmi", before)


def _image_id(name: str) -> str:
    """The id of the image ``name``, "" when there is none."""
    return _podman("image", "inspect", "--format", "{{.Id}}", name).stdout.strip()


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
    """Stop the recorded master (SIGTERM, then SIGKILL) so it releases its database;
    a container is removed too."""
    if "container" in record:
        print(f"stopping the deployed container {record['container']}", flush=True)
        _podman(
            "rm", "--force", "--ignore", "--time", str(int(STOP_TIMEOUT)), str(record["container"])
        )
        return
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


def _healthy(address: str, running: Callable[[], bool]) -> bool:
    """Wait until the master's gRPC health check answers SERVING (or it is no longer
    ``running``)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + HEALTH_TIMEOUT
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline and running():
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
    """Replace the running master with one of the last wheel: from the image or a fresh
    virtualenv (``--source``)."""
    if args.source == "image":
        deploy_image(args)
        return
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
    if not _healthy(address, lambda: proc.poll() is None):
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


def _running(container: str) -> bool:
    """Whether ``container`` runs: one that exited will never answer the health check."""
    return (
        _podman("container", "inspect", "--format", "{{.State.Running}}", container).stdout.strip()
        == "true"
    )


def deploy_image(args: argparse.Namespace) -> None:
    """Replace the running master with a container of the master's image (``--tag``),
    its gRPC and HTTP ports published on loopback, its database in ``deploy/data``."""
    name = image_name("master", args.tag)
    old = _read_record()
    if old is not None:
        _stop(old)
    _podman("rm", "--force", "--ignore", CONTAINER)  # one left by a deploy that failed
    data = DEPLOY / "data"
    data.mkdir(parents=True, exist_ok=True)
    run(
        "podman", "run", "--detach", "--name", CONTAINER,
        "--publish", f"127.0.0.1:{args.port}:{MASTER_PORT}",
        "--publish", f"127.0.0.1:{args.http_port}:{HTTP_PORT}",
        "--volume", f"{data}:/var/lib/arko:U",  # :U: owned by the image's user
        name, "--http_port", str(HTTP_PORT),
    )  # fmt: skip
    RECORD.write_text(json.dumps({"container": CONTAINER, "port": args.port, "image": name}))
    address = f"127.0.0.1:{args.port}"
    if not _healthy(address, lambda: _running(CONTAINER)):
        logs = _podman("logs", "--tail", "40", CONTAINER)
        print(f"the container {CONTAINER} on {address} is not healthy; its log ends:", flush=True)
        print(logs.stdout + logs.stderr, flush=True)
        _stop({"container": CONTAINER})
        RECORD.unlink()
        raise SystemExit(1)
    if old is not None and "venv" in old:  # the virtualenv of a wheel deploy it replaced
        shutil.rmtree(str(old["venv"]), ignore_errors=True)
    print(
        f"deployed {name} as the container {CONTAINER} on {address} (database {data})", flush=True
    )
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
    dep.add_argument("--source", choices=["wheel", "image"], default="wheel")
    dep.add_argument("--tag", default="dev", help="the master image's tag (--source image)")
    dep.set_defaults(func=deploy)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
