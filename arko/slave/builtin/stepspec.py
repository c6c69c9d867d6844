"""How build steps are declared in a slave's configuration file.

A ``[steps.NAME]`` table of the ``--config`` TOML file declares one step of the
built-in ``arko.v1.Steps`` service (:mod:`arko.slave.builtin.steps`)::

    [steps.greet]
    description = "Says hello"
    argv = ["{python}", "-c", "print('hello', '{who}')"]
    cwd = ".."                      # relative to the config file's folder
    env = { LANG = "C.UTF-8" }      # added to the slave's environment
    timeout = 60                    # seconds, then the process group is killed
    params.who = { pattern = "[a-z]{1,20}", default = "world" }

A step that names an ``image`` runs in a fresh container of it (the slave's
``--engine podman``, :mod:`arko.slave.builtin.podman`); ``{python}`` then means
the image's ``python3``::

    [steps.unit]
    image = "localhost/arko-base:latest"
    argv = ["{python}", "-m", "pytest", "-q"]
    workdir = ".."                  # bind-mounted at /work, the step's cwd
    network = "none"                # none (default) | host | bridge
    memory = "2g"                   # a hard limit: no swap past it
    cpus = 1

A ``[pipelines.NAME]`` table runs declared steps as child jobs of one job::

    [pipelines.release]
    stages = [["lint", "test"], ["wheel"]]   # lint and test at once, then wheel

The command line is an argv list, never a shell line: a parameter's value
becomes (part of) one argument and cannot add options or commands. Every
placeholder must be a declared parameter (or ``{python}``, the slave's own
interpreter), and every parameter must say which values it takes, so a
mistake is a startup error rather than a surprise in a build.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Placeholders every step may use besides its parameters.
RESERVED = frozenset({"python"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A memory size as podman takes it, with its unit always written: "2048" alone
# would be bytes, a mistake nobody means.
_MEMORY = re.compile(r"([1-9][0-9]*)([bkmg])", re.IGNORECASE)
_UNIT = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
# Podman (runc) refuses a smaller limit; saying so at start-up beats a failed build.
MIN_MEMORY = 6 << 20
# Settings that only mean something in a container.
_CONTAINER_ONLY = ("workdir", "network", "memory", "cpus")


def memory_bytes(size: str) -> int:
    """Bytes of a size such as ``512m`` or ``2g`` (units b, k, m, g; 1k = 1024).

    Raises:
        ValueError: not a whole number with one of those units, or below 6m.
    """
    found = _MEMORY.fullmatch(size)
    if found is None:
        raise ValueError(
            f"memory {size!r} is not a size such as 512m or 2g "
            "(a whole number and a unit: b, k, m or g)"
        )
    count = int(found[1]) * _UNIT[found[2].lower()]
    if count < MIN_MEMORY:
        raise ValueError(f"memory {size!r} is below podman's least, 6m")
    return count


class ParamSpec(BaseModel):
    """One parameter a caller may pass: its allowed values and default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str | None = Field(None, description="Regular expression the whole value must match")
    choices: list[str] | None = Field(None, description="The only values allowed")
    default: str | None = Field(None, description="Value when the caller gives none")
    description: str = ""

    @model_validator(mode="after")
    def _one_rule(self) -> Self:
        if (self.pattern is None) == (self.choices is None):
            raise ValueError("give exactly one of pattern or choices")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern {self.pattern!r} is not a regex: {exc}") from None
        if self.choices is not None and not self.choices:
            raise ValueError("choices is empty")
        if self.default is not None and not self.allows(self.default):
            raise ValueError(f"default {self.default!r} is not an allowed value")
        return self

    def allows(self, value: str) -> bool:
        """Whether ``value`` is one this parameter takes."""
        if self.choices is not None:
            return value in self.choices
        assert self.pattern is not None, "checked at load"
        return re.fullmatch(self.pattern, value) is not None

    def rule(self) -> str:
        """The rule in words, for error messages."""
        if self.choices is not None:
            return f"one of {', '.join(self.choices)}"
        return f"a match of the pattern {self.pattern}"


