"""Tests of what a user types and reads: comma-separated lists, --app_dir, --help."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from arko.common.errors import StartupError
from arko.common.settings import DaemonSettings, load_settings
from arko.master.settings import MasterSettings
from arko.slave.plugins import load_services
from arko.slave.settings import DEFAULT_SERVICE, SlaveSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Each test in an empty folder with no ARKO_* variable and its own sys.path."""
    for name in list(os.environ):
        if name.upper().startswith("ARKO_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return tmp_path


def test_service_variable_takes_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """ARKO_SLAVE_SERVICE=a:b,c:d gives two plug-ins; one plug-in needs no list syntax."""
    monkeypatch.setenv("ARKO_SLAVE_SERVICE", "acmeci.build:plugin, acmeci.deploy:plugin")
    assert load_settings(SlaveSettings, []).service == [
        "acmeci.build:plugin",
        "acmeci.deploy:plugin",
    ]
    monkeypatch.setenv("ARKO_SLAVE_SERVICE", "acmeci.build:plugin")
    assert load_settings(SlaveSettings, []).service == ["acmeci.build:plugin"]


def test_service_from_a_toml_array(tmp_path: Path) -> None:
    """A TOML array still works as the list."""
    (tmp_path / "s.toml").write_text('service = ["a.b:one", "c.d:two"]\n')
    assert load_settings(SlaveSettings, ["--config", "s.toml"]).service == ["a.b:one", "c.d:two"]


def _help(cls: type[DaemonSettings], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as caught:
        load_settings(cls, ["--help"])
    assert caught.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("cls", [MasterSettings, SlaveSettings])
def test_help_shows_plain_metavars_and_real_defaults(
    cls: type[DaemonSettings], capsys: pytest.CaptureFixture[str]
) -> None:
    """No Python types or factories in --help; each value flag has a word and its default."""
    out = _help(cls, capsys)
    for internal in ("null", "Path", "list[", "str]", "factory", "lambda", " str ", " int "):
        assert internal not in out, internal
    found = re.findall(r"^  (--\w+)(?: ([A-Z:]+|\{[a-z,]+\}|inprocess))?", out, re.MULTILINE)
    flags = [f for f in found if f[0] != "--version"]  # not a setting: it prints and exits
    assert flags, out
    for flag, metavar in flags:
        field = cls.model_fields[flag.removeprefix("--")]
        if field.annotation is not bool:
            assert metavar, flag
    assert " ".join(out.split()).count("(default: ") == len(flags)


def test_help_shows_the_default_plugin_and_folder(capsys: pytest.CaptureFixture[str]) -> None:
    """The slave's list and path defaults are printed as values."""
    out = " ".join(_help(SlaveSettings, capsys).split())
    assert "--service MODULE:ATTR" in out
    assert f"(default: {DEFAULT_SERVICE})" in out
    assert "--app_dir DIR" in out
    assert "--cert_file FILE PEM certificate for TLS (default: none)" in out
    assert "--port PORT" in out and "(default: 10002)" in out
    assert "(default: --protect)" in out


def test_plugins_are_imported_from_app_dir(tmp_path: Path) -> None:
    """--app_dir puts its folder first on the import path, as uvicorn's --app-dir does."""
    project = tmp_path / "project"
    (project / "acmeci").mkdir(parents=True)
    (project / "acmeci" / "__init__.py").write_text("")
    (project / "acmeci" / "build.py").write_text(
        "from arko.slave.mypipeline import plugin as plugin\n"
    )
    settings = load_settings(
        SlaveSettings, ["--app_dir", str(project), "--service", "acmeci.build:plugin"]
    )
    services = load_services(settings.service, settings)
    assert [s.name for s in services] == ["MyPipeline", "MyPipelineLogs"]
    assert sys.path[0] == str(project.resolve())
    sys.modules.pop("acmeci.build")
    sys.modules.pop("acmeci")


def test_app_dir_defaults_to_the_current_folder(tmp_path: Path) -> None:
    """Without --app_dir, the folder the slave starts in is importable."""
    settings = load_settings(SlaveSettings, [])
    load_services(settings.service, settings)
    assert sys.path[0] == str(tmp_path.resolve())


def test_app_dir_that_is_not_a_folder_is_a_startup_error(tmp_path: Path) -> None:
    """A mistyped --app_dir stops the slave with one line naming it."""
    settings = load_settings(SlaveSettings, ["--app_dir", str(tmp_path / "nope")])
    with pytest.raises(StartupError, match=r"--app_dir .*nope is not a folder"):
        load_services(settings.service, settings)


def test_slave_help_explains_capacity_labels_queue_and_job_policy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """arko-slave --help says what capacity is (and why not the CPU count), and shows the option."""
    out = " ".join(_help(SlaveSettings, capsys).split())
    assert "--capacity N" in out and "Not the CPU count" in out
    assert "--label LABEL" in out and "queue" in out
    assert 'import "arko/v1/options.proto";' in out and "option (arko.v1.job)" in out
