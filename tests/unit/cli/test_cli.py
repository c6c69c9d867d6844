"""The CLI's pure parts: k=v typing against a description, the grpcurl line, exit mapping."""

from __future__ import annotations

import json
import shlex

import grpc
import pytest

from arko.cli.client import CliError, Exit, from_rpc
from arko.cli.render import grpcurl_command
from arko.cli.typed import build_request
from arko.v1 import admin_pb2, jobs_pb2

F = admin_pb2.FieldInfo
METHOD = admin_pb2.MethodInfo(
    method="Deploy.Production",
    messages=[
        admin_pb2.MessageInfo(
            full_name="DeployRequest",
            fields=[
                F(name="env", json_name="env", type="string"),
                F(name="jobs", json_name="jobs", type="int32"),
                F(name="serial", json_name="serial", type="uint64"),
                F(name="ratio", json_name="ratio", type="double"),
                F(name="dry_run", json_name="dryRun", type="bool"),
                F(name="tier", json_name="tier", type="enum", enum_values=["GOLD", "SILVER"]),
                F(name="hosts", json_name="hosts", type="string", repeated=True),
                F(name="ports", json_name="ports", type="int32", repeated=True),
                F(name="extra", json_name="extra", type="message", type_name="Extra"),
            ],
        )
    ],
)


def test_strings_go_to_params_and_typed_values_to_args() -> None:
    """Strings are sent as typed; the rest converted by type, under their JSON names."""
    params, args = build_request(
        METHOD,
        [
            "env=prod=eu",
            "jobs=4",
            "serial=18446744073709551615",
            "ratio=0.5",
            "dry_run=Yes",
            "tier=GOLD",
            "hosts=a,b",
            "ports=[80, 443]",
            'extra={"k": 1}',
        ],
    )
    assert params == {"env": "prod=eu"}
    assert args == {
        "jobs": 4,
        "serial": "18446744073709551615",
        "ratio": 0.5,
        "dryRun": True,
        "tier": "GOLD",
        "hosts": ["a", "b"],
        "ports": [80, 443],
        "extra": {"k": 1},
    }


@pytest.mark.parametrize(
    ("pair", "says"),
    [
        ("jobs=four", "jobs is int32"),
        ("dry_run=maybe", "true or false"),
        ("tier=BRONZE", "one of GOLD, SILVER"),
        ("extra={", "JSON object"),
        ("job=4", "did you mean jobs"),
        ("novalue", "not name=value"),
    ],
)
def test_wrong_values_are_usage_errors_naming_the_field(pair: str, says: str) -> None:
    """Each mistake is exit 2 before anything is sent, with a sentence naming it."""
    with pytest.raises(CliError) as caught:
        build_request(METHOD, [pair])
    assert caught.value.code == Exit.USAGE
    assert says in caught.value.message


def test_an_enum_takes_a_name_or_a_number() -> None:
    """``tier=1`` is sent as the number (the master checks it is declared), as the manual says."""
    _, args = build_request(METHOD, ["tier=1"])
    assert args == {"tier": 1}
    _, args = build_request(METHOD, ["tier=SILVER"])
    assert args == {"tier": "SILVER"}


def test_grpcurl_line_replaces_secrets_with_placeholders() -> None:
    """The rerun command carries no secret, only a placeholder to fill in, and parses back."""
    job = jobs_pb2.Job(method="MyPipeline.Run", params={"param": "a", "password": "***"})
    job.args.update({"api_token": "***", "jobs": 2})
    line = grpcurl_command(job, "127.0.0.1:10001", ["-plaintext"])
    argv = shlex.split(line)
    assert argv[:2] == ["grpcurl", "-plaintext"] and argv[-1] == "arko.v1.Jobs/Run"
    body = json.loads(argv[argv.index("-d") + 1])
    assert body == {
        "method": "MyPipeline.Run",
        "params": {"param": "a", "password": "<PASSWORD>"},
        "args": {"api_token": "<API_TOKEN>", "jobs": 2},
    }


class _Failed(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "why"


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [
        (grpc.StatusCode.UNAVAILABLE, Exit.UNREACHABLE),
        (grpc.StatusCode.NOT_FOUND, Exit.NOT_FOUND),
        (grpc.StatusCode.INVALID_ARGUMENT, Exit.USAGE),
        (grpc.StatusCode.UNAUTHENTICATED, Exit.ERROR),
    ],
)
def test_status_codes_map_to_documented_exit_codes(code: grpc.StatusCode, exit_code: Exit) -> None:
    """One mapping from a failed call to the exit codes ``arko --help`` lists."""
    assert from_rpc(_Failed(code), "m:1").code == exit_code
