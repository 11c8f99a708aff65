"""The website widget, public side: the script, its settings, visitor sessions and identity.

Embedding is one tag: `<script src="https://HOST/widget.js" data-inbox="PUBLIC_TOKEN" async>`.
Everything under /widget/api/{public_token}/ is called by that script from the customer's site
(CORS, no cookies, a visitor token in the Authorization header).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response

from rapport.channels.webchat.identity import IdentityRefused, Proven, verify_jwt, verify_user_hash
from rapport.domain import events
from rapport.domain.errors import NotFound
from rapport.domain.visitors import actions as visitor_actions
from rapport.domain.visitors.models import VisitorSession
from rapport.domain.visitors.queries import visit_by_token
from rapport.web import ratelimit
from rapport.web.deps import DbSession, Svc
from rapport.web.schemas import (
    WidgetAvailability,
    WidgetConfigRead,
    WidgetDetails,
    WidgetIdentify,
    WidgetSessionRead,
    WidgetSessionStart,
)
from rapport.web.widget_access import (
    ACCEPTED_TYPES,
    ALLOW_HEADERS,
    VisitDep,
    WidgetDep,
    availability,
    client_address,
    limit_visit,
    load_widget,
)

router = APIRouter(include_in_schema=False)

SCRIPT = Path(__file__).resolve().parents[1] / "static" / "widget.js"


@router.get("/widget.js")
async def widget_script() -> Response:
    """The widget itself: any site may load it; it only talks to inboxes that allow that site."""
    return FileResponse(
        SCRIPT,
        media_type="text/javascript; charset=utf-8",
        headers={
            "Cache-Control": "public, max-age=300",
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )


@router.options("/widget/api/{public_token}/{rest:path}")
async def preflight(
    public_token: str, rest: str, request: Request, session: DbSession, services: Svc
) -> Response:
    """CORS preflight: allowed only for the sites on the inbox's list (any site when empty)."""
    origin = request.headers.get("origin")
    await load_widget(session, services, public_token, origin)
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": origin or "*",
            "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        },
    )


@router.get("/widget/api/{public_token}/config", response_model=WidgetConfigRead)
async def widget_config(widget: WidgetDep, services: Svc) -> WidgetConfigRead:
    config = widget.config
    now = await availability(services, widget)
    return WidgetConfigRead(
        name=widget.inbox.name,
        colour=config.colour,
        greeting=config.greeting,
        avatar_url=str(config.avatar_url) if config.avatar_url else None,
        position=config.position,
        pre_chat=config.pre_chat(),
        offline_message=config.offline_message,
        availability=WidgetAvailability(status=now.status, next_open=now.next_open),
        max_upload_bytes=services.settings.widget_max_upload_bytes,
        accepted_types=list(ACCEPTED_TYPES),
    )


def _session_read(visit: VisitorSession, token: str) -> WidgetSessionRead:
    details = {k: str(v) for k, v in visit.details.items() if k in visitor_actions.DETAIL_FIELDS}
    return WidgetSessionRead(
        token=token,
        conversation_id=visit.conversation_id,
        identified=visit.verified_as is not None,
        details=details,
    )


@router.post("/widget/api/{public_token}/session", response_model=WidgetSessionRead)
async def start_session(
    body: WidgetSessionStart, widget: WidgetDep, session: DbSession
) -> WidgetSessionRead:
    """Resume the session whose token the browser kept, or start a new one."""
    if body.token:
        try:
            visit = await visit_by_token(session, inbox_id=widget.inbox.id, token=body.token)
        except NotFound:
            pass
        else:
            await visitor_actions.touch_visit(session, visit=visit)
            await events.commit(session)
            return _session_read(visit, body.token)
    visit, token = await visitor_actions.start_visit(
        session, inbox=widget.inbox, locale=body.locale
    )
    await events.commit(session)
    return _session_read(visit, token)


@router.post("/widget/api/{public_token}/details", response_model=WidgetSessionRead)
async def save_details(
    body: WidgetDetails, request: Request, widget: WidgetDep, visit: VisitDep, session: DbSession
) -> WidgetSessionRead:
    """Pre-chat answers and the offline email: kept, and added to the contact as claims."""
    await visitor_actions.add_visitor_details(
        session,
        account=widget.account,
        visit=visit,
        details=visitor_actions.Details(name=body.name, email=body.email, phone=body.phone),
    )
    await events.commit(session)
    return _session_read(visit, _bearer(request))


def _bearer(request: Request) -> str:
    return request.headers.get("authorization", "").partition(" ")[2].strip()


def _proof(widget_token: str, body: WidgetIdentify, widget: WidgetDep) -> Proven:
    if body.token.strip():
        return verify_jwt(widget.config, token=body.token, audience=widget_token)
    return verify_user_hash(
        widget.config,
        user_id=body.user_id,
        email=body.email,
        user_hash=body.user_hash,
        name=body.name,
    )


@router.post("/widget/api/{public_token}/identify", response_model=WidgetSessionRead)
async def identify(
    public_token: str,
    body: WidgetIdentify,
    request: Request,
    widget: WidgetDep,
    visit: VisitDep,
    session: DbSession,
    services: Svc,
) -> WidgetSessionRead:
    """Link the visitor to the person the site proved (HMAC or JWT); bad proof: 401, no change."""
    await limit_visit(
        services, services.settings.widget_identify_rate_limit, "widget-identify", visit
    )
    if not await ratelimit.hit(
        services,
        services.settings.widget_identify_rate_limit,
        "widget-identify-ip",
        client_address(request),
    ):
        raise HTTPException(429, "too many attempts; try again later")
    try:
        proven = _proof(public_token, body, widget)
    except IdentityRefused:
        raise HTTPException(401, "identity not verified") from None
    await visitor_actions.identify_visitor(
        session,
        account=widget.account,
        inbox=widget.inbox,
        visit=visit,
        proven=proven.claims,
        name=proven.name or body.name,
    )
    await events.commit(session)
    return _session_read(visit, _bearer(request))
