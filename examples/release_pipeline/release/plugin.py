"""The release pipeline as code; the plug-in is ``arko-slave --service release.plugin:plugin``.

``Pipeline.Release`` does no work itself: it runs ``Lint`` and ``UnitTests``
as two child jobs at once (``asyncio.gather`` over ``job.run``), then
``Deploy`` with the signing key as ``${secret:NAME}``, so the key goes from
the master's secrets to the deploy step and nowhere else. Each child is a
job of its own, with its record, output and slave, shown under the release
in ``arko job ID`` and on the web UI's job page. The three steps do real,
small work on a Python project folder the slaves can read.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from arko.sdk import JobContext, JobFailed
from arko.slave.plugins import Service
from release import release_pb2, release_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]
_METHOD = "release.v1.Pipeline."
# Output of a check kept in its report: the end of it says what failed.
_DETAILS = 4000


class Pipeline(release_pb2_grpc.PipelineServicer):
    """The pipeline and its three steps; any slave serving it can run any of them."""

    async def Release(
        self, request: release_pb2.ReleaseRequest, context: Context
    ) -> AsyncIterator[release_pb2.Progress]:
        job = JobContext.of(context)
        source = {"source": request.source}
        yield _say(f"release {request.version} of {request.source} (job {job.id})")
        try:
            lint, tests = await asyncio.gather(
                job.run(_METHOD + "Lint", params=source, labels=dict(request.lint_labels)),
                job.run(_METHOD + "UnitTests", params=source, labels=dict(request.test_labels)),
            )
            yield _say(f"lint passed on {lint.slave} (job {lint.id})")
            yield _say(f"unit tests passed on {tests.slave} (job {tests.id})")
            deploy = await job.run(
                _METHOD + "Deploy",
                params={
                    "source": request.source,
                    "version": request.version,
                    "target": request.target,
                    "signing_key": "${secret:" + (request.key_secret or "DEPLOY_KEY") + "}",
                },
            )
        except JobFailed as failed:
            child = failed.job
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{child.method} failed (job {child.id}): {child.error}",
            )
        yield _say(f"deployed on {deploy.slave} (job {deploy.id}): {deploy.result}")

    async def Lint(
        self, request: release_pb2.CheckRequest, context: Context
    ) -> release_pb2.CheckReport:
        root = await _source(request.source, context)
        count, problems = await asyncio.to_thread(_compile_all, root)
        if problems:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "; ".join(problems)[:_DETAILS])
        return release_pb2.CheckReport(count=count, details=f"{count} files compile")

    async def UnitTests(
        self, request: release_pb2.CheckRequest, context: Context
    ) -> release_pb2.CheckReport:
        root = await _source(request.source, context)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "unittest",
            "discover",
            "-s",
            str(root),
            "-t",
            str(root),
            cwd=root,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await proc.communicate()
        except asyncio.CancelledError:  # the job was cancelled: so are its tests
            proc.kill()
            await proc.wait()
            raise
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, text[-_DETAILS:])
        ran = next((line for line in text.splitlines() if line.startswith("Ran ")), "Ran 0 tests")
        return release_pb2.CheckReport(count=int(ran.split()[1]), details=text[-_DETAILS:])

    async def Deploy(
        self, request: release_pb2.DeployRequest, context: Context
    ) -> release_pb2.DeployReport:
        root = await _source(request.source, context)
        if not request.version or "/" in request.version or request.version.startswith("."):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "version must be a plain name")
        if len(request.signing_key) < 16:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "signing_key is missing or shorter than 16 characters: "
                "set it with `arko secrets set DEPLOY_KEY --methods 'release.v1.Pipeline.Deploy'`",
            )
        dest = Path(request.target) / request.version
        try:
            signature = await asyncio.to_thread(_ship, root, dest, request.signing_key)
        except FileExistsError:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, f"{dest} exists already")
        return release_pb2.DeployReport(path=str(dest), signature=signature)


def _compile_all(root: Path) -> tuple[int, list[str]]:
    """How many .py files there are under ``root``, and those that do not compile."""
    files = sorted(root.rglob("*.py"))
    problems = []
    for path in files:
        try:
            compile(path.read_bytes(), str(path), "exec")
        except (SyntaxError, ValueError) as exc:
            problems.append(f"{path.relative_to(root)}: {exc}")
    return len(files), problems


def _ship(root: Path, dest: Path, key: str) -> str:
    """Copy ``root`` to ``dest`` with a manifest of SHA-256 sums; its HMAC under ``key``."""
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns("__pycache__"))
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(dest)}"
        for p in sorted(dest.rglob("*"))
        if p.is_file()
    ]
    manifest = "\n".join(lines) + "\n"
    signature = hmac.new(key.encode(), manifest.encode(), "sha256").hexdigest()
    (dest / "MANIFEST").write_text(manifest)
    (dest / "MANIFEST.sig").write_text(signature + "\n")
    return signature


def _say(text: str) -> release_pb2.Progress:
    return release_pb2.Progress(text=text)


async def _source(folder: str, context: Context) -> Path:
    """The project folder a step works on; INVALID_ARGUMENT when there is none."""
    root = Path(folder)
    if not folder or not await asyncio.to_thread(root.is_dir):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"source {folder!r} is not a folder")
    return root


def plugin(settings: Any) -> list[Service]:
    """What the slave serves: called once at start with the slave's settings."""
    return [
        Service.of(
            release_pb2.DESCRIPTOR,
            "Pipeline",
            Pipeline(),
            release_pb2_grpc.add_PipelineServicer_to_server,
        )
    ]
