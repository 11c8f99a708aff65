"""CSRF protection for every state-changing request made with the session cookie.

The token lives in the signed session; forms carry it as `csrf_token`, htmx and fetch send it as
the X-CSRF-Token header. Provider webhooks, the token-authenticated JSON API and the public
widget API carry no session cookie, so they are outside this check by construction.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qs

from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
EXEMPT_PREFIXES = ("/hooks/", "/api/", "/widget/api/", "/sandbox/provider/")
FORM_LIMIT = 1024 * 1024


def csrf_token(conn: HTTPConnection) -> str:
    """The session's CSRF token, created on first use."""
    token = conn.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        conn.session["csrf"] = token
    return str(token)


class CsrfMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in SAFE_METHODS
            or scope["path"].startswith(EXEMPT_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        expected = str(scope.get("session", {}).get("csrf", ""))
        headers = dict(scope["headers"])
        supplied = headers.get(b"x-csrf-token", b"").decode("latin-1")
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        body: bytes | None = None
        if not supplied and content_type.startswith("application/x-www-form-urlencoded"):
            body = await _read_body(receive, FORM_LIMIT)
            supplied = parse_qs(body.decode("latin-1")).get("csrf_token", [""])[0]
        if not expected or not hmac.compare_digest(expected, supplied):
            response = PlainTextResponse(
                "This form expired. Reload the page and try again.", status_code=403
            )
            await response(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive) if body is not None else receive, send)


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            break
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
