"""The signed-in user's own settings: name, language, picture, password, API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from rapport.domain import events
from rapport.domain.agents import actions
from rapport.domain.agents.queries import tokens_of
from rapport.domain.errors import DomainError
from rapport.web.deps import CurrentAgent, DbSession
from rapport.web.templating import gettext_for, render

router = APIRouter(prefix="/profile", include_in_schema=False)


async def _page(
    request: Request,
    agent: CurrentAgent,
    session: DbSession,
    *,
    notice: str | None = None,
    error: str | None = None,
    new_token: str | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    user = agent.user
    shown = values or {
        "name": user.name,
        "locale": user.locale or "",
        "avatar_url": user.avatar_url or "",
    }
    return render(
        request,
        "profile.html",
        {
            "tokens": await tokens_of(session, agent.user.id),
            "notice": notice,
            "error": error,
            "new_token": new_token,
            "values": shown,
        },
        status_code=status_code,
    )


@router.get("")
async def profile(request: Request, agent: CurrentAgent, session: DbSession) -> Response:
    return await _page(request, agent, session)


@router.post("")
async def save_profile(
    request: Request,
    agent: CurrentAgent,
    session: DbSession,
    name: Annotated[str, Form(max_length=200)],
    locale: Annotated[str, Form()] = "",
    avatar_url: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    user = await session.merge(agent.user)
    # Emptied, the field removes the picture; a form without it leaves the picture alone.
    picture = avatar_url if "avatar_url" in await request.form() else None
    try:
        await actions.update_profile(
            session, user=user, name=name, locale=locale or None, avatar_url=picture
        )
    except DomainError as exc:  # refused before anything changed: show what was typed
        typed = {"name": name, "locale": locale, "avatar_url": avatar_url}
        message = gettext_for(request)(str(exc))
        return await _page(request, agent, session, error=message, values=typed, status_code=422)
    await events.commit(session)
    return RedirectResponse("/profile", status_code=303)


@router.post("/password")
async def change_password(
    request: Request,
    agent: CurrentAgent,
    session: DbSession,
    current_password: Annotated[str, Form(max_length=1024)],
    new_password: Annotated[str, Form(max_length=1024)],
) -> Response:
    user = await session.merge(agent.user)
    try:
        await actions.change_password(
            session, user=user, current_password=current_password, new_password=new_password
        )
    except DomainError as exc:  # refused before anything changed
        message = gettext_for(request)(str(exc))
        return await _page(request, agent, session, error=message, status_code=422)
    await events.commit(session)
    _ = gettext_for(request)
    # This session continues under the new version; every other one is now invalid.
    request.session["ver"] = user.session_version
    return await _page(
        request,
        agent,
        session,
        notice=_("Password changed. Other sessions were signed out."),
    )


@router.post("/tokens")
async def create_token(
    request: Request,
    agent: CurrentAgent,
    session: DbSession,
    name: Annotated[str, Form(max_length=120)],
    trusted: Annotated[bool, Form()] = False,
) -> Response:
    _token, plain = await actions.create_api_token(
        session, user=agent.user, name=name, trusted=trusted
    )
    await events.commit(session)
    return await _page(request, agent, session, new_token=plain)


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(token_id: int, agent: CurrentAgent, session: DbSession) -> Response:
    await actions.revoke_api_token(session, user=agent.user, token_id=token_id)
    await events.commit(session)
    return RedirectResponse("/profile", status_code=303)
