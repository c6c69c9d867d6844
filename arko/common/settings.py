"""The one way both daemons read their settings.

Precedence, highest first: command-line flags, ``ARKO_<DAEMON>_*`` environment
variables, the TOML config file named by ``--config`` (or the ``..._CONFIG``
variable), then defaults. pydantic-settings does the parsing and validation;
this module adds what users expect of a server's command line: list settings
that take ``a,b`` from the environment too (:data:`CommaList`), and a
``--help`` that shows plain metavars and the real defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BeforeValidator, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    CliSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsError,
    TomlConfigSettingsSource,
)

from arko import __version__
from arko.common.errors import StartupError
from arko.common.logging import LogFormat
from arko.common.tls import TlsConfig, load_tls

S = TypeVar("S", bound="DaemonSettings")


_JSON_LIST = re.compile(r"\s*\[\s*[\"\]]")


def _split_list(value: Any) -> Any:
    """``a,b`` (or a JSON list, as before) from a flag or variable; lists pass through.

    A JSON list of strings starts ``["`` (or is ``[]``); an IPv6 master such
    as ``[::1]:10001`` also starts with a bracket and is split like any other.
    """
    if not isinstance(value, str):
        return value
    if _JSON_LIST.match(value):
        return json.loads(value)
    return [item.strip() for item in value.split(",") if item.strip()]


# A list setting: ``--x a --x b``, ``--x a,b``, ``ARKO_..._X=a,b`` (or a JSON
# list) and a TOML array all work. NoDecode hands the raw string to the
# validator instead of requiring JSON.
CommaList = Annotated[list[str], NoDecode, BeforeValidator(_split_list)]

# Metavars by type, for fields that do not name their own (json_schema_extra).
_METAVARS: dict[Any, str] = {Path: "FILE", float: "SECONDS", int: "N", str: "TEXT"}


def _metavar(field: FieldInfo) -> str | None:
    """The word ``--help`` shows after a flag; None keeps pydantic's (choices)."""
    extra = field.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("metavar"), str):
        return str(extra["metavar"])
    kind = field.annotation
    if get_origin(kind) is Literal:
        return None
    if get_origin(kind) in (Union, UnionType):  # X | None
        kind = next(a for a in get_args(kind) if a is not type(None))
    return _METAVARS.get(kind, "TEXT")


def _shown_default(field: FieldInfo, flag: str) -> str:
    """A field's default as a user would type it (``--no-tls``, ``a:b``, ``5``)."""
    value = field.get_default(call_default_factory=True)
    if isinstance(value, bool):
        return flag if value else f"--no-{flag.removeprefix('--')}"
    if value is None:
        return "none"
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) if value != "" else '""'


def _plain_help(settings_cls: type[BaseSettings]) -> Callable[..., Any]:
    """An ``add_argument`` for pydantic-settings that rewrites metavar and default.

    pydantic-settings prints types (``{Path,null}``, ``list[str]``) as metavars
    and ``default factory: <lambda>`` for list defaults; a user wants
    ``FILE`` and the value itself.
    """

    def add_argument(parser: Any, *names: str, **kwargs: Any) -> Any:
        field = settings_cls.model_fields.get(str(kwargs.get("dest", "")))
        if field is not None and kwargs.get("help") != argparse.SUPPRESS:
            if "metavar" in kwargs and (metavar := _metavar(field)) is not None:
                kwargs["metavar"] = metavar
            default = _shown_default(field, names[0]).replace("%", "%%")
            kwargs["help"] = f"{field.description or ''} (default: {default})".lstrip()
        return parser.add_argument(*names, **kwargs)

    return add_argument


