"""Who may use the public widget API: the inbox named by its public token, the embedding site's
Origin (the inbox's allowed-origins list), rate limits, and the visitor token a browser keeps.

The widget API carries no cookie: a visitor proves themselves with `Authorization: Bearer
<visitor token>`. CORS answers name only an allowed origin and never allow credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rapport.channels.registry import inbox_adapter
from rapport.channels.webchat import WebchatConfig
from rapport.domain.accounts.models import Account
from rapport.domain.errors import NotFound
from rapport.domain.inboxes.business_hours import ScheduleError
from rapport.domain.inboxes.models import Inbox
from rapport.domain.inboxes.queries import inbox_by_public_token
from rapport.domain.visitors.models import VisitorSession
from rapport.domain.visitors.queries import visit_by_token
from rapport.lib.clock import utcnow
from rapport.services import Services
from rapport.web import ratelimit
from rapport.web.deps import DbSession, Svc

API_PREFIX = "/widget/api/"
CORS_STATE = "widget_cors_origin"
ALLOW_HEADERS = "Authorization, Content-Type"
ACCEPTED_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")


@dataclass(frozen=True)
class Widget:
    inbox: Inbox
    account: Account
    config: WebchatConfig


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def load_widget(
    session: AsyncSession, services: Services, public_token: str, origin: str | None
) -> Widget:
    """The active webchat inbox with this public token, if the calling site may embed it."""
    inbox = await inbox_by_public_token(session, public_token)
    if inbox.channel != "webchat":
        raise NotFound("inbox")
    config: WebchatConfig = inbox_adapter(inbox, services.box)[1]
    if not config.origin_allowed(origin):
        raise HTTPException(403, "this site may not embed the chat")
    account = await session.get(Account, inbox.account_id)
    assert account is not None
    return Widget(inbox, account, config)


async def _widget(public_token: str, request: Request, session: DbSession, services: Svc) -> Widget:
    origin = request.headers.get("origin")
    if not await ratelimit.hit(
        services, services.settings.widget_rate_limit, "widget-ip", client_address(request)
    ):
        # Refused before the site is checked; the answer holds nothing, so the CORS headers
        # let the widget read it (and Retry-After) and tell the visitor to wait.
        if origin:
            request.state.widget_cors_origin = origin
        raise HTTPException(
            429, "too many requests; try again in a minute", headers={"Retry-After": "60"}
        )
    widget = await load_widget(session, services, public_token, origin)
    if origin:
        request.state.widget_cors_origin = origin
    return widget


WidgetDep = Annotated[Widget, Depends(_widget)]


async def _visit(request: Request, widget: WidgetDep, session: DbSession) -> VisitorSession:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "start a session first")
    try:
        return await visit_by_token(session, inbox_id=widget.inbox.id, token=token.strip())
    except NotFound:
        raise HTTPException(401, "this chat session has ended; start a new one") from None


VisitDep = Annotated[VisitorSession, Depends(_visit)]


async def limit_visit(services: Services, limit: str, scope: str, visit: VisitorSession) -> None:
    if not await ratelimit.hit(services, limit, scope, str(visit.id)):
        raise HTTPException(
            429, "slow down a little; try again in a minute", headers={"Retry-After": "60"}
        )


@dataclass(frozen=True)
class Availability:
    status: str  # online, away (nobody connected), closed (outside business hours)
    next_open: datetime | None


async def availability(services: Services, widget: Widget) -> Availability:
    """Honest status for the visitor: inside business hours and an agent has the inbox open?"""
    now = utcnow()
    try:
        schedule = widget.config.schedule(widget.account.timezone or "UTC")
    except ScheduleError:
        schedule = None
    if schedule is not None and not schedule.is_open(now):
        return Availability("closed", schedule.next_opening(now))
    online = await services.presence.agents_online(widget.account.id) if services.presence else {}
    return Availability("online" if online else "away", None)


class WidgetCorsMiddleware:
    """Adds the CORS answer to widget API responses once the Origin passed the inbox's list."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                origin = scope.get("state", {}).get(CORS_STATE)
                headers = list(message.get("headers", []))
                headers.append((b"vary", b"Origin"))
                if origin:
                    headers += [
                        (b"access-control-allow-origin", origin.encode("latin-1")),
                        (b"access-control-expose-headers", b"Retry-After"),
                    ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, add_headers)
