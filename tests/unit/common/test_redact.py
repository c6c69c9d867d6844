"""Tests of secret redaction: arko.common.redact and the structlog processor."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from google.protobuf import any_pb2, json_format, text_format, wrappers_pb2
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from arko.common.logging import configure_logging, redact_secrets
from arko.common.redact import (
    MIN_SECRET,
    REDACTED,
    Secrets,
    _forms,
    is_secret_name,
    redact_mapping,
    secret_values,
)
from arko.v1 import jobs_pb2


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


# -- issue 22: names the rule missed, JSON texts in params, secrets by value ---


@pytest.mark.parametrize(
    "name",
    [
        "passphrase",
        "ssh_passphrase",
        "pwd",
        "DB_PWD",
        "credential",
        "aws_credentials",
        "auth",
        "basic_auth",
        "authHeader",
        "Authorization",
        "oauth_state",
        "private_key",
        "cookie",
        "Set-Cookie",
        "session",
        "sessionId",
    ],
)
def test_names_the_old_rule_missed(name: str) -> None:
    """passphrase, pwd, credential(s), auth, private_key, cookie and session are secret."""
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["author", "commit_author", "authors", "authority", "AUTHORED"])
def test_author_is_not_auth(name: str) -> None:
    """``auth`` followed by ``or`` (author, authority) is an ordinary name, by choice."""
    assert not is_secret_name(name)


def test_a_json_param_is_redacted_inside() -> None:
    """A message or map field given in params as JSON is redacted inside, as in args."""
    params = {"creds": json.dumps({"user": "ci", "password": 'pa"ss'}), "n": "{not json"}
    redacted = redact_mapping(params)
    assert json.loads(redacted["creds"]) == {"user": "ci", "password": REDACTED}
    assert redacted["n"] == "{not json"
    assert redact_mapping({"args": {"creds": {"password": 'pa"ss'}}}) == {
        "args": {"creds": {"password": REDACTED}}
    }


def test_a_json_param_without_secrets_is_kept_as_given() -> None:
    """A JSON text holding no secret keeps its own spelling (it is not re-rendered)."""
    params = {"labels": '{ "zone" :  "b" }', "tags": '["a", "b"]'}
    assert redact_mapping(params) == params


def test_an_unparsable_json_param_naming_a_secret_is_hidden_whole() -> None:
    """Broken JSON that mentions a secret name cannot be looked into: it is hidden whole."""
    assert redact_mapping({"creds": '{"password": "x",}'}) == {"creds": REDACTED}


def test_secret_values_are_found_in_json_params_and_nested_secrets() -> None:
    """Every text below a secret name is a value to scrub, JSON texts included."""
    params = {
        "creds": json.dumps({"user": "ci", "password": "pässwört"}),
        "token": "t0k3n",
        "plain": "visible",
    }
    args = {"private_key": {"pem": "-----BEGIN", "bits": 4096}, "n": 1}
    found = secret_values(params) + secret_values(args)
    assert set(found) == {"pässwört", "t0k3n", "-----BEGIN", "4096"}


SECRETS = ['pa"ss', "pässwört", "pa\x01ss\\", "a\u2028b", "ta\tb\n", "🔑key"]


@pytest.mark.parametrize("secret", SECRETS)
def test_a_reply_is_scrubbed_before_it_is_rendered(secret: str) -> None:
    """Strings, map keys and values, repeated fields and Struct texts lose the secret."""
    secrets = Secrets.of({"password": secret})
    text = f"x{secret}y"
    reply = jobs_pb2.RunRequest(
        method=text, params={text: text}, labels={"k": json.dumps({"p": secret})}
    )
    reply.args.update({"a": [text, {"b": text}]})
    hidden = secrets.message(reply)
    assert secret in reply.method  # the original is left as it was
    for rendering in _renderings(hidden):
        for form in _forms(secret):
            assert form not in rendering
    assert hidden.method == "x***y"


def test_bytes_and_any_are_scrubbed() -> None:
    """A bytes field loses the secret's UTF-8 bytes; an Any is unpacked and scrubbed inside."""
    secrets = Secrets(["pässwört"])
    packed = any_pb2.Any()
    packed.Pack(wrappers_pb2.StringValue(value="is pässwört"))
    hidden = secrets.message(packed)
    inner = wrappers_pb2.StringValue()
    assert hidden.Unpack(inner) and inner.value == "is ***"
    raw = wrappers_pb2.BytesValue(value="pässwört!".encode())
    assert secrets.message(raw).value == b"***!"


