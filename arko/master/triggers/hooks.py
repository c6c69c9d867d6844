"""One webhook delivery in, one job (or a reason not to) out.

The order of checks is the order of trust: an unknown trigger is 404 before
anything is read; the signature is checked over the exact bytes before the
body is parsed; only then do the event and ref filters, the parameter
mapping and the delivery id count. Nothing of the body is logged but the
delivery id, the event and the ref.
"""

from __future__ import annotations

import fnmatch
import json
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import structlog

from arko.common.errors import ArkoError, InvalidArgument, StartupError, Unauthenticated
from arko.master.triggers.config import TriggerSpec
from arko.master.triggers.pointer import map_params
from arko.master.triggers.seams import JobStarter, Marks
from arko.master.triggers.signatures import HEADERS, verified

log = structlog.get_logger("arko.master.triggers.hooks")

_BRANCH = "refs/heads/"
_TAG = "refs/tags/"


class UnknownTrigger(ArkoError):
    """No ``[[trigger]]`` has this name."""

    code = grpc.StatusCode.NOT_FOUND


def _read_file(path: Path, what: str, trigger: str) -> str:
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise StartupError(
            f"trigger {trigger!r}: cannot read its {what} {path}: {exc.strerror}"
        ) from None
    if not value:
        raise StartupError(f"trigger {trigger!r}: its {what} {path} is empty")
    return value


@dataclass(frozen=True, slots=True)
class Trigger:
    """A declared trigger with its secrets read from their files."""

    spec: TriggerSpec
    # Never in a repr: a traceback or a debug line must not show them.
    secret: bytes = field(repr=False)
    status_token: str | None = field(repr=False)

    @classmethod
    def load(cls, spec: TriggerSpec) -> Trigger:
        """Read the trigger's secret (and status token) files.

        Raises:
            StartupError: a file is missing, unreadable or empty, naming the trigger.
        """
        secret = _read_file(spec.secret_file, "secret_file", spec.name).encode()
        token = None
        if spec.status_token_file is not None:
            token = _read_file(spec.status_token_file, "status_token_file", spec.name)
        return cls(spec, secret, token)


@dataclass(frozen=True, slots=True)
class Answer:
    """What a delivery came to: a job started (or started before), or why none."""

    job_id: str = ""
    skipped: str = ""
    duplicate: bool = False


def _payload(body: bytes, content_type: str) -> Any:
    """The delivered JSON; GitHub's form encoding carries it in ``payload=``.

    Raises:
        InvalidArgument: the body is not JSON.
    """
    try:
        if content_type == "application/x-www-form-urlencoded":
            fields = urllib.parse.parse_qs(body.decode(), max_num_fields=16)
            return json.loads(fields["payload"][0])
        return json.loads(body)
    except (ValueError, KeyError, UnicodeDecodeError, RecursionError):
        raise InvalidArgument(
            "the body is not a JSON payload: set the webhook's content type to application/json"
        ) from None


def _ref_skip(spec: TriggerSpec, ref: str) -> str:
    """Why a delivery's ref does not match the trigger's globs ("" when it does).

    As a forge's own CI reads such filters: with neither list set, any ref
    runs; once one is set, a ref of that kind must match it, and a ref of a
    kind whose list is empty does not run (a trigger naming branches only
    does not build every tag pushed). A delivery with no ref (a ping, an
    issue) passes only when neither list is set.
    """
    if not spec.branches and not spec.tags:
        return ""
    if ref.startswith(_BRANCH):
        branch = ref.removeprefix(_BRANCH)
        if not any(fnmatch.fnmatchcase(branch, g) for g in spec.branches):
            return f"branch {branch!r} matches none of {spec.branches}"
        return ""
    if ref.startswith(_TAG):
        tag = ref.removeprefix(_TAG)
        if not any(fnmatch.fnmatchcase(tag, g) for g in spec.tags):
            return f"tag {tag!r} matches none of {spec.tags}"
        return ""
    return f"ref {ref!r} is not a branch or tag" if ref else "the delivery names no ref"


Started = Callable[[Trigger, str, Any], None]


class Hooks:
    """The declared triggers, answering deliveries.

    Args:
        triggers: The triggers, secrets loaded.
        start: Starts a job (the job core).
        marks: Claims delivery ids across masters (the store).
        on_started: Told of each job a delivery started, with its payload
            (commit statuses).
    """

    def __init__(
        self,
        triggers: list[Trigger],
        start: JobStarter,
        marks: Marks,
        on_started: Started | None = None,
    ) -> None:
        self._triggers = {t.spec.name: t for t in triggers}
        self._start = start
        self._marks = marks
        self._on_started = on_started

    @property
    def triggers(self) -> list[Trigger]:
        """The triggers, in declaration order."""
        return list(self._triggers.values())

    def find(self, name: str) -> Trigger:
        """The trigger named ``name``.

        Raises:
            UnknownTrigger: there is none.
        """
        trigger = self._triggers.get(name)
        if trigger is None:
            raise UnknownTrigger(f"no trigger {name[:100]!r}")
        return trigger

    async def deliver(self, name: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """Check one delivery and start its job, at most once per delivery id.

        Raises:
            UnknownTrigger: no such trigger.
            Unauthenticated: the signature is missing or wrong.
            InvalidArgument: the body is not JSON, or lacks a mapped value.
            ArkoError: the job core refused the job.
        """
        trigger = self.find(name)
        spec = trigger.spec
        names = HEADERS[spec.forge]
        if not verified(spec.forge, trigger.secret, headers, body):
            log.info("hook_refused", trigger=name, reason="missing or wrong signature")
            raise Unauthenticated(f"missing or wrong {names.signature} for trigger {name!r}")
        event = headers.get(names.event, "")[:100]
        delivery = headers.get(names.delivery, "").strip()[:200]
        payload = _payload(body, headers.get("Content-Type", "").split(";")[0].strip().lower())
        ref = payload.get("ref") if isinstance(payload, dict) else None
        ref = ref[:300] if isinstance(ref, str) else ""
        context = {"trigger": name, "delivery": delivery, "forge_event": event, "ref": ref}
        skipped = ""
        if spec.events and event not in spec.events:
            skipped = f"event {event!r} is not one of {spec.events}"
        skipped = skipped or _ref_skip(spec, ref)
        if skipped:
            log.info("hook_skipped", reason=skipped, **context)
            return Answer(skipped=skipped)
        params = map_params(spec.params, payload)
        if delivery:
            first = await self._marks.claim_delivery(name, delivery)
            if first is not None:
                log.info("hook_redelivered", job_id=first, **context)
                return Answer(job_id=first, duplicate=True)
        try:
            job_id = self._start(spec.method, params, spec.label)
        except BaseException:
            if delivery:
                await self._marks.release_delivery(name, delivery)
            raise
        if delivery:
            await self._marks.delivery_started(name, delivery, job_id)
        log.info("hook_delivered", job_id=job_id, method=spec.method, **context)
        if self._on_started is not None:
            self._on_started(trigger, job_id, payload)
        return Answer(job_id=job_id)
