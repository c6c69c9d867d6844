"""Settings of ``arko-slave``: flags, ``ARKO_SLAVE_*`` variables, a TOML file."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import CliSuppress, SettingsConfigDict

from arko.common.settings import CommaList, DaemonSettings, read_secret
from arko.slave.builtin.stepspec import PipelineSpec, StepSpec
from arko.slave.capacity import parse_labels

DEFAULT_SERVICE = "arko.slave.mypipeline:plugin"

# Shown at the top of ``arko-slave --help``: what --capacity and --label do
# with the master's queue, and where a method's job policy is declared.
HELP_TEXT = """\
Serve pipeline services (gRPC) and register them with an arko master.

Capacity and labels: with --capacity N the slave runs at most N pipeline calls
at once and refuses more before they start; the master, which reads the
slave's capacity, labels and load from arko.v1.Slave/Status when it pings,
sends such jobs to another slave or queues them (FIFO, up to its
--queue_timeout). --label key=value lets callers pick slaves: Jobs/Run's
"labels" selector, and a method's required_labels.

Job policy: declare it in your proto, next to the method; the master reads it
through reflection:

  import "arko/v1/options.proto";
  service Deploy {
    rpc Production(DeployRequest) returns (stream DeployLine) {
      option (arko.v1.job) = {
        timeout_seconds: 900  max_concurrency: 1  retries: 3
        required_labels: { key: "zone" value: "eu" }
      };
    }
  }
"""


class SlaveSettings(DaemonSettings):
    """Everything ``arko-slave`` can be told. Flag names keep the original's spelling."""

    model_config = SettingsConfigDict(
        env_prefix="ARKO_SLAVE_",
        cli_prog_name="arko-slave",
        cli_implicit_flags=True,
        cli_kebab_case=False,
        extra="forbid",
        json_schema_extra={"description": HELP_TEXT},
    )

    port: int = Field(
        10002,
        ge=0,
        le=65535,
        description="Port to listen on (0: any free port)",
        json_schema_extra={"metavar": "PORT"},
    )
    listen_host: str = Field(
        "[::]",
        description="Address to listen on ([::]: every interface, IPv4 and IPv6)",
        json_schema_extra={"metavar": "HOST"},
    )
    master: CommaList = Field(
        ["127.0.0.1:10001"],
        description="host:port of the master to register with; for several masters repeat the "
        "flag or separate them with commas. The slave registers with each at once and stays "
        "registered with each on its own: when one goes away the others are unaffected, and it "
        "registers again when that one returns. A master that refuses the registration (wrong "
        "join token) is given up; the slave exits 1 only once every master has refused",
        json_schema_extra={"metavar": "HOST:PORT"},
    )
    mode: Literal["standalone", "rpc", "delegate"] = Field(
        "standalone",
        description="standalone: serve and register; rpc: serve only; delegate: not supported yet",
    )
    engine: Literal["inprocess", "podman"] = Field(
        "inprocess",
        description="How build steps run. inprocess: every step as a process of this slave's "
        "host; podman: a step that names an image runs in a fresh podman container of it, "
        "removed when the step ends (podman must answer `podman info` at start-up). Pipeline "
        "methods always run in this process",
    )
    advertise_host: str = Field(
        "",
        description="Host the master should dial (empty: the address the master sees us from)",
        json_schema_extra={"metavar": "HOST"},
    )
    advertise_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port the master should dial (0: the port we listen on)",
        json_schema_extra={"metavar": "PORT"},
    )
    service: CommaList = Field(
        [DEFAULT_SERVICE],
        description="Service plug-in as module:attr; repeat the flag or separate them with "
        "commas for several",
        json_schema_extra={"metavar": "MODULE:ATTR"},
    )
    app_dir: Path = Field(
        Path("."),
        description="Folder to import --service plug-ins from, before the installed packages "
        "(as uvicorn's --app-dir)",
        json_schema_extra={"metavar": "DIR"},
    )
    run_delay: float = Field(
        5.0, ge=0, description="Seconds the example MyPipeline.Run waits before answering"
    )
    register_timeout: float = Field(5.0, gt=0, description="Seconds one registration call may take")
    register_backoff_max: float = Field(
        10.0, gt=0, description="Longest wait in seconds between two registration attempts"
    )
    grace: float = Field(10.0, ge=0, description="Seconds running calls get to finish on shutdown")
    join_token: CliSuppress[SecretStr | None] = Field(
        None, description="Token to register with (env ARKO_SLAVE_JOIN_TOKEN)"
    )
    join_token_file: Path | None = Field(
        None, description="File holding the token to register with (or env ARKO_SLAVE_JOIN_TOKEN)"
    )
    protect: bool = Field(
        True,
        description="In standalone mode, answer pipeline and reflection calls only from the "
        "master (its certificate with mutual TLS, else a secret agreed at registration)",
    )
    capacity: int = Field(
        0,
        ge=0,
        description="Most pipeline calls run at once; past it a call is refused before it "
        "starts (RESOURCE_EXHAUSTED, trailer arko-refused: capacity) and the master sends the "
        "job elsewhere or queues it. 0: no limit. Not the CPU count: pipeline steps mostly "
        "wait on other systems (builds elsewhere, deploy APIs), so size it by what the step "
        "may do at once",
    )
    label: CommaList = Field(
        [],
        description="Label key=value the master matches against a job's label selector and a "
        "method's required_labels; repeat the flag or separate them with commas",
        json_schema_extra={"metavar": "LABEL"},
    )
    master_name: str = Field(
        "arko-master",
        description="Common name the master's certificate must carry (mutual TLS)",
        json_schema_extra={"metavar": "NAME"},
    )

    steps: CliSuppress[dict[str, StepSpec]] = Field(
        default_factory=dict,
        description="Build steps of the built-in arko.v1.Steps service: [steps.NAME] tables of "
        "the --config file (see arko.slave.builtin.stepspec)",
    )
    pipelines: CliSuppress[dict[str, PipelineSpec]] = Field(
        default_factory=dict,
        description="Pipelines of declared steps, run as child jobs by arko.v1.Steps/Pipeline: "
        "[pipelines.NAME] tables of the --config file",
    )

    not_on_argv: ClassVar[tuple[str, ...]] = ("join_token",)

    @field_validator("master")
    @classmethod
    def _masters_are_distinct(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one master (host:port)")
        for address in value:
            if value.count(address) > 1:
                raise ValueError(f"master {address!r} is listed twice")
        return value

    @field_validator("label")
    @classmethod
    def _labels_are_pairs(cls, value: list[str]) -> list[str]:
        parse_labels(value)  # raises ValueError naming the bad item
        return value

    def labels(self) -> dict[str, str]:
        """``--label`` as a dict."""
        return parse_labels(self.label)

    def join_token_value(self) -> str | None:
        """The join token from env or file, None when unset."""
        return read_secret(self.join_token, self.join_token_file, "join token")
