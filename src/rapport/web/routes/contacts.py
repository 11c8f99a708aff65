"""Contacts: the list and the customer 360 page (profile, attributes, labels, timeline)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from rapport.domain import events
from rapport.domain.contacts import actions
from rapport.domain.contacts.merge_queries import survivor_of
from rapport.domain.contacts.models import Contact
from rapport.domain.contacts.queries import (
    attribute_definitions,
    attribute_rows,
    contact_timeline,
    conversations_of,
    get_contact,
    get_label,
    identities_of,
    labels_of,
    labels_of_account,
    search_contacts,
)
from rapport.domain.conversations.queries import names_by_id
from rapport.domain.errors import InvalidInput
from rapport.web.deps import Agent, CurrentAgent, DbSession
from rapport.web.templating import gettext_for, render

router = APIRouter(prefix="/contacts", include_in_schema=False)

PAGE = 50
TIMELINE_PAGE = 30
ATTRIBUTE_PREFIX = "attr."


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


async def _page_context(session: AsyncSession, agent: Agent, contact: Contact) -> dict[str, Any]:
    definitions = await attribute_definitions(session, account_id=agent.account.id)
    return {
        "contact": contact,
        "identities": await identities_of(session, contact.id),
        "attributes": attribute_rows(contact, definitions),
        "labels": await labels_of(session, contact.id),
        "all_labels": await labels_of_account(session, account_id=agent.account.id),
        "conversations": await conversations_of(session, contact.id, viewer=agent.viewer, limit=50),
        "timeline": await contact_timeline(
            session,
            account_id=agent.account.id,
            contact_id=contact.id,
            before=None,
            limit=TIMELINE_PAGE,
            viewer=agent.viewer,
        ),
        "names": await names_by_id(session, agent.account.id),
        "errors": {},
        "submitted": {},
    }


@router.get("/{contact_id}")
async def contact_page(
    request: Request, contact_id: int, agent: CurrentAgent, session: DbSession
) -> Response:
    contact = await get_contact(session, account_id=agent.account.id, contact_id=contact_id)
    if contact.merged_into_id is not None:
        survivor = await survivor_of(session, contact=contact)
        return RedirectResponse(f"/contacts/{survivor.id}", status_code=303)
    return render(request, "contacts/show.html", await _page_context(session, agent, contact))


@router.get("/{contact_id}/timeline")
async def older_timeline(
    request: Request,
    contact_id: int,
    agent: CurrentAgent,
    session: DbSession,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    contact = await get_contact(session, account_id=agent.account.id, contact_id=contact_id)
    page = await contact_timeline(
        session,
        account_id=agent.account.id,
        contact_id=contact.id,
        before=before,
        limit=TIMELINE_PAGE,
        viewer=agent.viewer,
    )
    return render(
        request,
        "contacts/_timeline_page.html",
        {
            "contact": contact,
            "timeline": page,
            "names": await names_by_id(session, agent.account.id),
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
    await actions.update_contact(session, contact=contact, name=name, company=company)
    await events.commit(session)
    return RedirectResponse(f"/contacts/{contact_id}", status_code=303)


@router.post("/{contact_id}/attributes")
async def edit_attributes(
    request: Request, contact_id: int, agent: CurrentAgent, session: DbSession
) -> Response:
    contact = await get_contact(session, account_id=agent.account.id, contact_id=contact_id)
    form = await request.form()
    values = {
        key.removeprefix(ATTRIBUTE_PREFIX): str(value)
        for key, value in form.multi_items()
        if key.startswith(ATTRIBUTE_PREFIX)
    }
    definitions = await attribute_definitions(session, account_id=agent.account.id)
    try:
        await actions.set_attributes(
            session,
            contact=contact,
            definitions=definitions,
            values=values,
            actor_user_id=agent.user.id,
        )
    except InvalidInput as exc:
        # Show the form again with what was typed and the reason next to the field (the
        # action refuses before changing anything, and this session is never committed).
        context = await _page_context(session, agent, contact)
        context["errors"] = {exc.field or "": str(gettext_for(request)(str(exc)))}
        context["submitted"] = values
        return render(request, "contacts/show.html", context, status_code=422)
    await events.commit(session)
    return RedirectResponse(f"/contacts/{contact_id}#attributes", status_code=303)


@router.post("/{contact_id}/labels")
async def add_label(
    contact_id: int,
    agent: CurrentAgent,
    session: DbSession,
    label_id: Annotated[str, Form()] = "",
    new_label: Annotated[str, Form(max_length=60)] = "",
) -> Response:
    """Put an existing label on the contact, or create one by name and put it on."""
    contact = await get_contact(session, account_id=agent.account.id, contact_id=contact_id)
    if new_label.strip():
        label = await actions.label_named(
            session, account_id=agent.account.id, name=new_label, actor_user_id=agent.user.id
        )
    elif label_id.isdigit():
        label = await get_label(session, account_id=agent.account.id, label_id=int(label_id))
    else:
        raise InvalidInput("choose a label or type a new one", field="label_id")
    await actions.add_label(session, contact=contact, label=label, actor_user_id=agent.user.id)
    await events.commit(session)
    return RedirectResponse(f"/contacts/{contact_id}#labels", status_code=303)


@router.post("/{contact_id}/labels/{label_id}/delete")
async def remove_label(
    contact_id: int, label_id: int, agent: CurrentAgent, session: DbSession
) -> Response:
    contact = await get_contact(session, account_id=agent.account.id, contact_id=contact_id)
    label = await get_label(session, account_id=agent.account.id, label_id=label_id)
    await actions.remove_label(session, contact=contact, label=label, actor_user_id=agent.user.id)
    await events.commit(session)
    return RedirectResponse(f"/contacts/{contact_id}#labels", status_code=303)