class DaemonSettings(BaseSettings):
    """Settings every daemon has. Subclasses set ``model_config``'s env prefix."""

    _config_file: ClassVar[Path | None] = None
    # Secrets: settable by env or config file only, never on the command line,
    # where every user of the machine can read them (ps, shell history).
    not_on_argv: ClassVar[tuple[str, ...]] = ()

    config: Path | None = Field(
        None, description="TOML file with settings (flag and env values override it)"
    )
    tls: bool = Field(False, description="Serve over TLS (needs --cert_file and --key_file)")
    cert_file: Path | None = Field(None, description="PEM certificate for TLS")
    key_file: Path | None = Field(None, description="PEM private key for TLS")
    ca_file: Path | None = Field(
        None,
        description="PEM CA that vouches for the other side; with it, TLS is mutual "
        "(peers must present certificates it signed)",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest log level printed"
    )
    log_format: LogFormat = Field("console", description="Log lines as 'console' text or 'json'")
    metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port serving Prometheus metrics at /metrics on the listen host (0: off)",
        json_schema_extra={"metavar": "PORT"},
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Add the TOML file below the environment; the CLI source sits above all."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls._config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls._config_file))
        return tuple(sources)

    def check_tls(self) -> None:
        """Fail early, with a sentence, when TLS is asked for without its files."""
        if self.tls and (self.cert_file is None or self.key_file is None):
            raise StartupError("--tls needs both --cert_file and --key_file")
        if self.ca_file is not None and not self.tls:
            raise StartupError("--ca_file needs --tls")
        for path in (self.cert_file, self.key_file, self.ca_file):
            if self.tls and path is not None and not path.is_file():
                raise StartupError(f"TLS file {path} does not exist")

    def tls_config(self) -> TlsConfig | None:
        """The TLS material these settings name, read from disk; None when TLS is off."""
        return load_tls(self.tls, self.cert_file, self.key_file, self.ca_file)


def read_secret(inline: SecretStr | None, file: Path | None, what: str) -> str | None:
    """A token from its environment variable or its file (never from argv).

    Raises:
        StartupError: both are given, the file is unreadable, or it is empty.
    """
    if inline is not None and file is not None:
        raise StartupError(f"give the {what} by environment or by file, not both")
    if file is not None:
        try:
            value = file.read_text().strip()
        except OSError as exc:
            raise StartupError(f"cannot read {what} file {file}: {exc.strerror}") from None
        if not value:
            raise StartupError(f"{what} file {file} is empty")
        return value
    if inline is not None and inline.get_secret_value():
        return inline.get_secret_value()
    return None


def _config_path(cls: type[DaemonSettings], argv: Sequence[str]) -> Path | None:
    """Find ``--config`` before the full parse, since it decides the sources."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(list(argv))
    prefix = str(cls.model_config.get("env_prefix", ""))
    raw = known.config or os.environ.get(f"{prefix}CONFIG")
    if not raw:
        return None
    path = Path(raw)
    if not path.is_file():
        raise StartupError(f"config file {path} does not exist")
    return path


def load_settings(cls: type[S], argv: Sequence[str]) -> S:
    """Build ``cls`` from argv, the environment and the config file.

    Raises:
        StartupError: a value is invalid; the message names the setting.
    """
    for arg in argv:
        name = arg.removeprefix("--").partition("=")[0]
        if arg.startswith("--") and name in cls.not_on_argv:
            prefix = cls.model_config.get("env_prefix", "")
            raise StartupError(
                f"--{name} is not taken on the command line (others can read it there); "
                f"set {prefix}{name.upper()} or --{name}_file"
            )
    config_file = _config_path(cls, argv)
    bound: type[S] = type(cls.__name__, (cls,), {"_config_file": config_file})
    try:
        cli: CliSettingsSource[argparse.ArgumentParser] = CliSettingsSource(
            bound, add_argument_method=_plain_help(bound)
        )
        # Not a setting: argparse prints it and exits, as --help does.
        cli.root_parser.add_argument(
            "--version",
            action="version",
            version=f"%(prog)s {__version__}",
            help="Print the installed arko's version and exit",
        )
        init: dict[str, Any] = {"_cli_settings_source": cli(args=list(argv))}
        settings = bound(**init)
    except tomllib.TOMLDecodeError as exc:
        raise StartupError(f"config file {config_file} is not valid TOML: {exc}") from None
    except SettingsError as exc:
        raise StartupError(f"invalid settings: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise StartupError(f"invalid settings: {problems}") from None
    settings.check_tls()
    return settings
