"""``arko.v1.Secrets``: proto in, a call on :class:`arko.master.secrets.vault.Vault`, proto out.

A value goes in through ``Set`` and never comes back out: every answer is the
secret as listed (name, globs, times).
"""

from __future__ import annotations

from typing import Any

import grpc
import structlog

from arko.common.errors import ArkoError
from arko.master.api.servicers import abort
from arko.master.secrets.vault import Vault
from arko.master.store.rows import SecretRow
from arko.v1 import secrets_pb2, secrets_pb2_grpc

log = structlog.get_logger("arko.master.api.secrets")

Context = grpc.aio.ServicerContext[Any, Any]


def secret_message(row: SecretRow) -> secrets_pb2.Secret:
    """A secret as List shows it: never its value."""
    secret = secrets_pb2.Secret(name=row.name, methods=row.methods)
    secret.created_at.FromDatetime(row.created_at)
    secret.updated_at.FromDatetime(row.updated_at)
    return secret


class SecretsServicer(secrets_pb2_grpc.SecretsServicer):
    """``arko.v1.Secrets``: set, list and delete the master's secrets."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    async def Set(
        self, request: secrets_pb2.SetSecretRequest, context: Context
    ) -> secrets_pb2.Secret:
        try:
            row = await self._vault.set(request.name, request.value, list(request.methods))
        except ArkoError as exc:
            await abort(context, exc)
        log.info("secret_set", name=row.name, methods=list(row.methods))
        return secret_message(row)

    async def List(
        self, request: secrets_pb2.ListSecretsRequest, context: Context
    ) -> secrets_pb2.ListSecretsResponse:
        try:
            rows = await self._vault.list()
        except ArkoError as exc:
            await abort(context, exc)
        return secrets_pb2.ListSecretsResponse(secrets=[secret_message(r) for r in rows])

    async def Delete(
        self, request: secrets_pb2.DeleteSecretRequest, context: Context
    ) -> secrets_pb2.DeleteSecretResponse:
        try:
            await self._vault.delete(request.name)
        except ArkoError as exc:
            await abort(context, exc)
        log.info("secret_deleted", name=request.name)
        return secrets_pb2.DeleteSecretResponse()
