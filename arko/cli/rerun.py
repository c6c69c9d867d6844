"""``arko rerun``: a job's record made into a new ``Jobs/Run`` request, when it can be.

A record keeps what the caller sent, except values under a secret-looking
name, which the master stored as ``***``. Sending ``***`` back would run the
job with a wrong value, so such a record is refused, naming where the hidden
values were. A ``${secret:NAME}`` reference is kept as sent (the master puts
the secret in on the way to the slave), so it re-runs as it ran.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format

from arko.cli.client import CliError, Exit
from arko.common.redact import REDACTED
from arko.v1 import jobs_pb2


def hidden_values(job: jobs_pb2.Job) -> list[str]:
    """Where ``job``'s record holds ``***`` (``params.password``, ``args.deploy.token``).

    A param may hold a message as JSON text, redacted inside; it is looked into too.
    """
    found: list[str] = []
    for name, value in sorted(job.params.items()):
        _walk(value, f"params.{name}", found, parse_text=True)
    if job.HasField("args"):
        for name, value in json_format.MessageToDict(job.args).items():
            _walk(value, f"args.{name}", found, parse_text=False)
    return found


def _walk(value: Any, path: str, found: list[str], parse_text: bool) -> None:
    if value == REDACTED:
        found.append(path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, f"{path}[{i}]", found, parse_text=False)
    elif isinstance(value, dict):
        for name, inner in value.items():
            _walk(inner, f"{path}.{name}", found, parse_text=False)
    elif parse_text and isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return  # text that starts with a bracket: no hidden value in it
        _walk(parsed, path, found, parse_text=False)


def rerun_request(job: jobs_pb2.Job, detach: bool) -> jobs_pb2.RunRequest:
    """A ``RunRequest`` with ``job``'s method, params and args.

    Raises:
        CliError: (usage) the record holds a hidden value, which cannot be sent again.
    """
    hidden = hidden_values(job)
    if hidden:
        raise CliError(
            f"job {job.id} cannot be re-run: {', '.join(hidden)} "
            f"{'was' if len(hidden) == 1 else 'were'} hidden (***) in its record, and a hidden "
            "value cannot be sent again; run the method afresh with arko run "
            "(a ${secret:NAME} reference re-runs)",
            Exit.USAGE,
        )
    request = jobs_pb2.RunRequest(method=job.method, params=job.params, detach=detach)
    if job.HasField("args"):
        request.args.CopyFrom(job.args)
    return request
