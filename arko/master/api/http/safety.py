"""What every HTTP response of the master carries, and the last answer to a handler's bug.

The headers keep a browser from doing more with the master's pages than the
UI needs: scripts, styles and connections from the master itself only, no
framing by another site (clickjacking), no guessing a body's type, and no
master URLs (job ids) leaked to other sites in ``Referer``.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from arko.master.api.http.api import Handler, error_response

log = structlog.get_logger("arko.master.api.http")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every response, file, stream and error alike, gets them."""
    response.headers.update(SECURITY_HEADERS)


@web.middleware
async def last_resort(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An exception no handler expected becomes a plain 500 that tells the client nothing.

    Known bad input is answered where it is read (4xx naming it); this only
    catches bugs. Their traceback goes to the master's log, where it helps,
    and never to the client.
    """
    try:
        return await handler(request)
    except (web.HTTPException, ConnectionError):
        # An answer already chosen, or a client gone: neither is a bug.
        raise
    except Exception:
        log.exception("http_request_failed", method=request.method, path=request.path[:200])
        return error_response(500, "INTERNAL", "the master failed on this request; see its log")
