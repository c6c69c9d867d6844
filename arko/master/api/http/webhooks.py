"""``POST /hooks/{name}``: a forge's webhook, handed to the triggers' core.

No client token here: a forge cannot send one, and the delivery's signature
is the credential (checked by :class:`arko.master.triggers.hooks.Hooks`).
Errors become the API's JSON error body in the API's ``_errors`` middleware.
"""

from __future__ import annotations

from aiohttp import web

from arko.master.api.http.api import API, error_response
from arko.master.triggers.hooks import Hooks

HOOKS = "/hooks/"


class Webhooks:
    """The webhook route over :class:`Hooks`."""

    def __init__(self, hooks: Hooks) -> None:
        self._hooks = hooks

    def add_routes(self, app: web.Application) -> None:
        """Mount ``POST /hooks/{name}``."""
        app.router.add_post(f"{HOOKS}{{name}}", self.deliver)

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
