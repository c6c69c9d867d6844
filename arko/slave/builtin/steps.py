"""The built-in build-step runner: ``arko.v1.Steps``, served with
``--service arko.slave.builtin.steps:plugin``.

Steps are declared in the slave's config file (:mod:`arko.slave.builtin.stepspec`);
a caller names one and passes declared parameters, never a command line. A
step runs in a session of its own (``start_new_session``), so its whole
process group (the command and everything it spawned) can be signalled at
once: when the call is cancelled, when the step outlives its timeout, and
when its command exits while children it left behind still run. The group
gets SIGTERM, then SIGKILL after the step's ``kill_grace``.

A step that names an image runs in a container instead (``--engine podman``):
the process the slave starts is then ``podman run``, and stopping the step
also removes its container (:mod:`arko.slave.builtin.runners` is the seam,
:mod:`arko.slave.builtin.podman` the engine).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import structlog

from arko.common.errors import ArkoError, InvalidArgument, StartupError
from arko.common.redact import REDACTED, is_secret_name
from arko.sdk import JobContext, JobError, NotAJob
from arko.slave.builtin.podman import PodmanRunner
from arko.slave.builtin.runners import HostRunner, Launch, NotRunnable, Runner, kill, track
from arko.slave.builtin.stepspec import PipelineSpec, StepSpec
from arko.slave.plugins import Service
from arko.v1 import jobs_pb2, steps_pb2, steps_pb2_grpc

if TYPE_CHECKING:
    from arko.slave.settings import SlaveSettings

log = structlog.get_logger("arko.slave.steps")

STDOUT = steps_pb2.StepOutput.STDOUT
STDERR = steps_pb2.StepOutput.STDERR
EXIT = steps_pb2.StepOutput.EXIT
# Longest piece of a line read at once; a longer line is sent in pieces.
LINE_LIMIT = 1 << 20
# Lines read ahead of the caller: past this the pipes fill and the step waits.
READ_AHEAD = 256
# Variables of the slave a step does not inherit: its own settings (the join token).
_PRIVATE_ENV_PREFIX = "ARKO_SLAVE_"
# The method a pipeline's steps run as, each a child job.
_RUN = "arko.v1.Steps.Run"


class StepRun:
    """One running step: its process group, its output lines and its exit.

    The process is watched by a task of its own, so stopping it does not
    depend on the caller's generator being resumed (a cancelled gRPC call may
    close it without awaiting anything).
    """

    def __init__(self, name: str, spec: StepSpec) -> None:
        self.name = name
        self.spec = spec
        self.exit_code: int | None = None
        self.timed_out = False
        self._queue: asyncio.Queue[tuple[int, str] | None] = asyncio.Queue(READ_AHEAD)
        self._stop = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._launch: Launch | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._watcher: asyncio.Task[None] | None = None

    async def start(self, launch: Launch) -> None:
        """Start the launch's program in a new session.

        Raises:
            NotRunnable: the program or the working folder does not exist.
        """
        try:
            proc = await asyncio.create_subprocess_exec(
                *launch.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=launch.cwd,
                env=dict(launch.env),
                start_new_session=True,
                limit=LINE_LIMIT,
            )
        except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
            raise NotRunnable(f"step {self.name!r} cannot start: {exc}") from None
        self._proc, self._launch = proc, launch
        track(proc.pid, live=True)
        assert proc.stdout is not None and proc.stderr is not None, "pipes were asked for"
        self._readers = [
            asyncio.create_task(self._read(proc.stdout, STDOUT)),
            asyncio.create_task(self._read(proc.stderr, STDERR)),
        ]
        self._watcher = asyncio.create_task(self._watch(proc), name=f"step-{self.name}")

    @property
    def pid(self) -> int:
        """The step's process id, which is also its process group id."""
        assert self._proc is not None, "not started"
        return self._proc.pid

    async def _read(self, stream: asyncio.StreamReader, kind: int) -> None:
        while True:
            try:
                raw = await stream.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:  # EOF
                raw = exc.partial
            except asyncio.LimitOverrunError as exc:  # a very long line: send a piece
                raw = await stream.readexactly(exc.consumed)
            if not raw:
                break
            await self._queue.put((kind, raw.rstrip(b"\r\n").decode(errors="replace")))
        await self._queue.put(None)

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        """Wait for the command, its timeout or a stop; then end the rest of its group."""
        stopped = asyncio.create_task(self._stop.wait())
        exited = asyncio.create_task(proc.wait())
        try:
            done, _ = await asyncio.wait(
                {stopped, exited}, timeout=self.spec.timeout, return_when=asyncio.FIRST_COMPLETED
            )
            self.timed_out = not done
        finally:
            stopped.cancel()
        assert self._launch is not None, "started"
        await self._launch.end(proc.pid, self.spec.kill_grace, early=not exited.done())
        self.exit_code = await exited
        track(proc.pid, live=False)
        if self._stop.is_set():  # nobody reads any more: do not wait on a full queue
            for reader in self._readers:
                reader.cancel()

    def stop(self) -> None:
        """End the step now (the caller left); the group is signalled at once."""
        if self._proc is not None and self.exit_code is None and not self._stop.is_set():
            self._stop.set()
            kill(self._proc.pid, signal.SIGTERM)

    async def lines(self) -> AsyncIterator[tuple[int, str]]:
        """Output lines in the order they were read, until both pipes are closed."""
        open_pipes = len(self._readers)
        while open_pipes:
            item = await self._queue.get()
            if item is None:
                open_pipes -= 1
                continue
            yield item
        assert self._watcher is not None, "not started"
        await self._watcher


