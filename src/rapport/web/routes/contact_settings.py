"""Admin settings for contact data: custom attribute definitions and labels."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from rapport.domain import events
from rapport.domain.contacts import actions
from rapport.domain.contacts.models import AttributeKind
from rapport.domain.contacts.queries import (
    attribute_definitions,
    get_attribute_definition,
    get_label,
    labels_of_account,
)
from rapport.domain.errors import Conflict, InvalidInput
from rapport.web.deps import AdminAgent, Agent, DbSession
from rapport.web.templating import gettext_for, render

router = APIRouter(prefix="/settings", include_in_schema=False)


def _redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


async def _attributes_page(
    request: Request,
    session: AsyncSession,
    agent: Agent,
    *,
    error: str | None = None,
    submitted: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "definitions": await attribute_definitions(session, account_id=agent.account.id),
        "kinds": list(AttributeKind),
        "section": "attributes",
        "error": str(gettext_for(request)(error)) if error else None,
        "submitted": submitted or {},
    }
    return render(request, "settings/attributes.html", context, status_code=status_code)


@router.get("/attributes")
async def attribute_list(request: Request, agent: AdminAgent, session: DbSession) -> Response:
    return await _attributes_page(request, session, agent)


@router.post("/attributes")
async def create_attribute(
    request: Request,
    agent: AdminAgent,
    session: DbSession,
    label: Annotated[str, Form(max_length=120)] = "",
    kind: Annotated[str, Form(max_length=16)] = "text",
    key: Annotated[str, Form(max_length=40)] = "",
    options: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    try:
        await actions.define_attribute(
            session,
            account_id=agent.account.id,
            label=label,
            kind=kind,
            key=key,
            options=options,
            actor_user_id=agent.user.id,
        )
    except (InvalidInput, Conflict) as exc:
        submitted = {"label": label, "kind": kind, "key": key, "options": options}
        return await _attributes_page(
            request, session, agent, error=str(exc), submitted=submitted, status_code=422
        )
    await events.commit(session)
    return _redirect("/settings/attributes")


@router.post("/attributes/{definition_id}")
async def update_attribute(
    definition_id: int,
    agent: AdminAgent,
    session: DbSession,
    label: Annotated[str, Form(max_length=120)] = "",
    options: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    definition = await get_attribute_definition(
        session, account_id=agent.account.id, definition_id=definition_id
    )
    await actions.update_attribute(
        session, definition=definition, label=label, options=options, actor_user_id=agent.user.id
    )
    await events.commit(session)
    return _redirect("/settings/attributes")


@router.post("/attributes/{definition_id}/delete")
async def delete_attribute(definition_id: int, agent: AdminAgent, session: DbSession) -> Response:
    definition = await get_attribute_definition(
        session, account_id=agent.account.id, definition_id=definition_id
    )
    await actions.delete_attribute(session, definition=definition, actor_user_id=agent.user.id)
    await events.commit(session)
    return _redirect("/settings/attributes")


@router.get("/labels")
async def label_list(request: Request, agent: AdminAgent, session: DbSession) -> Response:
    return render(
        request,
        "settings/labels.html",
        {
            "labels": await labels_of_account(session, account_id=agent.account.id),
            "section": "labels",
        },
    )


@router.post("/labels")
async def create_label(
    agent: AdminAgent,
    session: DbSession,
    name: Annotated[str, Form(max_length=60)] = "",
    color: Annotated[str, Form(max_length=7)] = "",
) -> Response:
    await actions.create_label(
        session, account_id=agent.account.id, name=name, color=color, actor_user_id=agent.user.id
    )
    await events.commit(session)
    return _redirect("/settings/labels")


@router.post("/labels/{label_id}")
async def update_label(
    label_id: int,
    agent: AdminAgent,
    session: DbSession,
    name: Annotated[str, Form(max_length=60)] = "",
    color: Annotated[str, Form(max_length=7)] = "",
) -> Response:
    label = await get_label(session, account_id=agent.account.id, label_id=label_id)
    await actions.update_label(
        session, label=label, name=name, color=color, actor_user_id=agent.user.id
    )
    await events.commit(session)
    return _redirect("/settings/labels")


@router.post("/labels/{label_id}/delete")
async def delete_label(label_id: int, agent: AdminAgent, session: DbSession) -> Response:
    label = await get_label(session, account_id=agent.account.id, label_id=label_id)
    await actions.delete_label(session, label=label, actor_user_id=agent.user.id)
    await events.commit(session)
    return _redirect("/settings/labels")
