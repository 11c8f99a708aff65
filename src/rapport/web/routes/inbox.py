"""The agent inbox: conversation list, conversation view, replies, notes, assignment, status."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from rapport.channels.registry import adapter_for
from rapport.domain import events
from rapport.domain.agents.queries import agents_of, teams_of
from rapport.domain.contacts.queries import (
    attribute_definitions,
    attribute_rows,
    earlier_conversations,
    get_contact,
    identities_of,
    labels_of,
)
from rapport.domain.conversations import actions, reshape
from rapport.domain.conversations.models import Conversation, Message, Status
from rapport.domain.conversations.policies import can_see
from rapport.domain.conversations.queries import (
    ConversationFilter,
    Scope,
    get_visible_conversation,
    list_conversations,
    names_by_id,
    thread_subject,
)
from rapport.domain.conversations.reshape import merge_candidates
from rapport.domain.conversations.timeline import (
    conversation_timeline,
    message_in_conversation,
    timeline_event,
)
from rapport.domain.errors import InvalidInput, NotFound
from rapport.domain.inboxes.queries import get_inbox, inboxes_of
from rapport.services import Services
from rapport.web.deps import Agent, CurrentAgent, DbSession, Svc
from rapport.web.reply_box import GSM7, checked_template, parse_route, reply_options
from rapport.web.templating import render

router = APIRouter(include_in_schema=False)


def _filter(
    scope: str | None, status: str | None, inbox_id: int | None, team_id: int | None
) -> ConversationFilter:
    try:
        return ConversationFilter(
            scope=Scope(scope or Scope.mine),
            status=None if status == "any" else Status(status or Status.open),
            inbox_id=inbox_id,
            team_id=team_id,
        )
    except ValueError as exc:
        raise InvalidInput("unknown filter value") from exc


def _filter_query(flt: ConversationFilter) -> str:
    parts = [f"scope={flt.scope}", f"status={flt.status or 'any'}"]
    if flt.inbox_id:
        parts.append(f"inbox_id={flt.inbox_id}")
    if flt.team_id:
        parts.append(f"team_id={flt.team_id}")
    return "&".join(parts)


async def _list_context(
    session: AsyncSession, agent: Agent, flt: ConversationFilter, cursor: str | None
) -> dict[str, Any]:
    page = await list_conversations(session, viewer=agent.viewer, flt=flt, cursor=cursor)
    return {
        "page": page,
        "flt": flt,
        "filter_query": _filter_query(flt),
        "inboxes": await inboxes_of(session, agent.account.id),
        "teams": await teams_of(session, agent.account.id),
        "scopes": list(Scope),
        "statuses": [*Status, "any"],
    }


async def _conversation_context(
    session: AsyncSession, agent: Agent, conversation: Conversation
) -> dict[str, Any]:
    items, has_more = await conversation_timeline(session, conversation=conversation)
    return {
        **await _panel_context(session, agent, conversation),
        "timeline": items,
        "has_more": has_more,
        "names": await names_by_id(session, agent.account.id),
        "agents": [a for a in await agents_of(session, agent.account.id) if a.is_active],
        "teams": await teams_of(session, agent.account.id),
    }


async def _full_context(
    services: Services, session: AsyncSession, agent: Agent, conversation: Conversation
) -> dict[str, Any]:
    """The conversation view: header, timeline, the reply box's channels, merge candidates."""
    return {
        **await _conversation_context(session, agent, conversation),
        **await _composer_context(services, session, conversation),
        "merge_candidates": [
            c
            for c in await merge_candidates(session, conversation=conversation)
            if can_see(
                agent.viewer, account_id=c.account_id, assignee_id=c.assignee_id, team_id=c.team_id
            )
        ],
    }


async def _composer_context(
    services: Services, session: AsyncSession, conversation: Conversation
) -> dict[str, Any]:
    """Only what the reply box needs: its channels, their rules, the email subject."""
    return {
        "conversation": conversation,
        "options": await reply_options(services, session, conversation),
        "gsm7": GSM7,
        "reply_subject": await thread_subject(session, conversation),
        "merged_into": (
            await session.get(Conversation, conversation.merged_into_id)
            if conversation.merged_into_id
            else None
        ),
    }


async def _panel_context(
    session: AsyncSession, agent: Agent, conversation: Conversation
) -> dict[str, Any]:
    """What the agent sees beside a conversation so nobody repeats themselves."""
    contact = await get_contact(
        session, account_id=agent.account.id, contact_id=conversation.contact_id
    )
    definitions = await attribute_definitions(session, account_id=agent.account.id)
    return {
        "conversation": conversation,
        "contact": contact,
        "identities": await identities_of(session, contact.id),
        "attributes": [r for r in attribute_rows(contact, definitions) if r.value is not None],
        "labels": await labels_of(session, contact.id),
        "earlier": await earlier_conversations(
            session, contact_id=contact.id, viewer=agent.viewer, exclude_id=conversation.id
        ),
    }


