"""API v1 helpers: a personal token for a user, and the header that carries it."""

from __future__ import annotations

from rapport.domain import events
from rapport.domain.agents.actions import create_api_token
from rapport.domain.agents.models import User
from rapport.services import Services


async def api_headers(services: Services, user: User, *, trusted: bool = False) -> dict[str, str]:
    async with services.session() as session:
        _token, plain = await create_api_token(session, user=user, name="tests", trusted=trusted)
        await events.commit(session)
    return {"Authorization": f"Bearer {plain}"}