def test_error_text_loses_every_spelling_of_a_secret() -> None:
    """Error text a slave or a parser wrote may hold a secret as is, JSON-escaped or repr'd."""
    secrets = Secrets(['pa"ss\x01'])
    text = 'raw pa"ss\x01 json "pa\\"ss\\u0001" repr \'pa"ss\\x01\''
    assert secrets.text(text) == "raw *** json \"***\" repr '***'"


def test_short_values_are_not_scrubbed_from_text() -> None:
    """A secret shorter than three characters would wreck every output; it is only redacted."""
    assert Secrets(["ab"]).text("abc") == "abc"
    assert not Secrets(["ab"])


def _renderings(message: Message) -> list[str]:
    """Every way arko shows a reply: JSON (escaped or not), text format, and a JSON of that."""
    compact = json_format.MessageToJson(message, indent=None)
    return [
        compact,
        json_format.MessageToJson(message, ensure_ascii=False),
        text_format.MessageToString(message),
        text_format.MessageToString(message, as_utf8=True),
        json.dumps({"result": compact}),  # a record holding it, in the journal or the HTTP API
        json.dumps({"result": compact}, ensure_ascii=False),
    ]


# Text around the secret that every rendering leaves as it is: escapes of the
# surroundings alone (an "\\u0030" spelling "000") are not the secret's.
_PLAIN = st.text(alphabet=string.ascii_letters + string.digits + "*-_ :", max_size=8)


def _texts(value: Any) -> Iterator[str]:
    """Every text of a reply as MessageToDict gives it: keys and values, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, str):
        yield value


@settings(max_examples=300, deadline=None)
@given(
    secret=st.text(min_size=MIN_SECRET, max_size=12).filter(lambda s: set(s) != {"*"}),
    before=_PLAIN,
    after=_PLAIN,
)
def test_no_secret_survives_any_rendering(secret: str, before: str, after: str) -> None:
    """For any secret text, no spelling of it is left in any spelling of a scrubbed reply's texts.

    The texts are looked at one by one: a whole rendering may spell a short
    secret with its own field names ("fie" in "fields") or quotes.
    """
    secrets = Secrets.of({"password": secret})
    text = before + secret + after
    reply = jobs_pb2.RunRequest(method=text, params={text: text})
    reply.args.update({"a": [text, {text: text}]})
    texts = list(_texts(json_format.MessageToDict(secrets.message(reply))))
    assert texts.count(secrets.text(text)) == 6
    for value in texts:
        for spelling in _forms(value):
            for form in _forms(secret):
                assert form not in spelling, (form, spelling)


def test_a_logged_error_in_brackets_is_not_taken_for_json() -> None:
    """Text that only starts like JSON ("[Errno 2] … token") keeps its words."""
    error = "[Errno 2] No such file or directory: '/etc/arko/token'"
    assert redact_mapping({"error": error}) == {"error": error}


def test_a_reference_to_a_kept_secret_is_shown_and_its_value_added_later() -> None:
    """``${secret:NAME}`` under a secret name stays as is and is no value to scrub;
    the value it stands for is scrubbed once added, raw and JSON-escaped."""
    params = {"token": "${secret:DEPLOY}", "password": "hunter22", "note": "x${secret:A}"}
    assert redact_mapping(params) == {
        "token": "${secret:DEPLOY}",
        "password": "***",
        "note": "x${secret:A}",
    }
    secrets = Secrets.of(params)
    assert secrets.text("${secret:DEPLOY} hunter22") == "${secret:DEPLOY} ***"
    more = secrets.adding(['va"l\\ue'])
    assert more.text('hunter22 va"l\\ue va\\"l\\\\ue') == "*** *** ***"
    assert secrets.adding([]) is secrets
