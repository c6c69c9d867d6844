"""The JSON API under ``/api/v1/``: small handlers over the cores the gRPC servicers use.

Jobs go through :class:`arko.master.jobs.service.JobService` (as ``arko.v1.Jobs``
does), slaves and methods come from :class:`arko.master.slaves.registry.Registry`,
and records and events are rendered with the same protobuf messages as on the
wire (``arko.v1.Job``, ``arko.v1.JobEvent``, from :mod:`arko.master.api.messages`)
in the protobuf JSON mapping, so a job reads the same over gRPC and HTTP.
``ArkoError`` becomes an HTTP status in one place (:func:`http_status`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import grpc
import structlog
from aiohttp import web
from aiohttp_sse import sse_response
from google.protobuf import json_format

from arko.common.auth import tokens_match
from arko.common.errors import ArkoError, InvalidArgument
from arko.master.api.http.openapi import OpenApiCache
from arko.master.api.http.schema import describe_method, locate
from arko.master.api.messages import event_message, job_message
from arko.master.api.secrets import secret_message
from arko.master.jobs.executor import Unimplemented
from arko.master.jobs.params import build_request
from arko.master.jobs.service import JobService, Submission
from arko.master.secrets.vault import NoSecretsKey, Vault
from arko.master.slaves.registry import Registry
from arko.master.slaves.slave import Slave
from arko.master.store.rows import JobRow
from arko.v1 import secrets_pb2

log = structlog.get_logger("arko.master.api.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The HTTP twin of ArkoError.code: one mapping, used by every handler.
_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.CANCELLED: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})
API = "/api/v1"


def http_status(code: grpc.StatusCode) -> int:
    """The HTTP status answering an ``ArkoError`` with this gRPC code (500 when unmapped)."""
    return _STATUS.get(code, 500)


def error_response(status: int, code: str, message: str) -> web.Response:
    """The one error body of the API: ``{"error": {"code": ..., "message": ...}}``."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def job_json(row: JobRow) -> dict[str, Any]:
    """A job record as ``arko.v1.Job`` in the protobuf JSON mapping, with the proto's names."""
    return json_format.MessageToDict(
        job_message(row),
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )


def slave_json(slave: Slave) -> dict[str, Any]:
    """One slave as the API and the UI show it."""
    return {
        "address": slave.address,
        "status": slave.state.value,
        "methods": list(slave.methods),
        "capacity": slave.capacity,
        "running": slave.running,
        "labels": dict(slave.labels),
        "version": slave.version,
    }


def _flag(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise InvalidArgument(f"query parameter {name!r} must be true or false, not {raw[:32]!r}")


def _int(request: web.Request, name: str, default: int = 0) -> int:
    raw = request.query.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw, 10)
    except ValueError:
        raise InvalidArgument(f"query parameter {name!r} must be an integer") from None