@router.get("/")
async def home() -> Response:
    return RedirectResponse("/conversations", status_code=303)


@router.get("/conversations")
async def conversation_list(
    request: Request,
    agent: CurrentAgent,
    session: DbSession,
    scope: str | None = None,
    status: str | None = None,
    inbox_id: Annotated[int | None, Query()] = None,
    team_id: Annotated[int | None, Query()] = None,
    cursor: str | None = None,
) -> Response:
    flt = _filter(scope, status, inbox_id, team_id)
    context = await _list_context(session, agent, flt, cursor)
    if request.headers.get("hx-target") == "conversation-list":
        return render(request, "inbox/_list.html", context)
    return render(request, "inbox/index.html", {**context, "conversation": None})


@router.get("/conversations/{conversation_id}")
async def conversation_view(
    request: Request,
    conversation_id: int,
    agent: CurrentAgent,
    session: DbSession,
    services: Svc,
    scope: str | None = None,
    status: str | None = None,
    inbox_id: Annotated[int | None, Query()] = None,
    team_id: Annotated[int | None, Query()] = None,
) -> Response:
    conversation = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    context = await _full_context(services, session, agent, conversation)
    if request.headers.get("hx-target") == "conversation-pane":
        return render(request, "inbox/_conversation.html", context)
    flt = _filter(scope, status, inbox_id, team_id)
    return render(
        request,
        "inbox/index.html",
        {**await _list_context(session, agent, flt, None), **context},
    )


@router.get("/conversations/{conversation_id}/composer")
async def composer(
    request: Request,
    conversation_id: int,
    agent: CurrentAgent,
    session: DbSession,
    services: Svc,
) -> Response:
    """The reply box drawn again (a customer message moved the default channel or a window)."""
    conversation = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    return render(
        request,
        "inbox/_composer.html",
        await _composer_context(services, session, conversation),
    )


@router.get("/conversations/{conversation_id}/header")
async def conversation_header(
    request: Request, conversation_id: int, agent: CurrentAgent, session: DbSession
) -> Response:
    conversation = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    return render(
        request,
        "inbox/_header.html",
        await _conversation_context(session, agent, conversation),
    )


@router.get("/conversations/{conversation_id}/panel")
async def contact_panel(
    request: Request, conversation_id: int, agent: CurrentAgent, session: DbSession
) -> Response:
    """The contact side panel alone, refreshed live when the conversation is assigned."""
    conversation = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    return render(
        request, "inbox/_contact_panel.html", await _panel_context(session, agent, conversation)
    )


@router.get("/conversations/{conversation_id}/timeline")
async def older_timeline(
    request: Request,
    conversation_id: int,
    agent: CurrentAgent,
    session: DbSession,
    before: int | None = None,
) -> Response:
    conversation = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    items, has_more = await conversation_timeline(
        session, conversation=conversation, before_id=before
    )
    names = await names_by_id(session, agent.account.id)
    return render(
        request,
        "inbox/_timeline_page.html",
        {"conversation": conversation, "timeline": items, "has_more": has_more, "names": names},
    )


@router.get("/conversations/{conversation_id}/messages/{message_id}")
async def message_fragment(
    request: Request,
    conversation_id: int,
    message_id: int,
    agent: CurrentAgent,
    session: DbSession,
) -> Response:
    conversation = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    item = await message_in_conversation(session, conversation=conversation, message_id=message_id)
    return render(request, "inbox/_message.html", {"item": item, "conversation": conversation})


@router.post("/conversations/{conversation_id}/messages")
async def post_message(
    request: Request,
    conversation_id: int,
    agent: CurrentAgent,
    session: DbSession,
    services: Svc,
    form: Annotated[ReplyForm, Form()],
) -> Response:
    conversation = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    reply = await _reply(services, session, agent, form)
    message = await actions.send_reply(
        session, conversation=conversation, author=agent.user, reply=reply
    )
    await events.commit(session)
    item = await message_in_conversation(session, conversation=conversation, message_id=message.id)
    return render(request, "inbox/_message.html", {"item": item, "conversation": conversation})


class ReplyForm(BaseModel):
    """The reply box: text, note or reply, the chosen route, and a template if one is needed."""

    content: str = Field(default="", max_length=65_536)
    private: bool = False
    route: str | None = Field(default=None, max_length=64)
    inbox_id: int | None = None
    client_id: str | None = Field(default=None, max_length=64)
    subject: str | None = Field(default=None, max_length=500)
    template_name: str | None = Field(default=None, max_length=512)
    template_language: str = Field(default="", max_length=32)
    template_vars: list[str] = Field(default_factory=list, max_length=20)


