"""Settings of ``arko-master``: flags, ``ARKO_MASTER_*`` variables, a TOML file."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import CliSuppress, SettingsConfigDict

from arko.common.settings import CommaList, DaemonSettings, read_secret
from arko.master.triggers.config import ScheduleSpec, TriggerSpec, check_unique


class MasterSettings(DaemonSettings):
    """Everything ``arko-master`` can be told. Flag names keep the original's spelling."""

    not_on_argv: ClassVar[tuple[str, ...]] = ("join_token", "client_token")

    def tokens(self) -> tuple[str | None, str | None]:
        """(join token, client token), each from env or file, None when unset."""
        return (
            read_secret(self.join_token, self.join_token_file, "join token"),
            read_secret(self.client_token, self.client_token_file, "client token"),
        )

    model_config = SettingsConfigDict(
        env_prefix="ARKO_MASTER_",
        cli_prog_name="arko-master",
        cli_implicit_flags=True,
        cli_kebab_case=False,
        extra="forbid",
    )

    port: int = Field(
        10001,
        ge=0,
        le=65535,
        description="Port to listen on (0: any free port)",
        json_schema_extra={"metavar": "PORT"},
    )
    http_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of the HTTP API and web UI (0: off); same TLS and client token as gRPC",
        json_schema_extra={"metavar": "PORT"},
    )
    http_allowed_hosts: CommaList = Field(
        [],
        description="Host names the HTTP server answers to besides its listen address (and, "
        "on a wildcard --listen_host, any IP address and localhost), e.g. the DNS name users "
        "browse to; repeat the flag or separate them with commas. Requests naming any other "
        "Host are refused (421), so no other site can reach the master by DNS rebinding",
        json_schema_extra={"metavar": "HOST"},
    )
    ui_dir: str = Field(
        "",
        description="Folder of the built web UI (empty: the one installed with arko, "
        "else ui/dist of this checkout)",
        json_schema_extra={"metavar": "DIR"},
    )
    listen_host: str = Field(
        "[::]",
        description="Address to listen on ([::]: every interface, IPv4 and IPv6)",
        json_schema_extra={"metavar": "HOST"},
    )
    db: str = Field(
        "arko.db",
        description="Where slaves and jobs are kept: a SQLite file, or a PostgreSQL URL "
        "(postgresql://user[:password]@host:port/name; the database must exist)",
        json_schema_extra={"metavar": "FILE|URL"},
    )
    ping_interval: float = Field(30.0, gt=0, description="Seconds between two pings of all slaves")
    ping_timeout: float = Field(
        5.0, gt=0, description="Seconds a slave gets to answer a ping or a discovery"
    )
    ping_concurrency: int = Field(
        500, ge=1, description="Most slaves probed at once during a ping sweep (bounds memory)"
    )
    forget_after: float = Field(
        86400.0,
        ge=0,
        description="Seconds a slave may stay down before the master forgets it (0: never)",
    )
    connect_timeout: float = Field(
        2.0, gt=0, description="Seconds to wait for a connection to a slave before trying another"
    )
    job_timeout: float = Field(
        3600.0, gt=0, description="Deadline in seconds for a job whose caller set none"
    )
    max_params: int = Field(256, ge=0, description="Most parameters one job may carry")
    max_param_bytes: int = Field(
        1024 * 1024,
        ge=0,
        description="Most bytes (names and values) of one job's parameters",
        json_schema_extra={"metavar": "BYTES"},
    )
    max_message_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="Largest request message the master accepts",
        json_schema_extra={"metavar": "BYTES"},
    )
    max_output_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,  # held in memory, and stored as a 32-bit count
        description="Output kept with each job's record (and held in memory while it runs); "
        "past it the kept copy is cut with a marker while live output goes on",
    )
    journal_dir: str = Field(
        "",
        description="Folder of the job journal (empty: '<db>.journal' beside a SQLite "
        "database, 'arko-master-<port>.journal' here with PostgreSQL)",
        json_schema_extra={"metavar": "DIR"},
    )
    # Records are safe in the journal the moment they happen; this only sets how
    # stale the database may be. Each flush briefly holds the event loop, so a
    # short interval shows up in job latency (p99 2.0 ms at 0.05 s, 1.4 at 1 s).
    job_flush_interval: float = Field(
        1.0,
        gt=0,
        description="Seconds job records gather (safe in the journal) before one database write",
    )
    advertise_address: str = Field(
        "",
        description="host:port slaves and their jobs reach this master at: sent with each "
        "job (arko-job-master) so a pipeline's child jobs go back to the master that sent "
        "it (empty: the SDK dials the masters its slave registered with)",
        json_schema_extra={"metavar": "HOST:PORT"},
    )
    max_job_depth: int = Field(
        8,
        ge=0,
        description="How deep child jobs may nest (a top-level job is at depth 0); a "
        "deeper child is refused with FAILED_PRECONDITION",
    )
    grace: float = Field(10.0, ge=0, description="Seconds running jobs get to finish on shutdown")
    name: str = Field(
        "",
        max_length=255,
        description="This master's name among several on one PostgreSQL database (empty: "
        "host:port); keep it across restarts so a restart interrupts only its own jobs",
        json_schema_extra={"metavar": "NAME"},
    )
    heartbeat_interval: float = Field(
        2.0,
        gt=0,
        description="Several masters on PostgreSQL: seconds between two heartbeats, each of "
        "which also renews this master's ping leases and reads the fleet's changes",
    )
    master_timeout: float = Field(
        10.0,
        gt=0,
        description="Several masters on PostgreSQL: seconds without a heartbeat after which a "
        "master counts as dead; another then marks its running jobs interrupted and takes "
        "over its pings (within this plus one --heartbeat_interval)",
    )
    policy: Literal["first_live", "least_loaded"] = Field(
        "first_live",
        description="Which slave runs a job: first_live, the first live one in registration "
        "order (the original's); least_loaded, the one with the lowest running/capacity",
        json_schema_extra={"metavar": "POLICY"},
    )
    queue_timeout: float = Field(
        600.0,
        gt=0,
        description="Seconds a job may wait in the queue for a slave with room (or for its "
        "method's max_concurrency) before it fails with RESOURCE_EXHAUSTED",
    )
    open_registration: bool = Field(
        False,
        description="Take slave registrations from any host even with no join token "
        "(without it, such a master takes them from loopback peers only, as Redis's "
        "protected mode does)",
    )
    max_slaves: int = Field(
        10000,
        ge=1,
        description="Most slaves the master keeps; a new one past it is refused with "
        "RESOURCE_EXHAUSTED (a known slave may always register again)",
    )
    register_rate_limit: int = Field(
        60,
        ge=0,
        description="Most registrations one peer host may make per minute (0: no limit)",
    )
    # Tokens come from the environment or a file, never from argv (visible in ps).
    join_token: CliSuppress[SecretStr | None] = Field(
        None, description="Token slaves must present to register (env ARKO_MASTER_JOIN_TOKEN)"
    )
    join_token_file: Path | None = Field(
        None, description="File holding the token slaves must present to register"
    )
    client_token: CliSuppress[SecretStr | None] = Field(
        None, description="Bearer token callers of Execution must present"
    )
    client_token_file: Path | None = Field(
        None,
        description="File holding the bearer token callers of Execution must present "
        "(or env ARKO_MASTER_CLIENT_TOKEN)",
    )
    secrets_key_file: Path | None = Field(
        None,
        description="File holding the key that seals arko.v1.Secrets at rest: 32 random "
        "bytes in base64, mode 0600 (head -c 32 /dev/urandom | base64 > FILE); without "
        "it the master keeps no secrets",
    )
    public_url: str = Field(
        "",
        description="The URL users reach the master's web UI at (e.g. https://arko.example.com); "
        "commit statuses link to <public_url>/jobs/<id> (empty: no link)",
        json_schema_extra={"metavar": "URL"},
    )
    trigger: CliSuppress[list[TriggerSpec]] = Field(
        default_factory=list,
        description="Webhooks that start jobs: [[trigger]] tables of the --config file "
        "(see arko.master.triggers.config); served on --http_port at /hooks/NAME",
    )
    schedule: CliSuppress[list[ScheduleSpec]] = Field(
        default_factory=list,
        description="Jobs the clock starts: [[schedule]] tables of the --config file",
    )

    @model_validator(mode="after")
    def _names_unique(self) -> MasterSettings:
        check_unique(self.trigger, self.schedule)
        return self
