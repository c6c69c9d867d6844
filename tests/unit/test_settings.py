"""Tests of settings loading: flags, ARKO_* variables and the TOML config file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic_settings import CLI_SUPPRESS

from arko.common.errors import StartupError
from arko.common.settings import DaemonSettings, load_settings
from arko.master.settings import MasterSettings
from arko.slave.settings import DEFAULT_SERVICE, SlaveSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Run each test in an empty directory with no ARKO_* variable set."""
    for name in list(os.environ):
        if name.upper().startswith("ARKO_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cert.pem").write_text("not checked here\n")
    (tmp_path / "key.pem").write_text("not checked here\n")
    return tmp_path


def write_toml(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_master_defaults_are_the_originals() -> None:
    """With no input the master listens on 10001 with arko.db and 30 s / 5 s pings."""
    s = load_settings(MasterSettings, [])
    assert (s.port, s.db, s.ping_interval, s.ping_timeout) == (10001, "arko.db", 30.0, 5.0)
    assert (s.tls, s.cert_file, s.key_file) == (False, None, None)
    assert (s.job_timeout, s.max_params, s.journal_dir) == (3600.0, 256, "")


def test_slave_defaults_are_the_originals() -> None:
    """With no input the slave listens on 10002, registers with 127.0.0.1:10001, standalone."""
    s = load_settings(SlaveSettings, [])
    assert (s.port, s.master, s.mode, s.engine) == (
        10002,
        ["127.0.0.1:10001"],
        "standalone",
        "inprocess",
    )
    assert s.service == [DEFAULT_SERVICE]
    assert (s.advertise_host, s.advertise_port) == ("", 0)


# Every flag both daemons share, applied to each of them.
COMMON_FLAGS = [
    (["--tls", "--cert_file", "cert.pem", "--key_file", "key.pem"], "tls", True),
    (["--cert_file", "cert.pem"], "cert_file", Path("cert.pem")),
    (["--key_file", "key.pem"], "key_file", Path("key.pem")),
    (["--log_level", "debug"], "log_level", "debug"),
    (["--log_format", "json"], "log_format", "json"),
    (["--listen_host", "127.0.0.1"], "listen_host", "127.0.0.1"),
    (["--grace", "0"], "grace", 0.0),
    (["--port", "0"], "port", 0),
    (["--port=12345"], "port", 12345),
]

MASTER_FLAGS = [
    (["--db", "/var/lib/arko/slaves.db"], "db", "/var/lib/arko/slaves.db"),
    (["--ping_interval", "1.5"], "ping_interval", 1.5),
    (["--ping_timeout", "0.25"], "ping_timeout", 0.25),
    (["--connect_timeout", "0.5"], "connect_timeout", 0.5),
    (["--job_timeout", "60"], "job_timeout", 60.0),
    (["--max_params", "8"], "max_params", 8),
    (["--max_param_bytes", "4096"], "max_param_bytes", 4096),
    (["--max_message_bytes", "1024"], "max_message_bytes", 1024),
    (["--journal_dir", "/var/lib/arko/journal"], "journal_dir", "/var/lib/arko/journal"),
    (["--job_flush_interval", "0.2"], "job_flush_interval", 0.2),
    (["--policy", "least_loaded"], "policy", "least_loaded"),
    (["--queue_timeout", "2.5"], "queue_timeout", 2.5),
]

SLAVE_FLAGS = [
    (["--master", "[::1]:9000"], "master", ["[::1]:9000"]),
    (["--mode", "rpc"], "mode", "rpc"),
    (["--mode", "delegate"], "mode", "delegate"),
    (["--engine", "inprocess"], "engine", "inprocess"),
    (["--advertise_host", "ci-7.example.com"], "advertise_host", "ci-7.example.com"),
    (["--advertise_port", "20002"], "advertise_port", 20002),
    (["--service", "acme.ci:plugin"], "service", ["acme.ci:plugin"]),
    (["--run_delay", "0"], "run_delay", 0.0),
    (["--register_timeout", "2.5"], "register_timeout", 2.5),
    (["--register_backoff_max", "3"], "register_backoff_max", 3.0),
    (["--capacity", "4"], "capacity", 4),
    (["--label", "zone=b", "--label", "gpu=yes"], "label", ["zone=b", "gpu=yes"]),
    (["--label", "zone=b,gpu=yes"], "label", ["zone=b", "gpu=yes"]),
]


@pytest.mark.parametrize(("argv", "attr", "expected"), COMMON_FLAGS + MASTER_FLAGS)
def test_master_flag(argv: list[str], attr: str, expected: object) -> None:
    """Each master flag sets its setting."""
    assert getattr(load_settings(MasterSettings, argv), attr) == expected


@pytest.mark.parametrize(("argv", "attr", "expected"), COMMON_FLAGS + SLAVE_FLAGS)
def test_slave_flag(argv: list[str], attr: str, expected: object) -> None:
    """Each slave flag sets its setting."""
    assert getattr(load_settings(SlaveSettings, argv), attr) == expected


@pytest.mark.parametrize("cls", [MasterSettings, SlaveSettings])
def test_config_flag_reads_the_file(cls: type[DaemonSettings], tmp_path: Path) -> None:
    """``--config`` names a TOML file whose values apply."""
    path = write_toml(tmp_path / "arko.toml", 'log_level = "error"\nport = 4242\n')
    s = load_settings(cls, ["--config", path])
    assert (s.config, s.log_level, s.port) == (Path(path), "error", 4242)


@pytest.mark.parametrize(
    "argv",
    [
        ["--service", "a.b:one", "--service", "c.d:two"],
        ["--service", '["a.b:one", "c.d:two"]'],
        ["--service", "a.b:one,c.d:two"],
    ],
)
def test_service_flag_takes_several_plugins(argv: list[str]) -> None:
    """Plug-ins are given by repeating --service, as a JSON list, or comma-separated."""
    assert load_settings(SlaveSettings, argv).service == ["a.b:one", "c.d:two"]


@pytest.mark.parametrize("cls", [MasterSettings, SlaveSettings])
def test_help_lists_every_setting(
    cls: type[DaemonSettings], capsys: pytest.CaptureFixture[str]
) -> None:
    """``--help`` prints every setting as a flag, except those kept off argv, and exits 0."""
    with pytest.raises(SystemExit) as caught:
        load_settings(cls, ["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for name, field in cls.model_fields.items():
        listed = re.search(rf"--{name}\b", out) is not None
        assert listed is (CLI_SUPPRESS not in field.metadata), name


def test_unknown_flag_exits_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt flag stops the daemon with usage and status 2, like other startup errors."""
    with pytest.raises(SystemExit) as caught:
        load_settings(MasterSettings, ["--prot", "1"])
    assert caught.value.code == 2
    assert "--prot" in capsys.readouterr().err


def test_master_env_var_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    """ARKO_MASTER_PORT sets the master's port."""
    monkeypatch.setenv("ARKO_MASTER_PORT", "20001")
    assert load_settings(MasterSettings, []).port == 20001


def test_slave_env_var_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    """ARKO_SLAVE_MASTER sets the master the slave registers with."""
    monkeypatch.setenv("ARKO_SLAVE_MASTER", "10.1.2.3:10001")
    assert load_settings(SlaveSettings, []).master == ["10.1.2.3:10001"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--master", "a:1", "--master", "[::1]:2", "--master", "c:3"],
        ["--master", "a:1,[::1]:2,c:3"],
        ["--master", "a:1, [::1]:2 ,c:3"],
    ],
)
def test_master_flag_takes_several_masters(argv: list[str]) -> None:
    """Masters are given by repeating --master or separating them with commas, in order."""
    assert load_settings(SlaveSettings, argv).master == ["a:1", "[::1]:2", "c:3"]


def test_several_masters_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """ARKO_SLAVE_MASTER takes several masters separated by commas, IPv6 ones first too."""
    monkeypatch.setenv("ARKO_SLAVE_MASTER", "[::1]:10001,10.0.0.2:10001")
    assert load_settings(SlaveSettings, []).master == ["[::1]:10001", "10.0.0.2:10001"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--master", "a:1,b:2,a:1"], "master 'a:1' is listed twice"),
        (["--master", ""], "name at least one master"),
        (["--master", " , "], "name at least one master"),
    ],
)
def test_master_list_is_checked(argv: list[str], message: str) -> None:
    """A master named twice, or none at all, stops the slave at start with the reason."""
    with pytest.raises(StartupError, match=message):
        load_settings(SlaveSettings, argv)


def test_env_var_of_one_daemon_does_not_touch_the_other(monkeypatch: pytest.MonkeyPatch) -> None:
    """A master variable leaves the slave's setting of the same name alone."""
    monkeypatch.setenv("ARKO_MASTER_PORT", "20001")
    assert load_settings(SlaveSettings, []).port == 10002


def test_env_var_list_takes_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """ARKO_SLAVE_SERVICE takes a JSON list of plug-ins."""
    monkeypatch.setenv("ARKO_SLAVE_SERVICE", '["a.b:one", "c.d:two"]')
    assert load_settings(SlaveSettings, []).service == ["a.b:one", "c.d:two"]


def test_precedence_flag_over_env_over_file_over_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A flag beats the environment, which beats the file, which beats the default."""
    path = write_toml(
        tmp_path / "master.toml", "port = 1111\nping_interval = 7\ngrace = 3\ndb = 'file.db'\n"
    )
    monkeypatch.setenv("ARKO_MASTER_PORT", "2222")
    monkeypatch.setenv("ARKO_MASTER_PING_INTERVAL", "8")
    s = load_settings(MasterSettings, ["--config", path, "--port", "3333"])
    assert s.port == 3333  # flag > env > file
    assert s.ping_interval == 8.0  # env > file
    assert s.grace == 3.0  # file > default
    assert s.db == "file.db"
    assert s.ping_timeout == 5.0  # default


def test_no_tls_flag_overrides_the_file(tmp_path: Path) -> None:
    """``--no-tls`` turns off TLS that the config file turned on."""
    path = write_toml(tmp_path / "slave.toml", "tls = true\n")
    assert load_settings(SlaveSettings, ["--config", path, "--no-tls"]).tls is False


def test_config_from_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """ARKO_SLAVE_CONFIG names the config file when --config is absent."""
    path = write_toml(tmp_path / "slave.toml", 'mode = "rpc"\nservice = ["x.y:z"]\n')
    monkeypatch.setenv("ARKO_SLAVE_CONFIG", path)
    s = load_settings(SlaveSettings, [])
    assert (s.mode, s.service) == ("rpc", ["x.y:z"])


@pytest.mark.parametrize(
    ("cls", "argv", "setting"),
    [
        (MasterSettings, ["--port", "70000"], "port"),
        (MasterSettings, ["--port", "-1"], "port"),
        (MasterSettings, ["--port", "ten"], "port"),
        (MasterSettings, ["--ping_interval", "0"], "ping_interval"),
        (MasterSettings, ["--ping_timeout", "-1"], "ping_timeout"),
        (MasterSettings, ["--job_timeout", "0"], "job_timeout"),
        (MasterSettings, ["--grace", "-1"], "grace"),
        (MasterSettings, ["--max_params", "-1"], "max_params"),
        (MasterSettings, ["--max_param_bytes", "-1"], "max_param_bytes"),
        (MasterSettings, ["--max_message_bytes", "1023"], "max_message_bytes"),
        (MasterSettings, ["--job_flush_interval", "0"], "job_flush_interval"),
        (MasterSettings, ["--log_level", "loud"], "log_level"),
        (MasterSettings, ["--log_format", "xml"], "log_format"),
        (SlaveSettings, ["--port", "70000"], "port"),
        (SlaveSettings, ["--mode", "bogus"], "mode"),
        (SlaveSettings, ["--engine", "docker"], "engine"),
        (SlaveSettings, ["--advertise_port", "65536"], "advertise_port"),
        (SlaveSettings, ["--register_backoff_max", "0"], "register_backoff_max"),
        (SlaveSettings, ["--run_delay", "-1"], "run_delay"),
    ],
)
def test_invalid_flag_value_names_the_setting(
    cls: type[DaemonSettings], argv: list[str], setting: str
) -> None:
    """An invalid value is a StartupError whose message names the setting."""
    with pytest.raises(StartupError) as caught:
        load_settings(cls, argv)
    assert caught.value.message.startswith("invalid settings: ")
    assert f"{setting}: " in caught.value.message


def test_invalid_env_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """An invalid ARKO_* value is a StartupError naming the setting."""
    monkeypatch.setenv("ARKO_MASTER_PORT", "70000")
    with pytest.raises(StartupError, match="port: "):
        load_settings(MasterSettings, [])


def test_unknown_key_in_config_file_is_refused(tmp_path: Path) -> None:
    """A misspelt key in the config file is a StartupError naming it."""
    path = write_toml(tmp_path / "master.toml", "prot = 1\n")
    with pytest.raises(StartupError, match="prot: "):
        load_settings(MasterSettings, ["--config", path])


def test_missing_config_file_is_a_startup_error(tmp_path: Path) -> None:
    """A --config file that does not exist is a StartupError naming the path."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(StartupError, match=re.escape(f"config file {missing} does not exist")):
        load_settings(MasterSettings, ["--config", str(missing)])


def test_missing_config_file_from_env_is_a_startup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A config file named by the environment that does not exist is a StartupError."""
    monkeypatch.setenv("ARKO_SLAVE_CONFIG", "nope.toml")
    with pytest.raises(StartupError, match=r"nope\.toml does not exist"):
        load_settings(SlaveSettings, [])


@pytest.mark.parametrize("cls", [MasterSettings, SlaveSettings])
@pytest.mark.parametrize(
    "argv",
    [["--tls"], ["--tls", "--cert_file", "cert.pem"], ["--tls", "--key_file", "key.pem"]],
)
def test_tls_without_both_files_is_a_startup_error(
    cls: type[DaemonSettings], argv: list[str]
) -> None:
    """--tls without both --cert_file and --key_file is refused, naming the flags."""
    with pytest.raises(StartupError, match="--tls needs both --cert_file and --key_file"):
        load_settings(cls, argv)


def test_tls_from_config_file_is_checked_too(tmp_path: Path) -> None:
    """TLS turned on by the config file, without its files, is refused the same way."""
    path = write_toml(tmp_path / "master.toml", "tls = true\n")
    with pytest.raises(StartupError, match="--tls needs both"):
        load_settings(MasterSettings, ["--config", path])


def test_tls_file_that_does_not_exist_is_a_startup_error() -> None:
    """--tls with a certificate path that does not exist names that file."""
    with pytest.raises(StartupError, match=r"TLS file missing\.pem does not exist"):
        load_settings(
            MasterSettings, ["--tls", "--cert_file", "missing.pem", "--key_file", "key.pem"]
        )


def test_malformed_config_file_is_a_startup_error(tmp_path: Path) -> None:
    """A config file that is not valid TOML is a StartupError naming the file."""
    path = write_toml(tmp_path / "master.toml", 'port = "unterminated\n')
    try:
        load_settings(MasterSettings, ["--config", path])
    except StartupError as exc:
        assert path in exc.message
    except Exception as exc:
        raise AssertionError(f"not a StartupError: {exc!r}") from exc
    else:
        raise AssertionError("a malformed config file was accepted")


def test_broken_json_list_env_var_is_a_startup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """ARKO_SLAVE_SERVICE that starts a JSON list but is not one is a StartupError naming it."""
    monkeypatch.setenv("ARKO_SLAVE_SERVICE", '["acme.ci:plugin"')
    try:
        load_settings(SlaveSettings, [])
    except StartupError as exc:
        assert "service" in exc.message
    except Exception as exc:
        raise AssertionError(f"not a StartupError: {exc!r}") from exc
    else:
        raise AssertionError("a broken JSON list variable was accepted")


def test_labels_come_from_a_comma_list_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """ARKO_SLAVE_LABEL takes key=value pairs separated by commas, like other lists."""
    monkeypatch.setenv("ARKO_SLAVE_LABEL", "zone=b,tier=gpu")
    assert load_settings(SlaveSettings, []).labels() == {"zone": "b", "tier": "gpu"}


def test_a_label_without_a_value_is_refused_by_name() -> None:
    with pytest.raises(StartupError, match="label 'zone' is not key=value"):
        load_settings(SlaveSettings, ["--label", "zone"])
