"""``make dogfood``: arko lints, tests, packages and deploys this checkout through arko.

Starts a master and a slave serving the steps of ``dogfood/slave.toml`` on
free loopback ports, runs ``lint``, ``test``, ``wheel`` and ``deploy`` one
after the other through the master's ``arko.v1.Jobs/Run`` with the real
``grpcurl`` binary (printing each step's lines as they come), shows the
deployed master answering, then stops everything it started: the deployed
master (the ``undeploy`` step), the slave and the master.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from arko.testing import Fleet, free_port
from scripts.demo import grpcurl

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("lint", "test", "wheel", "deploy")


def run_step(master: str, step: str, params: dict[str, str]) -> bool:
    """Run one step through the master, print its output live; whether it succeeded."""
    body = json.dumps({"method": "arko.v1.Steps.Run", "args": {"step": step, "params": params}})
    print(f"\n== {step}\n$ grpcurl -plaintext -d '{body}' {master} arko.v1.Jobs/Run", flush=True)
    with subprocess.Popen(
        [grpcurl(), "-plaintext", "-d", body, master, "arko.v1.Jobs/Run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None, "pipes were asked for"
        state, block = "", []
        # grpcurl prints one indented JSON object per message; a top-level } ends it.
        for line in proc.stdout:
            block.append(line)
            if line.rstrip() != "}":
                continue
            event = json.loads("".join(block))
            block = []
            if event.get("kind") == "OUTPUT":
                output = json.loads(event["output"])
                if output["stream"] == "EXIT":
                    print(f"[{step}] exit code {output['exitCode']}", flush=True)
                else:
                    print(f"[{step}] {output['text']}", flush=True)
            if event.get("kind") == "FINISHED":
                state = event["job"]["state"]
        error = proc.stderr.read().strip()
    print(f"== {step}: {state or 'no answer'}" + (f" ({error})" if error else ""), flush=True)
    return state == "SUCCEEDED"


def main() -> int:
    port, http_port = free_port(), free_port()
    with (
        tempfile.TemporaryDirectory(prefix="arko-dogfood-") as tmp,
        Fleet(Path(tmp)).running() as fleet,
    ):
        master = fleet.master()
        config = ROOT / "dogfood" / "slave.toml"
        fleet.slave(master, "--config", str(config))
        print(f"master on {master.address}, dogfood slave ({config.relative_to(ROOT)}) registered")
        try:
            for step in STEPS:
                deploy = {"port": str(port), "http_port": str(http_port)}
                params = deploy if step == "deploy" else {}
                if not run_step(master.address, step, params):
                    return 1
            deployed = f"127.0.0.1:{port}"
            print(f"\n== the deployed master answers\n$ grpcurl -plaintext {deployed} list")
            done = subprocess.run(
                [grpcurl(), "-plaintext", deployed, "list"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            print(done.stdout or done.stderr, end="")
            return done.returncode
        finally:
            run_step(master.address, "undeploy", {})


if __name__ == "__main__":
    sys.exit(main())
