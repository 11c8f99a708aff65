"""Contacts: the list and the contact page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from rapport.domain import events
from rapport.domain.contacts.actions import update_contact
from rapport.domain.contacts.merge_queries import survivor_of
from rapport.domain.contacts.queries import (
    conversations_of,
    get_contact,
    identities_of,
    search_contacts,
)
from rapport.web.deps import CurrentAgent, DbSession
from rapport.web.templating import render

router = APIRouter(prefix="/contacts", include_in_schema=False)

PAGE = 50


@router.get("")
async def contact_list(
    request: Request,
    agent: CurrentAgent,
    session: DbSession,
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    contacts = await search_contacts(
        session, account_id=agent.account.id, text=q, limit=PAGE + 1, offset=(page - 1) * PAGE
    )
    context = {"contacts": contacts[:PAGE], "q": q, "page": page, "has_more": len(contacts) > PAGE}
    if request.headers.get("hx-target") == "contact-results":
        return render(request, "contacts/_results.html", context)
    return render(request, "contacts/index.html", context)


@router.get("/{contact_id}")
async def contact_page(
    request: Request, contact_id: int, agent: CurrentAgent, session: DbSession
) -> Response:
    contact = await get_contact(session, account_id=agent.account.id, contact_id=contact_id)
    if contact.merged_into_id is not None:
        survivor = await survivor_of(session, contact=contact)
        return RedirectResponse(f"/contacts/{survivor.id}", status_code=303)
    return render(
        request,
        "contacts/show.html",
        {
            "contact": contact,
            "identities": await identities_of(session, contact.id),
            "conversations": await conversations_of(
                session, contact.id, viewer=agent.viewer, limit=50
            ),
        },
    )


@router.post("/{contact_id}")
async def edit_contact(
    contact_id: int,
    agent: CurrentAgent,
    session: DbSession,
    name: Annotated[str, Form(max_length=200)] = "",
    company: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    contact = await get_contact(session, account_id=agent.account.id, contact_id=contact_id)
    await update_contact(session, contact=contact, name=name, company=company)
    await events.commit(session)
    return RedirectResponse(f"/contacts/{contact_id}", status_code=303)
