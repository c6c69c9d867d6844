"""``${secret:NAME}`` replaced in a job's inputs, for the methods a secret allows."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from arko.common.errors import ArkoError, InvalidArgument, PermissionDenied
from arko.common.redact import referenced
from arko.master.secrets.references import NO_VAULT, SecretResolver, UnknownSecret
from arko.master.secrets.sealing import Sealer
from arko.master.secrets.vault import NoSecretsKey, Vault
from arko.master.store.sql import open_store

VALUE = 'to"ken\\value'


def with_resolver(tmp_path: Path, scenario: Callable[[SecretResolver], Awaitable[None]]) -> None:
    async def go() -> None:
        store = await open_store(str(tmp_path / "arko.db"))
        vault = Vault(store, Sealer(os.urandom(32)))
        await vault.set("DEPLOY", VALUE, ["Deploy.*"])
        await vault.set("ANY", "any-value")
        try:
            await scenario(SecretResolver(vault))
        finally:
            await store.close()

    asyncio.run(go())


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("${secret:A}", "A"),
        ("${secret:a.b-c}", "a.b-c"),
        ("x${secret:A}", None),
        ("${secret:A} ", None),
        ("${SECRET:A}", None),
        ("$secret:A", None),
        (3, None),
    ],
)
def test_only_a_whole_value_is_a_reference(value: Any, name: str | None) -> None:
    """The reference is the whole string; anything around it leaves the text as it is."""
    assert referenced(value) == name


def test_references_are_replaced_at_the_top_level_only(tmp_path: Path) -> None:
    """Params and top-level args get the values; nested and partial ones are left alone."""

    async def scenario(resolver: SecretResolver) -> None:
        params = {"key": "${secret:DEPLOY}", "plain": "x", "partial": "a${secret:ANY}"}
        args = {"token": "${secret:ANY}", "nested": {"t": "${secret:ANY}"}, "n": 3}
        inputs = await resolver.resolve("Deploy.Run", params, args)
        assert inputs.params == {"key": VALUE, "plain": "x", "partial": "a${secret:ANY}"}
        assert inputs.args == {"token": "any-value", "nested": {"t": "${secret:ANY}"}, "n": 3}
        assert sorted(inputs.values) == sorted([VALUE, "any-value"])
        assert params["key"] == "${secret:DEPLOY}"  # the caller's mapping is not touched

    with_resolver(tmp_path, scenario)


def test_globs_see_the_method_however_it_is_spelled(tmp_path: Path) -> None:
    """``/Deploy/Run`` and `` Deploy.Run `` are Deploy.Run: allowed by ``Deploy.*``."""

    async def scenario(resolver: SecretResolver) -> None:
        for spelling in ("/Deploy/Run", " Deploy.Run ", "Deploy/Run"):
            inputs = await resolver.resolve(spelling, {"key": "${secret:DEPLOY}"}, None)
            assert inputs.params == {"key": VALUE}

    with_resolver(tmp_path, scenario)


def test_a_method_outside_the_globs_is_refused_naming_secret_and_method(tmp_path: Path) -> None:
    """PERMISSION_DENIED; the message names the secret and the method, never the value."""

    async def scenario(resolver: SecretResolver) -> None:
        with pytest.raises(PermissionDenied) as caught:
            await resolver.resolve("Build.Run", {"key": "${secret:DEPLOY}"}, None)
        assert "DEPLOY" in caught.value.message and "Build.Run" in caught.value.message
        assert VALUE not in caught.value.message

    with_resolver(tmp_path, scenario)


@pytest.mark.parametrize(
    ("params", "error", "code", "words"),
    [
        ({"k": "${secret:NOPE}"}, UnknownSecret, "FAILED_PRECONDITION", "secret NOPE"),
        ({"k": "${secret:bad name}"}, InvalidArgument, "INVALID_ARGUMENT", "'bad name'"),
    ],
)
def test_an_unknown_or_malformed_secret_is_named(
    tmp_path: Path, params: dict[str, str], error: type[ArkoError], code: str, words: str
) -> None:
    """The job fails with a message naming the secret it asked for."""

    async def scenario(resolver: SecretResolver) -> None:
        with pytest.raises(error, match=words) as caught:
            await resolver.resolve("Deploy.Run", params, None)
        assert caught.value.code == grpc.StatusCode[code]

    with_resolver(tmp_path, scenario)


def test_without_a_key_references_are_refused_and_the_rest_passes(tmp_path: Path) -> None:
    """No vault (or no key): inputs without references pass untouched, a reference fails."""

    async def go() -> None:
        params = {"p": "plain"}
        inputs = await NO_VAULT.resolve("Any.Method", params, None)
        assert inputs.params is params and inputs.values == ()
        with pytest.raises(NoSecretsKey):
            await NO_VAULT.resolve("Any.Method", {}, {"t": "${secret:X}"})
        store = await open_store(str(tmp_path / "arko.db"))
        try:
            with pytest.raises(NoSecretsKey):
                await SecretResolver(Vault(store, None)).resolve("A.B", {"t": "${secret:X}"}, None)
        finally:
            await store.close()

    asyncio.run(go())
