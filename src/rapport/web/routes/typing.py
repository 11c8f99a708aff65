"""Agents' typing pings: shown live to the visitor and to colleagues viewing the conversation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from starlette.responses import Response

from rapport.domain.conversations.queries import get_visible_conversation
from rapport.realtime.ephemeral import Typing
from rapport.web.deps import CurrentAgent, DbSession, Svc

router = APIRouter(include_in_schema=False)


@router.post("/conversations/{conversation_id}/typing")
async def agent_typing(
    conversation_id: int,
    agent: CurrentAgent,
    session: DbSession,
    services: Svc,
    typing: Annotated[bool, Form()] = True,
) -> Response:
    conversation = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    await services.bus.publish_ephemeral(
        Typing(
            account_id=conversation.account_id,
            conversation_id=conversation.id,
            assignee_id=conversation.assignee_id,
            team_id=conversation.team_id,
            who="agent",
            typing=typing,
            user_id=agent.user.id,
            name=agent.user.name,
        ).to_wire()
    )
    return Response(status_code=204)