class StepsService(steps_pb2_grpc.StepsServicer):
    """Runs the steps of one slave's configuration.

    ``containers`` runs the steps that name an image; without it (``--engine
    inprocess``) the configuration must declare none, which :func:`plugin`
    checks at start-up.
    """

    def __init__(
        self,
        steps: Mapping[str, StepSpec],
        base: Path,
        pipelines: Mapping[str, PipelineSpec] | None = None,
        containers: Runner | None = None,
    ) -> None:
        self._steps = dict(steps)
        self._base = base
        self._pipelines = dict(pipelines or {})
        self._host: Runner = HostRunner()
        self._containers = containers

    def _spec(self, name: str) -> StepSpec:
        spec = self._steps.get(name)
        if spec is None:
            declared = ", ".join(sorted(self._steps))
            raise InvalidArgument(f"no step named {name!r}; declared steps: {declared}")
        return spec

    def command(self, name: str, given: Mapping[str, str]) -> list[str]:
        """The argv of step ``name`` with the caller's parameters.

        Raises:
            InvalidArgument: an undeclared step or parameter, a value the
                parameter does not allow, a required one missing.
        """
        spec = self._spec(name)
        unknown = sorted(set(given) - set(spec.params))
        if unknown:
            declared = ", ".join(sorted(spec.params)) or "none"
            raise InvalidArgument(
                f"step {name!r} has no parameter {', '.join(map(repr, unknown))}; "
                f"declared: {declared}"
            )
        values: dict[str, str] = {}
        for pname, param in spec.params.items():
            value = given.get(pname, param.default)
            if value is None:
                raise InvalidArgument(f"step {name!r} needs the parameter {pname!r}")
            if not param.allows(value):
                shown = REDACTED if is_secret_name(pname) else repr(value)
                raise InvalidArgument(
                    f"parameter {pname!r} of step {name!r}: {shown} is not {param.rule()}"
                )
            values[pname] = value
        return spec.command(values, self._runner(name, spec).python)

    def _runner(self, name: str, spec: StepSpec) -> Runner:
        if spec.image is None:
            return self._host
        if self._containers is None:  # plugin() refuses such a configuration
            raise NotRunnable(f"step {name!r} names an image: start the slave with --engine podman")
        return self._containers

    def _cwd(self, spec: StepSpec) -> Path:
        """The step's folder: its workdir (an image's) or cwd, relative to the config's."""
        folder = spec.workdir or spec.cwd
        return self._base / folder if folder is not None else self._base

    def _env(self, spec: StepSpec) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_ENV_PREFIX)}
        return {**env, **spec.env}

    async def _check_needs(self, name: str, spec: StepSpec) -> None:
        """Run the step's ``needs`` command; refuse the step at once when it fails."""
        if spec.needs is None:
            return
        need = StepSpec(argv=spec.needs.argv, cwd=None, timeout=spec.needs.timeout, kill_grace=1)
        run = StepRun(f"{name} (needs)", need)
        command = need.command({}, self._host.python)
        launch = self._host.launch(name, need, command, self._cwd(spec), self._env(spec))
        try:
            await run.start(launch)
            async for _ in run.lines():
                pass
        except NotRunnable:  # the checking program itself is missing
            pass
        finally:
            run.stop()  # the caller left while it ran
        if run.exit_code != 0 or run.timed_out:
            raise NotRunnable(
                f"step {name!r} cannot run here: {spec.needs.message} "
                f"({' '.join(spec.needs.argv)} failed)"
            )

    async def Run(
        self, request: steps_pb2.StepRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[steps_pb2.StepOutput]:
        name = request.step
        try:
            argv = self.command(name, request.params)
            spec = self._steps[name]
            await self._check_needs(name, spec)
            launch = self._runner(name, spec).launch(
                name, spec, argv, self._cwd(spec), self._env(spec)
            )
            run = StepRun(name, spec)
            await run.start(launch)
        except ArkoError as exc:
            log.info("step_refused", step=name, code=exc.code.name, reason=exc.message)
            await context.abort(exc.code, exc.message)
        log.info("step_started", step=name, pid=run.pid, **launch.facts)
        number = 0
        try:
            async for kind, text in run.lines():
                number += 1
                yield steps_pb2.StepOutput(stream=kind, text=text, number=number)  # type: ignore[arg-type]
        finally:
            run.stop()  # a no-op once it ended; else the caller left: kill the group
        code = run.exit_code
        assert code is not None, "lines() ends after the process"
        log.info("step_ended", step=name, exit_code=code, lines=number, timed_out=run.timed_out)
        yield steps_pb2.StepOutput(stream=EXIT, exit_code=code, number=number)
        if run.timed_out:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"step {name!r} ran past its timeout of {spec.timeout:g}s and was killed",
            )
        if code != 0:
            await context.abort(grpc.StatusCode.UNKNOWN, f"step {name!r} exited with code {code}")

    def plan(self, name: str, given: Mapping[str, str]) -> list[dict[str, dict[str, str]]]:
        """Each stage of pipeline ``name``: its steps with the parameters each declares.

        Raises:
            InvalidArgument: an undeclared pipeline, or a parameter none of its
                steps declares.
        """
        spec = self._pipelines.get(name)
        if spec is None:
            declared = ", ".join(sorted(self._pipelines)) or "none"
            raise InvalidArgument(f"no pipeline named {name!r}; declared pipelines: {declared}")
        declared_params = {p for step in spec.steps() for p in self._steps[step].params}
        unknown = sorted(set(given) - declared_params)
        if unknown:
            raise InvalidArgument(
                f"no step of pipeline {name!r} has a parameter {', '.join(map(repr, unknown))}"
            )
        return [
            {
                step: {k: v for k, v in given.items() if k in self._steps[step].params}
                for step in stage
            }
            for stage in spec.stages
        ]

    async def Pipeline(
        self, request: steps_pb2.PipelineRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[steps_pb2.PipelineProgress]:
        name = request.pipeline
        try:
            stages = self.plan(name, request.params)
            job = JobContext.of(context)
        except ArkoError as exc:
            await context.abort(exc.code, exc.message)
        except NotAJob as exc:
            await context.abort(exc.code, exc.message)
        log.info("pipeline_started", pipeline=name, job_id=job.id)
        for stage in stages:
            try:
                started = {
                    step: await job.start(_RUN, args={"step": step, "params": params})
                    for step, params in stage.items()
                }
            except JobError as exc:  # the master refused a step: no record of it
                await context.abort(exc.code, f"pipeline {name!r}: {exc.message}")
            for step, child in started.items():
                yield steps_pb2.PipelineProgress(step=step, job_id=child, state=jobs_pb2.QUEUED)
            steps = {child: step for step, child in started.items()}
            # In the order they end, so a failure is told (and stops the rest) at once.
            waits = [asyncio.ensure_future(job.wait(child)) for child in started.values()]
            failed: jobs_pb2.Job | None = None
            try:
                for done in asyncio.as_completed(waits):
                    try:
                        record = await done
                    except JobError as exc:
                        await context.abort(exc.code, f"pipeline {name!r}: {exc.message}")
                    yield steps_pb2.PipelineProgress(
                        step=steps[record.id],
                        job_id=record.id,
                        state=record.state,
                        slave=record.slave,
                        error=record.error,
                    )
                    if record.state != jobs_pb2.SUCCEEDED:
                        failed = record
                        break
            finally:
                for waiting in waits:
                    waiting.cancel()
            if failed is not None:
                step = steps[failed.id]
                log.info("pipeline_failed", pipeline=name, step=step, job_id=failed.id)
                # Ending this job cancels the steps still running (the master's rule).
                await context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"step {step!r} of pipeline {name!r} ended "
                    f"{jobs_pb2.JobState.Name(failed.state)} (job {failed.id}): {failed.error}",
                )
        log.info("pipeline_succeeded", pipeline=name, job_id=job.id)

    async def List(
        self, request: steps_pb2.ListStepsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> steps_pb2.ListStepsResponse:
        reply = steps_pb2.ListStepsResponse()
        for name, spec in sorted(self._steps.items()):
            info = reply.steps.add(
                name=name, description=spec.description, timeout_seconds=spec.timeout
            )
            for pname, param in spec.params.items():
                info.params.add(
                    name=pname,
                    pattern=param.pattern or "",
                    choices=param.choices or [],
                    default=param.default or "",
                    required=param.default is None,
                    description=param.description,
                )
        return reply


def plugin(settings: SlaveSettings) -> list[Service]:
    """Plug-in entry: ``--service arko.slave.builtin.steps:plugin``.

    Relative working folders are taken from the config file's folder, so a
    config shipped in a repository works from wherever the slave starts.

    Raises:
        StartupError: the configuration declares no step, a pipeline names an
            undeclared one, or steps name an image while the slave has no
            container engine (or ask for more CPUs than the host has).
    """
    if not settings.steps:
        raise StartupError(
            "arko.v1.Steps has no step to run: declare [steps.NAME] tables in the --config file"
        )
    for name, pipeline in settings.pipelines.items():
        missing = [step for step in pipeline.steps() if step not in settings.steps]
        if missing:
            raise StartupError(
                f"pipeline {name!r} names undeclared steps: {', '.join(missing)} "
                "(declare them as [steps.NAME] tables)"
            )
    base = settings.config.resolve().parent if settings.config is not None else Path.cwd()
    service = StepsService(settings.steps, base, settings.pipelines, _containers(settings))
    return [
        Service.of(
            steps_pb2.DESCRIPTOR, "Steps", service, steps_pb2_grpc.add_StepsServicer_to_server
        )
    ]


def _containers(settings: SlaveSettings) -> Runner | None:
    """The runner of the steps that name an image, None when none does.

    Raises:
        StartupError: such a step on a slave without ``--engine podman``, or
            one asking for more CPUs than this host has.
    """
    images = {name: spec for name, spec in settings.steps.items() if spec.image is not None}
    if not images:
        return None
    if settings.engine != "podman":
        name, spec = next(iter(sorted(images.items())))
        raise StartupError(
            f"step {name!r} names the image {spec.image}, but --engine {settings.engine} runs "
            "steps on the host: start the slave with --engine podman"
        )
    cores = os.cpu_count() or 1
    for name, spec in sorted(images.items()):
        if spec.cpus is not None and spec.cpus > cores:
            raise StartupError(f"step {name!r} asks for {spec.cpus:g} CPUs; this host has {cores}")
    return PodmanRunner.find()
