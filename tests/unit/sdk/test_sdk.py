"""arko-protoc and the protos shipped for it; the step declarations it sits beside."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from arko.sdk.protoc import INCLUDE, protoc_args
from arko.slave.builtin.stepspec import StepSpec

ROOT = Path(__file__).resolve().parents[3]


def test_shipped_protos_are_the_sources() -> None:
    """arko/sdk/include holds exactly protos/arko/v1 (`make proto` copies them)."""
    sources = {p.name: p.read_bytes() for p in (ROOT / "protos" / "arko" / "v1").glob("*.proto")}
    shipped = {p.name: p.read_bytes() for p in (INCLUDE / "arko" / "v1").glob("*.proto")}
    assert shipped == sources, "run `make proto` and commit"


def test_protoc_defaults_to_python_outputs_next_to_the_proto() -> None:
    args = protoc_args(["hello/hello.proto"])
    assert args[:5] == [
        "grpc_tools.protoc",
        "-I.",
        "--python_out=.",
        "--pyi_out=.",
        "--grpc_python_out=.",
    ]
    assert f"-I{INCLUDE}" in args


def test_protoc_passes_explicit_outputs_through() -> None:
    args = protoc_args(["-Isrc", "--python_out=gen", "src/x.proto"])
    assert args[1:4] == ["-Isrc", "--python_out=gen", "src/x.proto"]


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"argv": ["echo", "{who}"]}, "{who}"),
        ({"argv": ["echo", "{who!r}"], "params": {"who": {"pattern": "x"}}}, "plain {name}"),
        ({"argv": ["echo"], "params": {"who": {}}}, "exactly one of pattern or choices"),
        ({"argv": ["echo"], "params": {"who": {"choices": ["a"], "default": "b"}}}, "'b'"),
        ({"argv": ["echo"], "params": {"python": {"pattern": "x"}}}, "reserved"),
        ({"argv": []}, "argv"),
    ],
)
def test_bad_step_declarations_are_refused(spec: dict[str, object], named: str) -> None:
    """A mistake in a step is a startup error naming it, not a surprise in a build."""
    with pytest.raises(ValidationError) as caught:
        StepSpec.model_validate(spec)
    assert named in str(caught.value)


def test_command_substitutes_parameters_into_single_arguments() -> None:
    spec = StepSpec.model_validate(
        {"argv": ["{python}", "-c", "x", "--port={port}"], "params": {"port": {"pattern": "\\d+"}}}
    )
    assert spec.command({"port": "80"}, "/py") == ["/py", "-c", "x", "--port=80"]
