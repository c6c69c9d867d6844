"""``${secret:NAME}`` in a job's inputs: replaced by the value on the way to the slave.

Only a string parameter or a top-level typed argument whose *whole* value is a
reference is replaced, and only in the request sent to the slave: the job's
record, events, logs and exports keep the reference as the caller sent it.
Inputs without references cost nothing (no read of the store).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from arko.common.errors import ArkoError, PermissionDenied
from arko.common.methods import parse_method_name
from arko.common.redact import referenced
from arko.master.secrets.vault import NoSecretsKey, Vault, allows, check_name


class UnknownSecret(ArkoError):
    """A job refers to a secret the master does not hold."""

    code = grpc.StatusCode.FAILED_PRECONDITION


@dataclass(frozen=True, slots=True)
class Inputs:
    """A job's inputs as the slave receives them, and the secret values they now hold."""

    params: Mapping[str, str]
    args: Mapping[str, Any] | None
    values: tuple[str, ...] = ()


class SecretResolver:
    """Replaces references for the methods the secrets allow.

    Args:
        vault: The master's secrets; None for a job core without any (every
            reference is then refused as with no key file).
    """

    def __init__(self, vault: Vault | None = None) -> None:
        self._vault = vault

    async def resolve(
        self, method: str, params: Mapping[str, str], args: Mapping[str, Any] | None
    ) -> Inputs:
        """``params`` and ``args`` with each reference replaced by its secret's value.

        The globs are matched against ``Service.Method`` however the caller
        spelled the method (``/Service/Method``, blanks around it), since
        that is the method the slave is called for.

        Raises:
            NoSecretsKey: a reference, and no key file.
            InvalidArgument: a reference to a malformed name, or a malformed method.
            UnknownSecret: a reference to a secret that does not exist.
            PermissionDenied: no glob of the secret matches ``method``.
            SecretUnreadable: a value does not open with this master's key.
        """
        names = {
            name
            for value in (*params.values(), *(args or {}).values())
            if (name := referenced(value)) is not None
        }
        if not names:
            return Inputs(params, args)
        if self._vault is None:
            raise NoSecretsKey()
        method = parse_method_name(method).dotted
        for name in sorted(names):
            check_name(name)
        opened = await self._vault.open(names)
        for name in sorted(names):
            secret = opened.get(name)
            if secret is None:
                raise UnknownSecret(f"the job refers to secret {name}, which does not exist")
            if not allows(secret.methods, method):
                raise PermissionDenied(
                    f"secret {name} may not be given to {method}: its methods are "
                    f"{', '.join(secret.methods)}"
                )

        def replace(value: Any) -> Any:
            name = referenced(value)
            return value if name is None else opened[name].value

        return Inputs(
            {key: replace(value) for key, value in params.items()},
            None if args is None else {key: replace(value) for key, value in args.items()},
            tuple(opened[name].value for name in sorted(names)),
        )


NO_VAULT = SecretResolver()
