"""Dependencies as Annotated aliases: `DbSession`, `CurrentAgent`, `AdminAgent`, `ApiAgent`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.domain import events
from rapport.domain.accounts.models import Account
from rapport.domain.agents import actions as agent_actions
from rapport.domain.agents.models import ApiToken, User
from rapport.domain.agents.queries import user_for_api_token, viewer_for
from rapport.domain.conversations.policies import Viewer
from rapport.services import Services


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form."""


class AdminRequired(Exception):
    """Signed in, but this page is for admins (answered 404 so it reveals nothing)."""


class ApiAuthFailed(Exception):
    """No valid API token."""


async def get_services(request: Request) -> Services:
    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread, and this one
    # is on every route (a thread hop per request showed in the webhook profile).
    services: Services = request.app.state.services
    return services


Svc = Annotated[Services, Depends(get_services)]


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _db_session(request: Request, services: Svc) -> AsyncIterator[AsyncSession]:
    """Reads for safe methods, writes otherwise: a page view never holds SQLite's write lock."""
    factory = services.read_session if request.method in SAFE_METHODS else services.session
    async with factory() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(_db_session)]


@dataclass(frozen=True)
class Agent:
    """The signed-in user with their account and their view of conversations."""

    user: User
    account: Account
    viewer: Viewer
    # The token the request came with (API calls only).
    api_token: ApiToken | None = None

    @property
    def is_admin(self) -> bool:
        return self.user.is_admin


async def load_agent(session: AsyncSession, session_data: dict[str, object]) -> Agent | None:
    """The agent a session cookie names, if the session is still valid."""
    user_id, version = session_data.get("uid"), session_data.get("ver")
    if not isinstance(user_id, int) or not isinstance(version, int):
        return None
    user = await session.get(User, user_id)
    if user is None or not user.is_active or user.session_version != version:
        return None
    account = await session.get(Account, user.account_id)
    assert account is not None
    return Agent(user=user, account=account, viewer=await viewer_for(session, user, account))


async def _current_agent(request: Request, session: DbSession) -> Agent:
    agent = await load_agent(session, dict(request.session))
    if agent is None:
        request.session.pop("uid", None)
        request.session.pop("ver", None)
        raise LoginRequired()
    request.state.agent = agent
    return agent


CurrentAgent = Annotated[Agent, Depends(_current_agent)]


async def _admin_agent(agent: CurrentAgent) -> Agent:
    if not agent.user.is_admin:
        raise AdminRequired()
    return agent


AdminAgent = Annotated[Agent, Depends(_admin_agent)]


# Declares the scheme in the OpenAPI document (and the docs' Authorize button); the check is ours.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiToken",
    description="A personal API token from your profile page: `Authorization: Bearer rpt_...`",
)


async def _api_agent(
    session: DbSession,
    services: Svc,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Agent:
    token = credentials.credentials.strip() if credentials else ""
    if not token:
        raise ApiAuthFailed()
    # The token is checked, and its use recorded, before the request's own session starts: on
    # SQLite a writing request holds the write lock from its first query, so touching the token
    # from a second session afterwards would wait on ourselves.
    async with services.read_session() as reader:
        found = await user_for_api_token(reader, token)
    if found is None:
        raise ApiAuthFailed()
    api_token = found[1]
    if agent_actions.api_token_touch_due(api_token):
        async with services.session() as writer:
            used = await writer.merge(api_token, load=False)
            await agent_actions.touch_api_token(writer, token=used)
            await events.commit(writer)
    # Already loaded and checked active by the lookup: attach it without reading it again.
    user = await session.merge(found[0], load=False)
    account = await session.get(Account, user.account_id)
    assert account is not None
    viewer = await viewer_for(session, user, account)
    return Agent(user=user, account=account, viewer=viewer, api_token=api_token)


ApiAgent = Annotated[Agent, Depends(_api_agent)]
