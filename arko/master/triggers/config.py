"""How triggers and schedules are declared in the master's ``--config`` TOML.

::

    [[trigger]]
    name = "arko-main"                # POST /hooks/arko-main
    forge = "github"                  # github | gitlab | gitea | generic
    secret_file = "/etc/arko/hook"
    events = ["push"]
    branches = ["main", "release/*"]
    method = "ci.v1.Build.Run"
    params = { commit = "${/after}" }

    [[schedule]]
    name = "nightly"
    cron = "0 3 * * *"                # or: every = "15m"
    timezone = "UTC"
    method = "ci.v1.Build.Run"

Everything that can be wrong in a declaration is found when the settings are
loaded, so a mistake stops the master at start with the trigger's or
schedule's name, never at the first delivery.
"""

from __future__ import annotations

import re
import zoneinfo
from pathlib import Path
from typing import Literal, Self

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from arko.master.triggers.pointer import parse_pointer

Forge = Literal["github", "gitlab", "gitea", "generic"]
GITHUB_API = "https://api.github.com"
# A trigger's name is the last segment of its URL, and part of a job's
# ``trigger`` ("hook:NAME"): plain characters only.
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
_EVERY = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_METHOD = re.compile(r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")


def _check_method(value: str) -> str:
    if not _METHOD.match(value):
        raise ValueError(f"method {value!r} is not Service.Method (e.g. ci.v1.Build.Run)")
    return value


def _check_params(params: dict[str, str]) -> dict[str, str]:
    """Every ``${...}`` value must be a JSON pointer (checked now, used per delivery)."""
    for key, value in params.items():
        if value.startswith("${") and value.endswith("}"):
            parse_pointer(value[2:-1], f"params.{key}")
    return params


def parse_every(text: str) -> float:
    """Seconds of an ``every`` such as ``"2s"``, ``"15m"``, ``"1h"`` or ``"1d"``.

    Raises:
        ValueError: anything else, or zero.
    """
    match = _EVERY.match(text)
    if match is None:
        raise ValueError(f"every {text!r} is not a number and a unit (s, m, h, d), e.g. '15m'")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"every {text!r} is not a positive time")
    return float(seconds)


class TriggerSpec(BaseModel):
    """One ``[[trigger]]``: a forge's webhook that starts a job."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME, description="The trigger's name: POST /hooks/NAME")
    forge: Forge = Field(description="Which forge signs the deliveries, and how")
    secret_file: Path = Field(description="File holding the webhook secret")
    events: list[str] = Field(
        default_factory=list, description="Events that start a job (empty: any)"
    )
    branches: list[str] = Field(
        default_factory=list, description="Globs on a pushed branch (empty: any branch)"
    )
    tags: list[str] = Field(
        default_factory=list, description="Globs on a pushed tag (empty: any tag)"
    )
    method: str = Field(description="The method run, as Service.Method")
    params: dict[str, str] = Field(
        default_factory=dict,
        description="The job's parameters: '${/json/pointer}' takes that value of the payload",
    )
    status_token_file: Path | None = Field(
        None, description="github: file holding a token that may post commit statuses"
    )
    api_url: str = Field(GITHUB_API, description="github: the API commit statuses go to")

    _method = field_validator("method")(_check_method)
    _params = field_validator("params")(_check_params)

    @field_validator("events", "branches", "tags")
    @classmethod
    def _no_empty_names(cls, values: list[str]) -> list[str]:
        if any(not v.strip() for v in values):
            raise ValueError("an empty name or glob matches nothing; leave it out")
        return values

    @model_validator(mode="after")
    def _statuses_on_github(self) -> Self:
        if self.status_token_file is not None and self.forge != "github":
            raise ValueError("status_token_file is for forge = 'github' only")
        if not self.api_url.startswith(("http://", "https://")):
            raise ValueError(f"api_url {self.api_url!r} is not an http(s) URL")
        return self

    @property
    def label(self) -> str:
        """The job's ``trigger`` for this trigger's jobs."""
        return f"hook:{self.name}"


class ScheduleSpec(BaseModel):
    """One ``[[schedule]]``: a job the clock starts, once a slot across the fleet."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME, description="The schedule's name")
    cron: str | None = Field(None, description="Five cron fields: minute hour day month weekday")
    every: str | None = Field(None, description="Instead of cron: '2s', '15m', '1h', '1d'")
    timezone: str = Field("UTC", description="Where cron's times are read (an IANA name)")
    method: str = Field(description="The method run, as Service.Method")
    params: dict[str, str] = Field(default_factory=dict, description="The job's parameters")

    _method = field_validator("method")(_check_method)

    @model_validator(mode="after")
    def _one_clock(self) -> Self:
        if (self.cron is None) == (self.every is None):
            raise ValueError(f"schedule {self.name!r}: give exactly one of cron or every")
        if self.cron is not None:
            fields = self.cron.split()
            if len(fields) != 5 or not croniter.is_valid(self.cron):
                raise ValueError(
                    f"schedule {self.name!r}: cron {self.cron!r} is not five valid cron fields "
                    "(minute hour day month weekday)"
                )
        if self.every is not None:
            try:
                parse_every(self.every)
            except ValueError as exc:
                raise ValueError(f"schedule {self.name!r}: {exc}") from None
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"schedule {self.name!r}: timezone {self.timezone!r} is not an IANA name "
                "such as 'UTC' or 'Europe/Paris'"
            ) from None
        return self

    @property
    def label(self) -> str:
        """The job's ``trigger`` for this schedule's jobs."""
        return f"schedule:{self.name}"


def check_unique(triggers: list[TriggerSpec], schedules: list[ScheduleSpec]) -> None:
    """Two declarations with one name would share one URL or one slot.

    Raises:
        ValueError: naming the repeated name.
    """
    for kind, names in (
        ("trigger", [t.name for t in triggers]),
        ("schedule", [s.name for s in schedules]),
    ):
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise ValueError(f"two of [[{kind}]] are named {name!r}")
            seen.add(name)
