"""Tests of arko.common.methods: how callers' method names are parsed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arko.common.errors import InvalidArgument
from arko.common.methods import MAX_METHOD_NAME, MethodName, parse_method_name

IDENT = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,15}\Z")


@pytest.mark.parametrize(
    "raw",
    [
        "MyPipeline.Run",
        "MyPipeline/Run",
        "/MyPipeline/Run",
        "  MyPipeline.Run\n",
        "\t/MyPipeline/Run ",
    ],
)
def test_accepted_spellings_name_the_same_method(raw: str) -> None:
    """Dotted, slashed and gRPC-path spellings, with surrounding blanks, all parse alike."""
    assert parse_method_name(raw) == MethodName("MyPipeline", "Run")


@pytest.mark.parametrize("raw", ["acme.ci.Build.Run", "/acme.ci.Build/Run", "acme.ci.Build/Run"])
def test_packaged_service_keeps_its_full_name(raw: str) -> None:
    """A service with a package is named by its fully qualified name."""
    name = parse_method_name(raw)
    assert (name.service, name.method) == ("acme.ci.Build", "Run")


def test_dotted_and_path_forms() -> None:
    """``dotted`` and ``path`` render the forms jobs and gRPC use."""
    name = parse_method_name("acme.ci.Build/Run")
    assert name.dotted == "acme.ci.Build.Run"
    assert name.path == "/acme.ci.Build/Run"


def test_name_of_maximum_length_is_accepted() -> None:
    """A name exactly at the length limit is still valid."""
    service = "S" * (MAX_METHOD_NAME - len(".Run"))
    assert parse_method_name(f"{service}.Run").service == service


@pytest.mark.parametrize("raw", ["", "   ", "\n"])
def test_empty_name_is_refused_with_an_example(raw: str) -> None:
    """An empty method says it is empty and shows the expected form."""
    with pytest.raises(InvalidArgument, match=r"method is empty.*MyPipeline\.Run"):
        parse_method_name(raw)


def test_too_long_name_is_refused() -> None:
    """A name past the limit is refused, and the message gives the limit."""
    with pytest.raises(InvalidArgument, match=str(MAX_METHOD_NAME)):
        parse_method_name("S" * MAX_METHOD_NAME + ".Run")


@pytest.mark.parametrize(
    "raw",
    [
        "Run",
        "a..b",
        "MyPipeline.",
        ".Run",
        "1abc.Run",
        "MyPipeline.1Run",
        "My Pipeline.Run",
        "MyPipeline/",
        "/Run",
        "MyPipeline/Run/",
        "acme.ci/Build.Run",
        "My-Pipeline.Run",
    ],
)
def test_malformed_name_is_refused_with_the_expected_form(raw: str) -> None:
    """A name that is not Service.Method is refused, quoting it and showing the form."""
    with pytest.raises(InvalidArgument) as caught:
        parse_method_name(raw)
    assert repr(raw) in caught.value.message
    assert "Service.Method" in caught.value.message
    assert "MyPipeline.Run" in caught.value.message


@pytest.mark.parametrize("raw", ["MyPipeline\n.Run", "MyPipeline\n/Run", "acme.ci\n.Run"])
def test_newline_inside_name_is_refused(raw: str) -> None:
    """A newline inside the name (not at its ends) is not a valid service name."""
    with pytest.raises(InvalidArgument):
        parse_method_name(raw)


@given(service=st.lists(IDENT, min_size=1, max_size=4).map(".".join), method=IDENT)
def test_every_spelling_of_a_valid_name_round_trips(service: str, method: str) -> None:
    """For any valid service and method, each spelling parses back to the same pair."""
    expected = MethodName(service, method)
    assert parse_method_name(f"{service}.{method}") == expected
    assert parse_method_name(f"{service}/{method}") == expected
    assert parse_method_name(expected.path) == expected
    assert parse_method_name(expected.dotted) == expected
