"""The triggers' HTTP routes: ``POST /hooks/{name}`` and ``GET /api/v1/triggers``.

No client token on ``/hooks/``: a forge cannot send one, and the delivery's
signature is the credential (checked by
:class:`arko.master.triggers.hooks.Hooks`). ``/api/v1/triggers`` is under
the API and its token like every other ``/api/v1`` route. Errors become the
API's JSON error body in the API's ``_errors`` middleware.
"""

from __future__ import annotations

from aiohttp import web
from google.protobuf import json_format

from arko.master.api.admin import trigger_message
from arko.master.api.http.api import API, error_response
from arko.master.triggers.hooks import Hooks
from arko.master.triggers.overview import Overview

HOOKS = "/hooks/"


class TriggerRoutes:
    """The webhook route over :class:`Hooks`, and the listing over :class:`Overview`."""

    def __init__(self, hooks: Hooks, overview: Overview) -> None:
        self._hooks = hooks
        self._overview = overview

    def add_routes(self, app: web.Application) -> None:
        """Mount ``POST /hooks/{name}`` and ``GET /api/v1/triggers``."""
        app.router.add_post(f"{HOOKS}{{name}}", self.deliver)
        app.router.add_get(f"{API}/triggers", self.list)

    async def list(self, request: web.Request) -> web.Response:
        """``GET /api/v1/triggers``: as ``arko.v1.Admin/ListTriggers`` answers, in JSON."""
        triggers = [
            json_format.MessageToDict(trigger_message(v), preserving_proto_field_name=True)
            for v in await self._overview.list()
        ]
        return web.json_response({"triggers": triggers})

    async def deliver(self, request: web.Request) -> web.Response:
        """202 ``{"job_id"}`` with Location when a job starts; 200 when skipped or seen."""
        name = request.match_info["name"]
        self._hooks.find(name)  # 404 before the body is read
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            return error_response(413, "RESOURCE_EXHAUSTED", exc.text or "the body is too large")
        answer = await self._hooks.deliver(name, request.headers, body)
        if answer.skipped:
            return web.json_response({"skipped": answer.skipped})
        if answer.duplicate:
            return web.json_response({"job_id": answer.job_id, "duplicate": True})
        location = f"{API}/jobs/{answer.job_id}"
        return web.json_response(
            {"job_id": answer.job_id}, status=202, headers={"Location": location}
        )
