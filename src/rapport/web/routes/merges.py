"""Suggested merges: review pairs side by side, merge or dismiss; undo a merge."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from rapport.domain import events
from rapport.domain.contacts import merge
from rapport.domain.contacts.merge_queries import merges_into, pending_count, review_queue
from rapport.domain.contacts.queries import get_contact, search_contacts
from rapport.web.deps import CurrentAgent, DbSession
from rapport.web.templating import render

# Included before the contacts router, so /contacts/merges is not read as a contact id.
router = APIRouter(prefix="/contacts", include_in_schema=False)


@router.get("/merges")
async def suggested_merges(
    request: Request,
    agent: CurrentAgent,
    session: DbSession,
    contact_id: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """The review page: pending suggestions, best first (one contact's, when asked)."""
    focus = None
    if contact_id is not None:
        focus = await get_contact(session, account_id=agent.account.id, contact_id=contact_id)
    pairs = await review_queue(session, account_id=agent.account.id, contact_id=contact_id)
    return render(request, "contacts/merges.html", {"pairs": pairs, "focus": focus})


@router.get("/merges/count")
async def suggested_count(agent: CurrentAgent, session: DbSession) -> Response:
    """The number shown next to the link on the contacts list (empty when none)."""
    count = await pending_count(session, account_id=agent.account.id)
    return Response(str(count) if count else "", media_type="text/plain")


@router.post("/merges/{suggestion_id}/accept")
async def accept(
    suggestion_id: int,
    agent: CurrentAgent,
    session: DbSession,
    survivor_id: Annotated[int, Form()],
) -> Response:
    record = await merge.accept_suggestion(
        session,
        account_id=agent.account.id,
        suggestion_id=suggestion_id,
        survivor_id=survivor_id,
        actor_user_id=agent.user.id,
    )
    await events.commit(session)
    return RedirectResponse(f"/contacts/{record.survivor_id}", status_code=303)


@router.post("/merges/{suggestion_id}/dismiss")
async def dismiss(suggestion_id: int, agent: CurrentAgent, session: DbSession) -> Response:
    await merge.dismiss_suggestion(
        session,
        account_id=agent.account.id,
        suggestion_id=suggestion_id,
        actor_user_id=agent.user.id,
    )
    await events.commit(session)
    return RedirectResponse("/contacts/merges", status_code=303)


@router.get("/{contact_id}/merges")
async def merge_panel(
    request: Request, contact_id: int, agent: CurrentAgent, session: DbSession
) -> Response:
    """The contact page's box: suggestions for this contact and the merges it can undo."""
    contact = await get_contact(session, account_id=agent.account.id, contact_id=contact_id)
    return render(
        request,
        "contacts/_merge_panel.html",
        {
            "contact": contact,
            "pairs": await review_queue(
                session, account_id=agent.account.id, contact_id=contact.id
            ),
            "merges": await merges_into(
                session, account_id=agent.account.id, contact_id=contact.id
            ),
        },
    )


@router.post("/{contact_id}/merges/scan")
async def scan(contact_id: int, agent: CurrentAgent, session: DbSession) -> Response:
    """Look for this contact's duplicates again now."""
    await merge.suggest_merges(session, account_id=agent.account.id, contact_id=contact_id)
    await events.commit(session)
    return RedirectResponse(f"/contacts/merges?contact_id={contact_id}", status_code=303)


@router.get("/{contact_id}/merges/candidates")
async def candidates(
    request: Request,
    contact_id: int,
    agent: CurrentAgent,
    session: DbSession,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Contacts an agent may merge into this one by hand (search by name, company, address)."""
    contact = await get_contact(session, account_id=agent.account.id, contact_id=contact_id)
    found = []
    if q.strip():
        found = await search_contacts(session, account_id=agent.account.id, text=q, limit=11)
    return render(
        request,
        "contacts/_merge_candidates.html",
        {"contact": contact, "candidates": [c for c in found if c.id != contact.id][:10], "q": q},
    )


@router.post("/{contact_id}/merges")
async def merge_by_hand(
    contact_id: int,
    agent: CurrentAgent,
    session: DbSession,
    merged_id: Annotated[int, Form()],
) -> Response:
    """Merge another contact into this one, without a suggestion."""
    await merge.merge_contacts(
        session,
        account_id=agent.account.id,
        survivor_id=contact_id,
        merged_id=merged_id,
        actor_user_id=agent.user.id,
    )
    await events.commit(session)
    return RedirectResponse(f"/contacts/{contact_id}", status_code=303)


@router.post("/merged/{merge_id}/undo")
async def unmerge(merge_id: int, agent: CurrentAgent, session: DbSession) -> Response:
    _survivor, restored = await merge.unmerge_contacts(
        session, account_id=agent.account.id, merge_id=merge_id, actor_user_id=agent.user.id
    )
    await events.commit(session)
    return RedirectResponse(f"/contacts/{restored.id}", status_code=303)
