"""The agent's websocket: one per tab, resumes from the last event it saw, then goes live."""

from __future__ import annotations

import asyncio
import contextlib
import json
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from rapport.domain.events import events_after
from rapport.realtime.hub import AgentSubscriber, Hub, encode
from rapport.services import Services
from rapport.web.deps import Agent, load_agent

router = APIRouter(include_in_schema=False)

# Beyond this many missed events the browser reloads its view instead of replaying them.
MAX_REPLAY = 2000
PING_SECONDS = 25.0


def _same_origin(websocket: WebSocket) -> bool:
    """Cookies ride along on cross-site websocket handshakes: only our own pages may connect."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return False
    return urlsplit(origin).netloc == websocket.headers.get("host")


async def _replay(
    services: Services, websocket: WebSocket, subscriber: AgentSubscriber, after: int, upto: int
) -> None:
    cursor = after
    while cursor < upto:
        async with services.read_session() as session:
            batch = await events_after(
                session, account_id=subscriber.account_id, after_seq=cursor, limit=500
            )
        batch = [event for event in batch if event.seq <= upto]
        if not batch:
            break
        for event in batch:
            if subscriber.accepts(event):
                await websocket.send_text(encode(event))
        cursor = batch[-1].seq


async def _pump(websocket: WebSocket, subscriber: AgentSubscriber, after: int) -> None:
    async def close() -> None:
        await websocket.close(code=4000)  # too slow or shutting down: the client resumes

    await subscriber.feed.pump(
        websocket.send_text, after=after, close=close, ping_every=PING_SECONDS
    )


async def _listen(websocket: WebSocket) -> None:
    while True:
        await websocket.receive_text()  # pongs and keep-alives; the socket is server-push


@router.websocket("/ws")
async def agent_socket(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    hub: Hub | None = services.hub
    if hub is None or not _same_origin(websocket):
        await websocket.close(code=4403)
        return
    async with services.read_session() as session:
        agent: Agent | None = await load_agent(session, dict(websocket.session))
    if agent is None:
        # Accepted then closed with 4401 so the page knows to sign in again (not retry forever).
        await websocket.accept()
        await websocket.close(code=4401)
        return
    await websocket.accept()
    subscriber = AgentSubscriber(viewer=agent.viewer)
    latest = await hub.subscribe(subscriber)
    try:
        after_param = websocket.query_params.get("after", "")
        after = int(after_param) if after_param.isdigit() else latest
        if latest - after > MAX_REPLAY or after > latest:
            await websocket.send_text(json.dumps({"kind": "reset", "seq": latest}))
        else:
            await _replay(services, websocket, subscriber, after, latest)
        await websocket.send_text(json.dumps({"kind": "live", "seq": latest}))
        tasks = [
            asyncio.create_task(_pump(websocket, subscriber, latest)),
            asyncio.create_task(_listen(websocket)),
        ]
        _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.unsubscribe(subscriber)