class NeedSpec(BaseModel):
    """A command that must succeed before the step runs (e.g. ``docker info``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    argv: list[str] = Field(min_length=1)
    message: str = Field(description="Why the step cannot run when the command fails")
    timeout: float = Field(20.0, gt=0)


class StepSpec(BaseModel):
    """One named step: a command line with declared parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    argv: list[str] = Field(min_length=1, description="The command; {name} is a parameter")
    description: str = ""
    cwd: Path | None = Field(None, description="Working folder, relative to the config file's")
    env: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(600.0, gt=0, description="Seconds before the process group is killed")
    kill_grace: float = Field(
        5.0, ge=0, description="Seconds between SIGTERM and SIGKILL when the step is stopped"
    )
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    needs: NeedSpec | None = None
    image: str | None = Field(
        default=None,
        min_length=1,
        pattern=r"^\S+$",
        description="Image to run the step in, a fresh container each time (the slave's "
        "--engine podman); absent: on the slave's host",
    )
    workdir: Path | None = Field(
        default=None,
        description="Folder bind-mounted at /work, the container's cwd; relative to the "
        "config file's (default: cwd)",
    )
    network: Literal["none", "host", "bridge"] = Field(
        default="none", description="The container's network: none (default), host or bridge"
    )
    memory: str | None = Field(default=None, description="The container's memory limit, e.g. 2g")
    cpus: float | None = Field(
        default=None, gt=0, description="CPUs the container may use, e.g. 1.5"
    )

    @field_validator("memory")
    @classmethod
    def _memory_is_a_size(cls, value: str | None) -> str | None:
        if value is not None:
            memory_bytes(value)  # raises ValueError saying what is wrong
        return value

    @model_validator(mode="after")
    def _container_settings_need_an_image(self) -> Self:
        if self.image is None:
            given = [name for name in _CONTAINER_ONLY if name in self.model_fields_set]
            if given:
                raise ValueError(
                    f"a step without an image has no container to give {', '.join(given)}"
                )
        elif self.cwd is not None and self.workdir is not None:
            raise ValueError("give workdir or cwd, not both: in a container workdir is the cwd")
        return self

    @model_validator(mode="after")
    def _placeholders_declared(self) -> Self:
        for name in self.params:
            if not _NAME.fullmatch(name) or name in RESERVED:
                raise ValueError(f"parameter name {name!r} is not an identifier or is reserved")
        for arg in [*self.argv, *(self.needs.argv if self.needs else [])]:
            for field in placeholders(arg):
                if field not in self.params and field not in RESERVED:
                    raise ValueError(f"argv placeholder {{{field}}} is not a declared parameter")
        return self

    def command(self, values: dict[str, str], python: str) -> list[str]:
        """The argv with every placeholder replaced (``values`` already checked)."""
        fields = {**values, "python": python}
        return [arg.format_map(fields) for arg in self.argv]


class PipelineSpec(BaseModel):
    """A named pipeline of declared steps: stages one after the other, the steps
    of a stage at once, each as a child job (``arko.v1.Steps/Pipeline``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    stages: list[list[str]] = Field(
        min_length=1, description='Step names, e.g. [["lint", "test"], ["wheel"]]'
    )

    @model_validator(mode="after")
    def _no_empty_stage(self) -> Self:
        if any(not stage for stage in self.stages):
            raise ValueError("a stage names no step")
        return self

    def steps(self) -> list[str]:
        """Every step the pipeline runs, in order."""
        return [step for stage in self.stages for step in stage]


def placeholders(arg: str) -> list[str]:
    """The ``{name}`` fields of one argv element (``{{`` is a literal brace).

    Raises:
        ValueError: a field with a conversion, format spec or index (only
            plain names are substituted).
    """
    found = []
    for _, field, spec, conversion in string.Formatter().parse(arg):
        if field is None:
            continue
        if spec or conversion or not _NAME.fullmatch(field):
            raise ValueError(f"argv element {arg!r}: only plain {{name}} placeholders are allowed")
        found.append(field)
    return found
