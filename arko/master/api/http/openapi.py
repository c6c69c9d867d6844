"""``/openapi.json``: the HTTP API described from the fleet's reflected descriptors.

The fixed part (slaves, methods, jobs, events) is written here once; every
method the fleet can run adds a ``POST /api/v1/run/{Service.Method}`` whose
body schema is its request message in the protobuf JSON mapping. The document
follows the fleet as slaves come, go and change their services; it is
rendered once per change of the fleet's methods (:class:`OpenApiCache`), since
a slave with thousands of methods makes it megabytes and a build takes the
event loop for a quarter of a second.
"""

from __future__ import annotations

import json
from typing import Any

from arko.master.api.http.schema import SchemaBuilder, runnable_methods
from arko.master.jobs.state import JobState
from arko.master.slaves.registry import Registry

OPENAPI_VERSION = "3.0.3"
_REFS = "#/components/schemas/"
# Names of the fixed schemas; a proto message would need the package
# ``arko.http`` to collide with them.
_JOB, _ERROR, _ACCEPTED = "arko.http.Job", "arko.http.Error", "arko.http.Accepted"
_SECRETS = "arko.http.Secrets"
_STATES = [state.upper() for state in JobState]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"{_REFS}{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _json(_ref(_ERROR), "The request is malformed; the message names what is wrong"),
    "404": _json(_ref(_ERROR), "No such job or method"),
}
_AUTH_ERROR = {"401": _json(_ref(_ERROR), "Missing or wrong client token")}
_WAIT = {
    "name": "wait",
    "in": "query",
    "description": "Answer once the job has ended (200 with the job) instead of at once (202)",
    "schema": {"type": "boolean", "default": False},
}
_JOB_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "A job id: 32 lowercase hex digits",
    "schema": {"type": "string"},
}
_STARTED = {
    "200": _json(_ref(_JOB), "With wait=true: the job once it ended, in whatever state"),
    "202": _json(_ref(_ACCEPTED), "The job is accepted and runs on; follow it at its URLs"),
    "413": _json(_ref(_ERROR), "The parameters are too large"),
    **_ERRORS,
}


def _fixed_schemas() -> dict[str, Any]:
    text = {"type": "string"}
    job = {
        "type": "object",
        "description": "A job's record, as arko.v1.Job in the protobuf JSON mapping",
        "properties": {
            "id": text,
            "method": text,
            "params": {"type": "object", "additionalProperties": text},
            "args": {"type": "object"},
            "state": {"type": "string", "enum": _STATES},
            "slave": text,
            "created_at": text,
            "started_at": text,
            "ended_at": text,
            "code": text,
            "error": text,
            "result": {"type": "string", "description": "The slave's last message, as JSON"},
            "cancelled_by": text,
            "detached": {"type": "boolean"},
        },
    }
    error = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {"code": text, "message": text},
                "required": ["code", "message"],
            }
        },
        "required": ["error"],
    }
    accepted = {
        "type": "object",
        "properties": {
            "id": text,
            "state": text,
            "urls": {"type": "object", "additionalProperties": text},
        },
        "required": ["id", "state", "urls"],
    }
    secret = {
        "type": "object",
        "properties": {
            "name": text,
            "methods": {"type": "array", "items": text},
            "createdAt": text,
            "updatedAt": text,
        },
    }
    secrets = {
        "type": "object",
        "description": "arko.v1.ListSecretsResponse in the protobuf JSON mapping",
        "properties": {"secrets": {"type": "array", "items": secret}},
        "required": ["secrets"],
    }
    return {_JOB: job, _ERROR: error, _ACCEPTED: accepted, _SECRETS: secrets}