async def _body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``)."""
    if not request.can_read_body:
        return {}
    try:
        body = await request.json(loads=json.loads)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        # json.loads recurses once per nesting level; Python's stack is the limit.
        raise InvalidArgument("the body's JSON is nested too deeply") from None
    if not isinstance(body, dict):
        raise InvalidArgument("the body must be a JSON object")
    return body


def _string_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidArgument(f"{what} must be an object of strings")
    return value


class Api:
    """The handlers, bound to the master's cores.

    Args:
        jobs: The job core.
        registry: The slaves and their catalogs.
        client_token: The bearer token callers must present (None: open).
        patience: Seconds a request waits for a slave offering its method to
            register again after a restart (as a job waits for it).
        vault: The master's secrets (names and globs are listed, never values);
            None answers as a master without a key file does.
    """

    def __init__(
        self,
        jobs: JobService,
        registry: Registry,
        client_token: str | None,
        patience: float = 0.0,
        vault: Vault | None = None,
    ) -> None:
        self._jobs = jobs
        self._vault = vault
        self._registry = registry
        self._patience = patience
        self._token = client_token
        self._openapi = OpenApiCache(registry, client_token is not None)

    def add_routes(self, app: web.Application) -> None:
        """Mount the API, its OpenAPI document and the two middlewares on ``app``."""
        app.middlewares.extend([self._errors, self._auth, self._json_posts])
        app.add_routes(
            [
                web.get("/openapi.json", self.openapi),
                web.get(f"{API}/slaves", self.slaves),
                web.get(f"{API}/methods", self.methods),
                web.get(f"{API}/methods/{{method}}", self.method),
                web.get(f"{API}/jobs", self.list_jobs),
                web.post(f"{API}/jobs", self.create_job),
                web.get(f"{API}/jobs/{{id}}", self.get_job),
                web.post(f"{API}/jobs/{{id}}/cancel", self.cancel_job),
                web.get(f"{API}/jobs/{{id}}/events", self.events),
                web.post(f"{API}/run/{{method}}", self.run),
                web.get(f"{API}/secrets", self.secrets),
            ]
        )

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """``ArkoError`` and aiohttp's own errors as the API's JSON error body."""
        try:
            return await handler(request)
        except ArkoError as exc:
            return error_response(http_status(exc.code), exc.code.name, exc.message)
        except web.HTTPException as exc:
            if not request.path.startswith(f"{API}/") or exc.status < 400:
                raise
            return error_response(exc.status, exc.reason.upper().replace(" ", "_"), exc.text or "")

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The client token guards the API as it guards Jobs over gRPC.

        ``/openapi.json`` too: it names every method and message of the
        fleet, and costs the master a build when the fleet changes. The
        UI's files stay open (the UI asks for the token itself).
        """
        guarded = request.path.startswith(f"{API}/") or request.path == "/openapi.json"
        if self._token is not None and guarded:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not tokens_match(self._token, token.strip()):
                log.info("client_refused", path=request.path, reason="missing or wrong token")
                response = error_response(
                    401,
                    "UNAUTHENTICATED",
                    "missing or wrong client token: send 'Authorization: Bearer <token>'",
                )
                response.headers["WWW-Authenticate"] = 'Bearer realm="arko"'
                return response
        return await handler(request)

    @web.middleware
    async def _json_posts(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every POST declares a JSON body, so no other site's page can make one.

        A browser sends a cross-site POST without asking only when its type
        is a plain form or text; ``application/json`` makes it ask first
        (CORS), and this server never says yes. Without this, any web page
        could run jobs on a master that has no client token.
        """
        # Webhooks are signed, so no page can forge one; GitHub may send a form.
        signed = request.path.startswith("/hooks/")
        if request.method == "POST" and not signed and request.content_type != "application/json":
            raise InvalidArgument(
                "send the body as JSON with 'Content-Type: application/json' "
                f"(got {request.content_type or 'none'})"
            )
        return await handler(request)

    # -- the fleet ---------------------------------------------------------

    async def openapi(self, request: web.Request) -> web.Response:
        """``GET /openapi.json``: made from the fleet's descriptors when they change."""
        return web.Response(body=self._openapi.body(), content_type="application/json")

    async def slaves(self, request: web.Request) -> web.Response:
        """``GET /api/v1/slaves``: every slave, in registration order."""
        return web.json_response({"slaves": [slave_json(s) for s in self._registry.slaves()]})

    async def methods(self, request: web.Request) -> web.Response:
        """``GET /api/v1/methods``: each method with the slaves offering it."""
        offering: dict[str, list[Slave]] = {}
        for slave in self._registry.slaves():
            for name in slave.methods:
                offering.setdefault(name, []).append(slave)
        methods = [
            {
                "name": name,
                "slaves": [s.address for s in slaves],
                "live": sum(s.live for s in slaves),
            }
            for name, slaves in sorted(offering.items())
        ]
        return web.json_response({"methods": methods})

    async def method(self, request: web.Request) -> web.Response:
        """``GET /api/v1/methods/{method}``: its request fields, JSON Schema and job policy."""
        found = await locate(self._registry, request.match_info["method"], self._patience)
        return web.json_response(describe_method(found))

    async def secrets(self, request: web.Request) -> web.Response:
        """``GET /api/v1/secrets``: ``arko.v1.ListSecretsResponse`` as JSON; never a value.

        412 when the master has no key file: there is nothing to list, and
        the error says how to give it one.
        """
        try:
            if self._vault is None:
                raise NoSecretsKey()
            rows = await self._vault.list()
        except NoSecretsKey as exc:
            return error_response(412, exc.code.name, exc.message)
        listed = secrets_pb2.ListSecretsResponse(secrets=[secret_message(r) for r in rows])
        return web.json_response(
            json_format.MessageToDict(listed, always_print_fields_with_no_presence=True)
        )

    # -- jobs --------------------------------------------------------------

    async def list_jobs(self, request: web.Request) -> web.Response:
        """``GET /api/v1/jobs?method=&state=&parent_id=&page_size=&page_token=``: newest first.

        ``parent_id`` lists the children a job started (one level: the UI and
        the CLI walk a tree by asking again for each child).
        """
        states = tuple(
            s.strip().lower()
            for raw in request.query.getall("state", [])
            for s in raw.split(",")
            if s.strip()
        )
        rows, token = await self._jobs.list(
            request.query.get("method", ""),
            states,
            _int(request, "page_size"),
            request.query.get("page_token", ""),
            parent_id=request.query.get("parent_id", ""),
        )
        return web.json_response({"jobs": [job_json(r) for r in rows], "next_page_token": token})

    async def get_job(self, request: web.Request) -> web.Response:
        """``GET /api/v1/jobs/{id}``."""
        return web.json_response(job_json(await self._jobs.get(request.match_info["id"])))

    async def cancel_job(self, request: web.Request) -> web.Response:
        """``POST /api/v1/jobs/{id}/cancel``: answers the record once the job has ended."""
        body = await _body(request)
        reason = body.get("reason", "")
        if not isinstance(reason, str):
            raise InvalidArgument("reason must be a string")
        by = f"http:{request.remote}" + (f": {reason.strip()[:256]}" if reason.strip() else "")
        return web.json_response(job_json(await self._jobs.cancel(request.match_info["id"], by)))

    async def create_job(self, request: web.Request) -> web.Response:
        """``POST /api/v1/jobs``: ``{"method", "params", "args"}`` as ``arko.v1.Jobs/Run`` takes."""
        body = await _body(request)
        method = body.get("method")
        if not isinstance(method, str):
            raise InvalidArgument("method must be a string: Service.Method")
        args = body.get("args")
        if args is not None and not isinstance(args, dict):
            raise InvalidArgument("args must be a JSON object")
        return await self._launch(request, method, _string_map(body.get("params"), "params"), args)

    async def run(self, request: web.Request) -> web.Response:
        """``POST /api/v1/run/{Service.Method}``: the body is the request message as JSON."""
        return await self._launch(request, request.match_info["method"], {}, await _body(request))

    async def _launch(
        self,
        request: web.Request,
        method: str,
        params: Mapping[str, str],
        args: dict[str, Any] | None,
    ) -> web.Response:
        """Check the request against the method's descriptor, then run it (or start it)."""
        wait = _flag(request, "wait")
        submission = Submission(method, params, args, detach=not wait)
        self._jobs.check(submission)
        found = await locate(self._registry, method, self._patience)
        if found.method.client_streaming:
            raise Unimplemented(f"{found.name} takes a stream of requests; arko cannot run it")
        # The same conversion the executor makes, done now so a bad field is a
        # 400 naming it and no job record is made for it.
        build_request(found.catalog.message_class(found.method.input_type), params, args)
        job = self._jobs.submit(replace(submission, method=found.name))
        if not wait:
            urls = {
                "job": f"{API}/jobs/{job.id}",
                "events": f"{API}/jobs/{job.id}/events",
                "cancel": f"{API}/jobs/{job.id}/cancel",
                "page": f"/jobs/{job.id}",
            }
            return web.json_response(
                {"id": job.id, "state": job.live.job.state.upper(), "urls": urls},
                status=202,
                headers={"Location": urls["job"]},
            )
        # The record says how it ended; the caller asked for the job, not a status.
        with contextlib.suppress(ArkoError):
            await job.run()
        return web.json_response(job_json(job.live.job.row()))

    async def events(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/v1/jobs/{id}/events``: Server-Sent Events, stored ones first, then live.

        Each event's ``id`` is its sequence number, so a client that reconnects
        with ``Last-Event-ID`` resumes after the last event it saw.
        """
        job_id = request.match_info["id"]
        await self._jobs.get(job_id)  # a bad or unknown id is a 400/404 before the stream opens
        last = request.headers.get("Last-Event-ID", "").strip()
        from_seq = _int(request, "from_seq")
        if last:
            # isdigit() alone takes "²", which int() refuses; 18 digits keep it an int64.
            if not (last.isascii() and last.isdigit() and len(last) <= 18):
                raise InvalidArgument("Last-Event-ID must be a sequence number")
            from_seq = int(last) + 1
        if from_seq < 0:
            raise InvalidArgument(f"from_seq {from_seq} is negative")
        async with sse_response(request) as stream:
            async for event in self._jobs.watch(job_id, from_seq):
                data = json_format.MessageToDict(
                    event_message(job_id.strip(), event), preserving_proto_field_name=True
                )
                await stream.send(json.dumps(data), id=str(event.seq))
        return stream
