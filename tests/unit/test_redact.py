"""Tests of secret redaction: arko.common.redact and the structlog processor."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog

from arko.common.logging import configure_logging, redact_secrets
from arko.common.redact import REDACTED, is_secret_name, redact_mapping


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "Password",
        "PASSWD",
        "API_TOKEN",
        "client_secret",
        "ssh_key",
        "apiKey",
        "db_password",
    ],
)
def test_secret_looking_names(name: str) -> None:
    """Names containing password, passwd, token, secret or key, in any case, are secret."""
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["param", "user", "host", "port", "method", "event", "slave"])
def test_ordinary_names(name: str) -> None:
    """Ordinary field names are not secret."""
    assert not is_secret_name(name)


def test_secret_values_are_replaced_and_others_kept() -> None:
    """Secret entries show ``***``; every other entry keeps its value."""
    values = {"param": "one", "Password": "parola", "API_TOKEN": "t0k", "port": 5}
    assert redact_mapping(values) == {
        "param": "one",
        "Password": REDACTED,
        "API_TOKEN": REDACTED,
        "port": 5,
    }


def test_nested_mappings_are_redacted() -> None:
    """Secrets inside nested mappings are hidden at every depth."""
    values = {"job": {"params": {"ssh_key": "-----BEGIN", "param": "x"}, "client_secret": "s"}}
    assert redact_mapping(values) == {
        "job": {"params": {"ssh_key": REDACTED, "param": "x"}, "client_secret": REDACTED}
    }


def test_a_secret_name_hides_a_whole_mapping() -> None:
    """A secret-named entry is hidden even when its value is a mapping."""
    assert redact_mapping({"secrets": {"a": 1}}) == {"secrets": REDACTED}


def test_input_is_not_modified() -> None:
    """Redaction returns a copy and leaves the caller's mapping untouched."""
    values = {"password": "parola", "inner": {"token": "t"}}
    redact_mapping(values)
    assert values == {"password": "parola", "inner": {"token": "t"}}


def test_mappings_inside_lists_are_redacted() -> None:
    """Secrets in mappings held by a list are hidden too."""
    redacted = redact_mapping({"jobs": [{"param": "one", "password": "parola"}]})
    assert redacted == {"jobs": [{"param": "one", "password": REDACTED}]}


def test_processor_redacts_the_event_dict() -> None:
    """The structlog processor hides secrets and keeps the event and other keys."""
    event = {"event": "job_started", "password": "parola", "param": "one"}
    assert redact_secrets(None, "info", event) == {
        "event": "job_started",
        "password": REDACTED,
        "param": "one",
    }


def test_processor_in_a_logger_chain() -> None:
    """A logger whose chain holds the processor never renders a secret."""
    log = structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=[redact_secrets, structlog.processors.JSONRenderer()],
    )
    line = log.info("job_started", token="t0k3n", params={"password": "parola"}, param="one")
    assert "t0k3n" not in line
    assert "parola" not in line
    assert json.loads(line) == {
        "event": "job_started",
        "token": REDACTED,
        "params": {"password": REDACTED},
        "param": "one",
    }


@pytest.fixture
def reset_structlog() -> Iterator[None]:
    """Undo configure_logging's global structlog set-up after the test."""
    yield
    structlog.reset_defaults()


@pytest.mark.usefixtures("reset_structlog")
def test_configured_logging_redacts(capsys: pytest.CaptureFixture[str]) -> None:
    """The daemons' logging set-up hides secrets in the JSON lines it writes to stderr."""
    configure_logging("info", "json")
    structlog.get_logger("test").info("registered", client_secret="s3cr3t", slave="h:1")
    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert record["client_secret"] == REDACTED
    assert record["slave"] == "h:1"
    assert record["event"] == "registered"