async def _reply(
    services: Services, session: AsyncSession, agent: Agent, form: ReplyForm
) -> actions.Reply:
    """The form as a domain `Reply`; a chosen template is checked against the provider's list."""
    if form.private:
        return actions.Reply(content=form.content, private=True, client_id=form.client_id)
    inbox_id, identity_id = parse_route(form.route, form.inbox_id)
    inbox = await get_inbox(session, account_id=agent.account.id, inbox_id=inbox_id)
    content, template = form.content, None
    if form.template_name:
        chosen = await checked_template(
            services,
            inbox,
            name=form.template_name,
            language=form.template_language,
            values=form.template_vars,
        )
        content, template = chosen.text, chosen.payload
    return actions.Reply(
        content=content,
        inbox=inbox,
        policy=adapter_for(inbox.channel).policy,
        client_id=form.client_id,
        template=template,
        recipient_id=identity_id,
        subject=form.subject,
    )


@router.get("/conversations/{conversation_id}/events")
async def event_fragment(
    request: Request,
    conversation_id: int,
    agent: CurrentAgent,
    session: DbSession,
    seq: Annotated[int | None, Query()] = None,
) -> Response:
    """One timeline event (a channel switch, a merge) as the live path inserts it."""
    conversation = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    if seq is None:
        raise InvalidInput("which event?", field="seq")
    item = await timeline_event(session, conversation=conversation, seq=seq)
    names = await names_by_id(session, agent.account.id)
    return render(
        request, "inbox/_event.html", {"item": item, "conversation": conversation, "names": names}
    )


@router.post("/conversations/{conversation_id}/merge")
async def merge(
    request: Request,
    conversation_id: int,
    agent: CurrentAgent,
    session: DbSession,
    target_id: Annotated[int | None, Form()] = None,
) -> Response:
    """Merge this conversation into another of the same contact; the agent lands on the target."""
    source = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    if target_id is None:
        raise InvalidInput("choose the conversation to merge into", field="target_id")
    target = await get_visible_conversation(session, viewer=agent.viewer, conversation_id=target_id)
    await reshape.merge_conversations(session, source=source, target=target, actor=agent.user)
    await events.commit(session)
    return _go_to(request, target.id)


@router.post("/conversations/{conversation_id}/split")
async def split(
    request: Request,
    conversation_id: int,
    agent: CurrentAgent,
    session: DbSession,
    message_ids: Annotated[list[int] | None, Form()] = None,
) -> Response:
    """Move the selected messages into a new conversation; the agent lands on it."""
    source = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    target = await reshape.split_conversation(
        session, source=source, message_ids=message_ids or [], actor=agent.user
    )
    await events.commit(session)
    return _go_to(request, target.id)


def _go_to(request: Request, conversation_id: int) -> Response:
    """htmx follows HX-Redirect (a 303 would be followed inside its request); a form, the 303."""
    url = f"/conversations/{conversation_id}"
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


@router.post("/conversations/{conversation_id}/assign")
async def assign(
    request: Request,
    conversation_id: int,
    agent: CurrentAgent,
    session: DbSession,
    assignee: Annotated[str, Form()] = "",
    team: Annotated[str, Form()] = "",
) -> Response:
    conversation = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    assignee_id = agent.user.id if assignee == "me" else _optional_id(assignee)
    await actions.assign_conversation(
        session,
        conversation=conversation,
        actor=agent.user,
        assignee_id=assignee_id,
        team_id=_optional_id(team) if team != "keep" else conversation.team_id,
    )
    await events.commit(session)
    return await _header_or_gone(request, session, agent, conversation_id)


@router.post("/conversations/{conversation_id}/status")
async def set_status(
    request: Request,
    conversation_id: int,
    agent: CurrentAgent,
    session: DbSession,
    status: Annotated[Status, Form()],
) -> Response:
    conversation = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    if status == Status.snoozed:
        raise InvalidInput("use the snooze menu to choose until when")
    await actions.change_status(session, conversation=conversation, actor=agent.user, status=status)
    await events.commit(session)
    return await _header_or_gone(request, session, agent, conversation_id)


@router.post("/conversations/{conversation_id}/messages/{message_id}/retry")
async def retry_message(
    request: Request,
    conversation_id: int,
    message_id: int,
    agent: CurrentAgent,
    session: DbSession,
) -> Response:
    conversation = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    message = await session.get(Message, message_id)
    if message is None or message.conversation_id != conversation.id:
        raise NotFound("message")
    await actions.retry_delivery(session, message=message, actor=agent.user)
    await events.commit(session)
    item = await message_in_conversation(session, conversation=conversation, message_id=message_id)
    return render(request, "inbox/_message.html", {"item": item, "conversation": conversation})


def _optional_id(value: str) -> int | None:
    if value in ("", "none"):
        return None
    if not value.isdigit():
        raise InvalidInput("unknown choice")
    return int(value)


async def _header_or_gone(
    request: Request, session: AsyncSession, agent: Agent, conversation_id: int
) -> Response:
    """The refreshed header, or a note that the conversation left this agent's view."""
    try:
        conversation = await get_visible_conversation(
            session, viewer=agent.viewer, conversation_id=conversation_id
        )
    except NotFound:
        return render(request, "inbox/_gone.html", {})
    return render(
        request, "inbox/_header.html", await _conversation_context(session, agent, conversation)
    )
