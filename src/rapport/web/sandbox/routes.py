"""The sandbox page: play a customer on any sandbox inbox and watch Rapport answer (demo only).

The page is also a website with the account's chat widget on it (the real `/widget.js`), so the
newcomer can be a website visitor too, then write from their phone as the same person.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from rapport.channels.registry import adapter_for
from rapport.channels.webchat.config import WebchatConfig
from rapport.domain import events
from rapport.domain.contacts.queries import recent_identities
from rapport.domain.errors import InvalidInput, NotFound
from rapport.domain.inboxes.models import Inbox
from rapport.domain.inboxes.queries import get_inbox, inbox_config, inboxes_of
from rapport.services import Services
from rapport.web.deps import CurrentAgent, DbSession, Svc
from rapport.web.observability import CSP
from rapport.web.sandbox.catalog import Sandbox
from rapport.web.sandbox.common import CustomerMessage, FakeProvider, SandboxInbox
from rapport.web.templating import CHANNEL_LABELS, render

router = APIRouter(prefix="/sandbox", include_in_schema=False)

# Customers who have never written yet, to start a conversation from scratch.
NEW_CUSTOMERS = {
    "phone": [("+34699000111", "Nuria Campos"), ("+14155550142", "Jordan Blake")],
    "telegram": [("5550001", "Lucía Núñez"), ("5550002", "Aiden Park")],
    "messenger": [("7310000000000001", "Inés Prieto"), ("7310000000000002", "Marcus Reid")],
    "instagram": [("1790000000000001", "Valeria Ortiz"), ("1790000000000002", "Sam Carter")],
}


# The widget styles its Shadow DOM with a <style> element: this page (demo only) allows it.
WIDGET_PAGE_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
# Channels listed in the order Rapport lists them everywhere (CHANNEL_LABELS), then by name.
CHANNEL_ORDER = {kind: rank for rank, kind in enumerate(CHANNEL_LABELS)}
# The number the page suggests to a website visitor: no demo customer holds it.
STORY_PHONE = "+34 699 000 333"


def _sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox | None = getattr(request.app.state, "sandbox", None)
    if sandbox is None:
        raise NotFound("sandbox")
    return sandbox


def _played(
    services: Services, sandbox: Sandbox, inbox: Inbox
) -> tuple[SandboxInbox, FakeProvider] | None:
    played = SandboxInbox(
        id=inbox.id,
        name=inbox.name,
        channel=inbox.channel,
        config=inbox_config(inbox, services.box),
        webhook_url=services.settings.public_url
        + adapter_for(inbox.channel).webhook_path(inbox.id),
    )
    provider = next((p for p in sandbox.providers if p.plays(played)), None)
    return (played, provider) if provider is not None and inbox.is_active else None


async def _sandbox_inboxes(
    session: AsyncSession, services: Services, sandbox: Sandbox, account_id: int
) -> list[tuple[SandboxInbox, FakeProvider]]:
    found = [_played(services, sandbox, i) for i in await inboxes_of(session, account_id)]
    pairs = [pair for pair in found if pair is not None]
    return sorted(pairs, key=lambda pair: CHANNEL_ORDER.get(pair[0].channel, len(CHANNEL_ORDER)))


async def _customers(session: AsyncSession, account_id: int, channel: str) -> list[tuple[str, str]]:
    kind = adapter_for(channel).policy.identity_kind or ""
    known = await recent_identities(session, account_id=account_id, kind=kind)
    customers = [(identity.value, contact.display_name) for identity, contact in known]
    values = {value for value, _ in customers}
    return customers + [c for c in NEW_CUSTOMERS.get(kind, []) if c[0] not in values]


async def _website(
    session: AsyncSession, services: Services, account_id: int, origin: str
) -> Inbox | None:
    """The account's first chat widget that may be embedded on this page, if any."""
    for inbox in await inboxes_of(session, account_id):
        if inbox.channel == "webchat" and inbox.is_active:
            config = WebchatConfig.model_validate(inbox_config(inbox, services.box))
            if config.origin_allowed(origin):
                return inbox
    return None


def _thread(pair: tuple[SandboxInbox, FakeProvider], customer: str) -> list[Any]:
    inbox, provider = pair
    return provider.transcript.thread(provider.thread_of(inbox, customer)) if customer else []


@router.get("")
async def sandbox_page(
    request: Request,
    agent: CurrentAgent,
    session: DbSession,
    services: Svc,
    inbox: int | None = None,
    customer: str = "",
    name: str = "",
) -> Response:
    sandbox = _sandbox(request)
    pairs = await _sandbox_inboxes(session, services, sandbox, agent.account.id)
    selected = next((p for p in pairs if p[0].id == inbox), pairs[0] if pairs else None)
    customers = await _customers(session, agent.account.id, selected[0].channel) if selected else []
    if selected and not customer and customers:
        customer, name = customers[0]
    origin = str(request.base_url).rstrip("/")
    website = await _website(session, services, agent.account.id, origin)
    response = render(
        request,
        "sandbox/index.html",
        {
            "nav": "sandbox",
            "pairs": pairs,
            "selected": selected,
            "customers": customers,
            "customer": customer,
            "name": name or dict(customers).get(customer, ""),
            "entries": _thread(selected, customer) if selected else [],
            "outbound_allowed": services.settings.http_allow_private,
            "website": website,
            "story_phone": STORY_PHONE,
        },
    )
    if website is not None:
        response.headers["Content-Security-Policy"] = WIDGET_PAGE_CSP
    return response


async def _selected(
    request: Request, session: AsyncSession, services: Services, account_id: int, inbox_id: int
) -> tuple[SandboxInbox, FakeProvider]:
    inbox = await get_inbox(session, account_id=account_id, inbox_id=inbox_id)
    pair = _played(services, _sandbox(request), inbox)
    if pair is None:
        raise NotFound("inbox")
    return pair


@router.get("/thread")
async def sandbox_thread(
    request: Request,
    agent: CurrentAgent,
    session: DbSession,
    services: Svc,
    inbox: int,
    customer: str,
) -> Response:
    pair = await _selected(request, session, services, agent.account.id, inbox)
    return render(
        request, "sandbox/_thread.html", {"entries": _thread(pair, customer), "selected": pair}
    )


@router.post("/send")
async def sandbox_send(
    request: Request,
    agent: CurrentAgent,
    session: DbSession,
    services: Svc,
    inbox_id: Annotated[int, Form()],
    customer: Annotated[str, Form(min_length=1, max_length=64)],
    name: Annotated[str, Form(max_length=120)] = "",
    text: Annotated[str, Form(max_length=4096)] = "",
    call_seconds: Annotated[int | None, Form(ge=0, le=36000)] = None,
) -> Response:
    pair = await _selected(request, session, services, agent.account.id, inbox_id)
    if not text.strip() and call_seconds is None:
        raise InvalidInput("write a message first", field="text")
    inbox, provider = pair
    message = CustomerMessage(
        customer=customer.strip(), name=name.strip(), text=text, call_seconds=call_seconds
    )
    # The request's own transaction holds SQLite's write lock; end it before the webhook below
    # is stored by its own transaction, or the two would wait for each other.
    await events.commit(session)
    await provider.customer_says(inbox, message, _sandbox(request).deliver)
    return render(
        request,
        "sandbox/_thread.html",
        {"entries": _thread(pair, message.customer), "selected": pair},
    )