def _fixed_paths() -> dict[str, Any]:
    listed = _json({"type": "object"}, "OK")
    return {
        "/api/v1/slaves": {
            "get": {
                "summary": "The slaves: status, methods, capacity, running jobs, labels",
                "operationId": "listSlaves",
                "responses": {"200": listed},
            }
        },
        "/api/v1/methods": {
            "get": {
                "summary": "Every method of the fleet, with the slaves offering it",
                "operationId": "listMethods",
                "responses": {"200": listed},
            }
        },
        "/api/v1/triggers": {
            "get": {
                "summary": "Triggers and schedules (arko.v1.Admin/ListTriggers as JSON): "
                "each with its last job, a schedule's next time",
                "operationId": "listTriggers",
                "responses": {"200": listed},
            }
        },
        "/api/v1/methods/{method}": {
            "get": {
                "summary": "A method's request fields, JSON Schema and job policy",
                "operationId": "describeMethod",
                "parameters": [
                    {
                        "name": "method",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "Service.Method",
                    }
                ],
                "responses": {"200": listed, **_ERRORS},
            }
        },
        "/api/v1/jobs": {
            "get": {
                "summary": "Jobs, newest first, filtered by method, state and parent, paged",
                "operationId": "listJobs",
                "parameters": [
                    {"name": "method", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "state",
                        "in": "query",
                        "schema": {"type": "string", "enum": [state.value for state in JobState]},
                    },
                    {
                        "name": "page_size",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0, "maximum": 1000},
                    },
                    {"name": "page_token", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "parent_id",
                        "in": "query",
                        "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                        "description": "Only the jobs this job started (its children)",
                    },
                ],
                "responses": {"200": listed, "400": _ERRORS["400"]},
            },
            "post": {
                "summary": "Run a job with string params and/or typed args (as arko.v1.Jobs/Run)",
                "operationId": "createJob",
                "parameters": [_WAIT],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["method"],
                                "properties": {
                                    "method": {"type": "string"},
                                    "params": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                    },
                                    "args": {"type": "object"},
                                },
                            }
                        }
                    },
                },
                "responses": _STARTED,
            },
        },
        "/api/v1/jobs/{id}": {
            "get": {
                "summary": "One job's record",
                "operationId": "getJob",
                "parameters": [_JOB_ID],
                "responses": {"200": _json(_ref(_JOB), "The job"), **_ERRORS},
            }
        },
        "/api/v1/jobs/{id}/cancel": {
            "post": {
                "summary": "Cancel a queued or running job; answers its record once it ended",
                "operationId": "cancelJob",
                "parameters": [_JOB_ID],
                "responses": {"200": _json(_ref(_JOB), "The job, ended"), **_ERRORS},
            }
        },
        "/api/v1/secrets": {
            "get": {
                "summary": "The master's secrets by name: their method globs and times, "
                "never their values (arko.v1.ListSecretsResponse as JSON)",
                "operationId": "listSecrets",
                "responses": {
                    "200": _json(_ref(_SECRETS), "The secrets"),
                    "412": _json(_ref(_ERROR), "The master has no --secrets_key_file"),
                },
            }
        },
        "/api/v1/jobs/{id}/events": {
            "get": {
                "summary": "The job's events as Server-Sent Events: kept ones, then live ones",
                "operationId": "jobEvents",
                "parameters": [
                    _JOB_ID,
                    {
                        "name": "from_seq",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "One event per message (data: arko.v1.JobEvent as JSON)",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_ERRORS,
                },
            }
        },
    }


def openapi_document(registry: Registry, token_required: bool) -> dict[str, Any]:
    """The OpenAPI 3 document of this master's HTTP API and of its fleet's methods now."""
    builder = SchemaBuilder(_REFS)
    paths = _fixed_paths()
    for found in runnable_methods(registry):
        desc = found.method
        body = builder.message(desc.input_type)
        kind = "streams its messages" if desc.server_streaming else "answers one message"
        paths[f"/api/v1/run/{found.name}"] = {
            "post": {
                "summary": f"Run {found.name} ({kind}); the body is {desc.input_type.full_name}",
                "operationId": f"run.{found.name}",
                "tags": [desc.containing_service.full_name],
                "parameters": [_WAIT],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                },
                "responses": _STARTED,
            }
        }
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "arko master",
            "version": "1",
            "description": "Every slave method as an HTTP endpoint; jobs, their output and history",
        },
        "paths": paths,
        "components": {"schemas": {**_fixed_schemas(), **builder.definitions}},
    }
    if token_required:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for operations in paths.values():  # every path is under /api/v1/
            for operation in operations.values():
                operation["security"] = [{"bearer": []}]
                operation["responses"] = {**operation["responses"], **_AUTH_ERROR}
    return document


class OpenApiCache:
    """The rendered document, rebuilt only when the registry's methods version moves.

    Args:
        registry: The fleet whose methods the document describes.
        token_required: Whether the API wants the client token (declared in it).
    """

    def __init__(self, registry: Registry, token_required: bool) -> None:
        self._registry = registry
        self._token_required = token_required
        self._version = -1
        self._body = b""

    def body(self) -> bytes:
        """The document as JSON bytes, as of the fleet's methods now."""
        version = self._registry.methods_version
        if version != self._version:
            document = openapi_document(self._registry, self._token_required)
            self._body = json.dumps(document, separators=(",", ":")).encode()
            self._version = version
        return self._body
