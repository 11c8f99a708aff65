"""Admin settings: inboxes (channels), users, teams, account, failed inbound payloads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from rapport.channels.base import SendContext, config_errors
from rapport.channels.registry import ADAPTERS, adapter_for
from rapport.domain import events
from rapport.domain.accounts.actions import update_account_settings
from rapport.domain.accounts.models import JoinPolicy, Visibility
from rapport.domain.agents import actions as agent_actions
from rapport.domain.agents.models import Role, User
from rapport.domain.agents.queries import agents_of, members_of, teams_of
from rapport.domain.errors import DomainError, NotFound
from rapport.domain.inboxes import actions as inbox_actions
from rapport.domain.inboxes.models import Inbox
from rapport.domain.inboxes.queries import failed_inbound, get_inbox, inbox_config, inboxes_of
from rapport.services import Services
from rapport.web.deps import AdminAgent, Agent, DbSession, Svc
from rapport.web.forms import config_fields, config_from_form
from rapport.web.templating import gettext_for, render

router = APIRouter(prefix="/settings", include_in_schema=False)


def _redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


@router.get("")
async def settings_home(agent: AdminAgent) -> Response:
    return _redirect("/settings/inboxes")


# --- inboxes -----------------------------------------------------------------------------------


def _webhook_url(services: Services, inbox: Inbox) -> str | None:
    adapter = adapter_for(inbox.channel)
    if not adapter.takes_webhooks:
        return None
    return services.settings.public_url + adapter.webhook_path(inbox.id)


@router.get("/inboxes")
async def inbox_list(
    request: Request, agent: AdminAgent, session: DbSession, services: Svc
) -> Response:
    inboxes = await inboxes_of(session, agent.account.id)
    return render(
        request,
        "settings/inboxes.html",
        {
            "inboxes": inboxes,
            "adapters": ADAPTERS,
            "webhook_urls": {i.id: _webhook_url(services, i) for i in inboxes},
            "section": "inboxes",
        },
    )


async def _inbox_form(
    request: Request,
    session: AsyncSession,
    agent: Agent,
    *,
    channel: str,
    inbox: Inbox | None,
    current: dict[str, Any] | None,
    errors: dict[str, str] | None = None,
    name: str = "",
    status_code: int = 200,
    webhook_url: str | None = None,
) -> Response:
    adapter = adapter_for(channel)
    return render(
        request,
        "settings/inbox_form.html",
        {
            "adapter": adapter,
            "inbox": inbox,
            "name": name or (inbox.name if inbox else ""),
            "fields": config_fields(adapter, current),
            "errors": errors or {},
            "teams": await teams_of(session, agent.account.id),
            "section": "inboxes",
            "webhook_url": webhook_url,
        },
        status_code=status_code,
    )


@router.get("/inboxes/new")
async def new_inbox(
    request: Request, agent: AdminAgent, session: DbSession, channel: str = "api"
) -> Response:
    try:
        adapter_for(channel)
    except KeyError:
        raise NotFound("channel") from None
    return await _inbox_form(request, session, agent, channel=channel, inbox=None, current=None)


async def _store_inbox(
    session: AsyncSession,
    services: Services,
    agent: Agent,
    *,
    form: dict[str, str],
    channel: str,
    inbox: Inbox | None,
    config: dict[str, Any],
) -> Inbox:
    name = form.get("name", "").strip()
    team_id = int(form["team_id"]) if form.get("team_id", "").isdigit() else None
    teams = {t.id for t in await teams_of(session, agent.account.id)}
    if team_id is not None and team_id not in teams:
        raise NotFound("team")
    if inbox is None:
        return await inbox_actions.create_inbox(
            session,
            account_id=agent.account.id,
            name=name,
            channel=channel,
            config=config,
            box=services.box,
            team_id=team_id,
        )
    return await inbox_actions.update_inbox(
        session,
        inbox=inbox,
        name=name,
        config=config,
        box=services.box,
        team_id=team_id,
        is_active=form.get("is_active") == "on",
    )


async def _save_inbox(
    request: Request,
    session: AsyncSession,
    services: Services,
    agent: Agent,
    *,
    channel: str,
    inbox: Inbox | None,
) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    adapter = adapter_for(channel)
    current = inbox_config(inbox, services.box) if inbox else None
    name = form.get("name", "").strip()
    try:
        config = adapter.validate_config(config_from_form(adapter, form, current))
    except ValidationError as exc:
        return await _inbox_form(
            request,
            session,
            agent,
            channel=channel,
            inbox=inbox,
            current=current,
            errors=config_errors(exc),
            name=name,
            status_code=422,
        )
    ctx = SendContext(
        http=services.http, read_file=services.files.read, public_url=services.settings.public_url
    )
    try:
        # A savepoint: when the provider refuses the connection, nothing of it is saved.
        async with session.begin_nested():
            saved = await _store_inbox(
                session, services, agent, form=form, channel=channel, inbox=inbox, config=config
            )
            await adapter.connect(saved.id, adapter.load_config(config), ctx)
    except DomainError:
        raise
    except Exception as exc:  # show the provider's complaint
        _ = gettext_for(request)
        message = _("The provider refused: %(error)s") % {"error": exc}
        return await _inbox_form(
            request,
            session,
            agent,
            channel=channel,
            inbox=inbox,
            current=current,
            errors={"connect": message},
            name=name,
            status_code=422,
        )
    await events.commit(session)
    return _redirect(f"/settings/inboxes/{saved.id}")


@router.post("/inboxes/new")
async def create_inbox(
    request: Request, agent: AdminAgent, session: DbSession, services: Svc, channel: str = "api"
) -> Response:
    try:
        adapter_for(channel)
    except KeyError:
        raise NotFound("channel") from None
    return await _save_inbox(request, session, services, agent, channel=channel, inbox=None)


@router.get("/inboxes/{inbox_id}")
async def edit_inbox(
    request: Request, inbox_id: int, agent: AdminAgent, session: DbSession, services: Svc
) -> Response:
    inbox = await get_inbox(session, account_id=agent.account.id, inbox_id=inbox_id)
    return await _inbox_form(
        request,
        session,
        agent,
        channel=inbox.channel,
        inbox=inbox,
        current=inbox_config(inbox, services.box),
        webhook_url=_webhook_url(services, inbox),
    )


@router.post("/inboxes/{inbox_id}")
async def update_inbox(
    request: Request, inbox_id: int, agent: AdminAgent, session: DbSession, services: Svc
) -> Response:
    inbox = await get_inbox(session, account_id=agent.account.id, inbox_id=inbox_id)
    return await _save_inbox(request, session, services, agent, channel=inbox.channel, inbox=inbox)


# --- users -------------------------------------------------------------------------------------


@router.get("/users")
async def user_list(request: Request, agent: AdminAgent, session: DbSession) -> Response:
    return render(
        request,
        "settings/users.html",
        {
            "users": await agents_of(session, agent.account.id),
            "roles": list(Role),
            "section": "users",
            "error": None,
        },
    )


@router.post("/users")
async def create_user(
    request: Request,
    agent: AdminAgent,
    session: DbSession,
    email: Annotated[str, Form(max_length=320)],
    name: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
    role: Annotated[Role, Form()] = Role.agent,
) -> Response:
    try:
        await agent_actions.create_user(
            session,
            account_id=agent.account.id,
            email=email,
            name=name,
            password=password,
            role=role,
        )
    except DomainError as exc:  # refused before anything changed
        return render(
            request,
            "settings/users.html",
            {
                "users": await agents_of(session, agent.account.id),
                "roles": list(Role),
                "section": "users",
                "error": gettext_for(request)(str(exc)),
            },
            status_code=422,
        )
    await events.commit(session)
    return _redirect("/settings/users")


@router.post("/users/{user_id}")
async def update_user(
    user_id: int,
    agent: AdminAgent,
    session: DbSession,
    role: Annotated[Role, Form()],
    is_active: Annotated[bool, Form()] = False,
) -> Response:
    user = await session.get(User, user_id)
    if user is None or user.account_id != agent.account.id:
        raise NotFound("user")
    await agent_actions.set_role_and_status(
        session, actor=agent.user, user=user, role=role, is_active=is_active
    )
    await events.commit(session)
    return _redirect("/settings/users")


# --- teams -------------------------------------------------------------------------------------


@router.get("/teams")
async def team_list(request: Request, agent: AdminAgent, session: DbSession) -> Response:
    teams = await teams_of(session, agent.account.id)
    return render(
        request,
        "settings/teams.html",
        {
            "teams": teams,
            "members": {t.id: set(await members_of(session, t.id)) for t in teams},
            "users": await agents_of(session, agent.account.id),
            "section": "teams",
        },
    )


@router.post("/teams")
async def create_team(
    agent: AdminAgent,
    session: DbSession,
    name: Annotated[str, Form(max_length=120)],
    description: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    await agent_actions.create_team(
        session, account_id=agent.account.id, name=name, description=description
    )
    await events.commit(session)
    return _redirect("/settings/teams")


@router.post("/teams/{team_id}/members")
async def set_members(
    request: Request, team_id: int, agent: AdminAgent, session: DbSession
) -> Response:
    teams = {t.id: t for t in await teams_of(session, agent.account.id)}
    if team_id not in teams:
        raise NotFound("team")
    form = await request.form()
    ids = [int(v) for v in form.getlist("user_id") if isinstance(v, str) and v.isdigit()]
    await agent_actions.set_team_members(session, team=teams[team_id], user_ids=ids)
    await events.commit(session)
    return _redirect("/settings/teams")


# --- account -----------------------------------------------------------------------------------


@router.get("/account")
async def account_form(request: Request, agent: AdminAgent) -> Response:
    return render(
        request,
        "settings/account.html",
        {
            "account": agent.account,
            "policies": list(JoinPolicy),
            "visibilities": list(Visibility),
            "section": "account",
        },
    )


@router.post("/account")
async def save_account(
    agent: AdminAgent,
    session: DbSession,
    name: Annotated[str, Form(max_length=200)],
    default_region: Annotated[str, Form(max_length=2)],
    join_policy: Annotated[JoinPolicy, Form()],
    join_window_hours: Annotated[int, Form()],
    agent_visibility: Annotated[Visibility, Form()],
) -> Response:
    account = await session.merge(agent.account)
    await update_account_settings(
        session,
        account=account,
        name=name,
        default_region=default_region,
        join_policy=join_policy,
        join_window_hours=join_window_hours,
        agent_visibility=agent_visibility,
    )
    await events.commit(session)
    return _redirect("/settings/account")


# --- failed inbound payloads -------------------------------------------------------------------


@router.get("/failures")
async def failures(request: Request, agent: AdminAgent, session: DbSession) -> Response:
    return render(
        request,
        "settings/failures.html",
        {
            "failures": await failed_inbound(session, account_id=agent.account.id),
            "section": "failures",
        },
    )


@router.post("/failures/{inbound_id}/retry")
async def retry_failure(inbound_id: int, agent: AdminAgent, session: DbSession) -> Response:
    await inbox_actions.reprocess_inbound(
        session, account_id=agent.account.id, inbound_id=inbound_id
    )
    await events.commit(session)
    return _redirect("/settings/failures")
