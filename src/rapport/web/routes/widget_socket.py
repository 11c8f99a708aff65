"""The visitor's websocket: resumes from the last event it saw, then pushes live; typing both ways.

The browser connects to /widget/ws/{public_token} from the customer's site (the Origin must be on
the inbox's list), then sends its token in the first frame, never in the URL, so it stays out of
logs: {"type": "hello", "token": "...", "after": 1234}. Only its own conversation's events
reach it (never private notes), reduced to what a visitor needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.exceptions import HTTPException

from rapport.domain.conversations.models import Conversation
from rapport.domain.errors import NotFound
from rapport.domain.visitors.queries import conversation_events_after, visit_by_token
from rapport.realtime.ephemeral import Typing
from rapport.realtime.hub import Hub, VisitorSubscriber
from rapport.services import Services
from rapport.web.widget_access import Widget, load_widget

router = APIRouter(include_in_schema=False)

HELLO_TIMEOUT = 10.0
PING_SECONDS = 25.0
TYPING_EVERY = 1.0  # at most one typing signal a second from one visitor
SCOPE_EVERY = 30.0


@dataclass
class Follow:
    """One connected visitor and what the typing signal needs about their conversation."""

    widget: Widget
    conversation: Conversation
    subscriber: VisitorSubscriber
    last_typing: float = 0.0
    scope_read_at: float = 0.0


async def _hello(websocket: WebSocket, services: Services, widget: Widget) -> Follow | None:
    try:
        hello = json.loads(await asyncio.wait_for(websocket.receive_text(), HELLO_TIMEOUT))
    except (TimeoutError, ValueError):
        return None
    token = hello.get("token") if isinstance(hello, dict) else None
    async with services.read_session() as session:
        try:
            visit = await visit_by_token(session, inbox_id=widget.inbox.id, token=str(token or ""))
        except NotFound:
            return None
        if visit.conversation_id is None:
            return None
        conversation = await session.get(Conversation, visit.conversation_id)
    if conversation is None:
        return None
    subscriber = VisitorSubscriber(account_id=widget.account.id, conversation_id=conversation.id)
    websocket.state.after = hello.get("after")
    return Follow(widget, conversation, subscriber, scope_read_at=time.monotonic())


async def _replay(
    services: Services, websocket: WebSocket, follow: Follow, after: int, upto: int
) -> None:
    cursor = after
    while cursor < upto:
        async with services.read_session() as session:
            batch = await conversation_events_after(
                session,
                account_id=follow.subscriber.account_id,
                conversation_id=follow.conversation.id,
                after_seq=cursor,
            )
        batch = [e for e in batch if e.seq <= upto]
        if not batch:
            return
        for event in batch:
            if follow.subscriber.accepts(event):
                await websocket.send_text(follow.subscriber.encode(event))
        cursor = batch[-1].seq


async def _refresh_scope(services: Services, follow: Follow) -> None:
    """Assignee and team travel with each signal (visibility rule): reread them now and then."""
    now = time.monotonic()
    if now - follow.scope_read_at < SCOPE_EVERY:
        return
    async with services.read_session() as session:
        fresh = await session.get(Conversation, follow.conversation.id)
    if fresh is not None:
        follow.conversation = fresh
    follow.scope_read_at = now


async def _pump(websocket: WebSocket, follow: Follow, after: int) -> None:
    async def close() -> None:
        await websocket.close(code=4000)  # too slow or shutting down: the widget resumes

    await follow.subscriber.feed.pump(
        websocket.send_text, after=after, close=close, ping_every=PING_SECONDS
    )


async def _listen(websocket: WebSocket, services: Services, follow: Follow) -> None:
    while True:
        try:
            frame = json.loads(await websocket.receive_text())
        except ValueError:
            continue
        if not isinstance(frame, dict) or frame.get("type") != "typing":
            continue
        now = time.monotonic()
        typing = bool(frame.get("typing"))
        if typing and now - follow.last_typing < TYPING_EVERY:
            continue
        follow.last_typing = now if typing else 0.0
        await _refresh_scope(services, follow)
        await services.bus.publish_ephemeral(
            Typing(
                account_id=follow.widget.account.id,
                conversation_id=follow.conversation.id,
                assignee_id=follow.conversation.assignee_id,
                team_id=follow.conversation.team_id,
                who="visitor",
                typing=typing,
            ).to_wire()
        )


async def _serve(websocket: WebSocket, services: Services, hub: Hub, follow: Follow) -> None:
    latest = await hub.subscribe(follow.subscriber)
    try:
        asked = websocket.state.after
        after = asked if isinstance(asked, int) and 0 <= asked <= latest else latest
        await _replay(services, websocket, follow, after, latest)
        await websocket.send_text(json.dumps({"kind": "live", "seq": latest}))
        tasks = [
            asyncio.create_task(_pump(websocket, follow, latest)),
            asyncio.create_task(_listen(websocket, services, follow)),
        ]
        _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
    finally:
        hub.unsubscribe(follow.subscriber)


@router.websocket("/widget/ws/{public_token}")
async def visitor_socket(websocket: WebSocket, public_token: str) -> None:
    services: Services = websocket.app.state.services
    hub = services.hub
    try:
        async with services.read_session() as session:
            widget = await load_widget(
                session, services, public_token, websocket.headers.get("origin")
            )
    except (NotFound, HTTPException):  # unknown inbox or a site not on its list: one refusal
        await websocket.close(code=4403)
        return
    except Exception:  # the database is away: the widget retries with backoff
        await websocket.close(code=1011)
        return
    if hub is None:
        await websocket.close(code=4403)
        return
    await websocket.accept()
    try:
        follow = await _hello(websocket, services, widget)
        if follow is None:
            await websocket.close(code=4401)
            return
        await _serve(websocket, services, hub, follow)
    except (WebSocketDisconnect, RuntimeError):
        pass
