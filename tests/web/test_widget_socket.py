"""The visitor's websocket on a real server: Origin list, token in the first frame, resume from
the last event, and never a private note or another conversation's event."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from sqlalchemy import func, select

from rapport.channels.registry import adapter_for
from rapport.domain import events
from rapport.domain.agents.models import User
from rapport.domain.conversations import actions
from rapport.domain.conversations.models import Conversation, Message
from rapport.domain.inboxes.models import Inbox
from tests.support.live import eventually
from tests.support.server import RapportServer
from tests.support.webchat import SITE, widget_inbox

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", ["sqlite"])]


async def _say(http: httpx.AsyncClient, base: str, token: str, text: str, cid: str) -> int:
    response = await http.post(
        f"{base}/messages",
        json={"client_id": cid, "content": text},
        headers={"Origin": SITE, "Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 202, response.text
    return int(response.json()["conversation_id"])


async def _reply(
    services, conversation_id: int, user: User, inbox: Inbox, text: str, private: bool
):
    async with services.session() as session:
        await actions.send_reply(
            session,
            conversation=await session.get(Conversation, conversation_id),
            author=await session.get(User, user.id),
            reply=actions.Reply(
                content=text,
                private=private,
                inbox=None if private else await session.get(Inbox, inbox.id),
                policy=None if private else adapter_for("webchat").policy,
            ),
        )
        await events.commit(session)


async def _stored(services, count: int) -> bool:
    async with services.read_session() as session:
        return (await session.scalar(select(func.count()).select_from(Message))) == count


async def _frames(ws, until_kind: str = "live") -> list[dict]:
    seen = []
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        seen.append(frame)
        if frame["kind"] == until_kind:
            return seen


async def test_visitor_socket_resumes_and_shows_only_what_the_visitor_may_see(
    db_url, tmp_path, services, factory
):
    account = await factory.account()
    agent = await factory.user(account, name="Ana Ruiz")
    inbox = await widget_inbox(services, account, allowed_origins=[SITE])
    server = RapportServer(db_url, tmp_path)
    await asyncio.to_thread(server.start)
    base = f"{server.url}/widget/api/{inbox.public_token}"
    ws_url = server.url.replace("http", "ws") + f"/widget/ws/{inbox.public_token}"
    try:
        async with httpx.AsyncClient() as http:
            start = await http.post(f"{base}/session", json={}, headers={"Origin": SITE})
            token = start.json()["token"]
            other = (await http.post(f"{base}/session", json={}, headers={"Origin": SITE})).json()
            mine = await _say(http, base, token, "hello", "socket-0001")
            theirs = await _say(http, base, other["token"], "someone else", "socket-0002")
            assert mine != theirs
            # Accepted messages are stored by the worker: resume from after both are stored.
            await eventually(lambda: _stored(services, 2))

            # A site not on the list cannot even open the socket.
            with pytest.raises(websockets.InvalidStatus):
                async with websockets.connect(ws_url, origin="https://evil.test"):
                    pass
            # A wrong token in the first frame is refused.
            async with websockets.connect(ws_url, origin=SITE) as ws:
                await ws.send(json.dumps({"type": "hello", "token": "rv_wrong"}))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 10)
                assert closed.value.rcvd.code == 4401

            async with websockets.connect(ws_url, origin=SITE) as ws:
                await ws.send(json.dumps({"type": "hello", "token": token}))
                [live] = await _frames(ws)
            last_seen = live["seq"]

            # While the visitor is away: a reply, a private note, and another visitor's chat.
            await _reply(services, mine, agent, inbox, "we can help", private=False)
            await _reply(services, mine, agent, inbox, "internal: VIP customer", private=True)
            await _say(http, base, other["token"], "more from someone else", "socket-0003")

            async with websockets.connect(ws_url, origin=SITE) as ws:
                await ws.send(json.dumps({"type": "hello", "token": token, "after": last_seen}))
                frames = await _frames(ws)
            replayed = [f for f in frames if f["kind"] == "event"]
            created = [f for f in replayed if f["type"] == "message.created"]
            # The reply only (its delivery status may follow); never the note, never the other chat.
            assert len(created) == 1
            assert {f["data"]["message_id"] for f in replayed} == {created[0]["data"]["message_id"]}
            assert all(
                set(f["data"]) <= {"message_id", "status", "direction", "sender_type"}
                for f in replayed
            )
            message = await http.get(
                f"{base}/messages/{created[0]['data']['message_id']}",
                headers={"Origin": SITE, "Authorization": f"Bearer {token}"},
            )
            assert message.json()["content"] == "we can help"
            assert message.json()["sender"]["name"] == "Ana Ruiz"
    finally:
        await asyncio.to_thread(server.stop)


async def test_visitor_socket_pushes_replies_live_and_never_a_private_note(
    db_url, tmp_path, services, factory
):
    account = await factory.account()
    agent = await factory.user(account, name="Ana Ruiz")
    inbox = await widget_inbox(services, account, allowed_origins=[SITE])
    server = RapportServer(db_url, tmp_path)
    await asyncio.to_thread(server.start)
    base = f"{server.url}/widget/api/{inbox.public_token}"
    ws_url = server.url.replace("http", "ws") + f"/widget/ws/{inbox.public_token}"
    try:
        async with httpx.AsyncClient() as http:
            start = await http.post(f"{base}/session", json={}, headers={"Origin": SITE})
            token = start.json()["token"]
            mine = await _say(http, base, token, "hello", "live-0001")
            await eventually(lambda: _stored(services, 1))
            async with websockets.connect(ws_url, origin=SITE) as ws:
                await ws.send(json.dumps({"type": "hello", "token": token}))
                await _frames(ws)  # up to "live"
                # The note is committed first: had it leaked, it would arrive first.
                await _reply(services, mine, agent, inbox, "internal: VIP customer", private=True)
                await _reply(services, mine, agent, inbox, "we can help", private=False)
                [event] = [f for f in await _frames(ws, until_kind="event") if f["kind"] == "event"]
            assert event["type"] == "message.created"
            assert set(event["data"]) <= {"message_id", "status", "direction", "sender_type"}
            message = await http.get(
                f"{base}/messages/{event['data']['message_id']}",
                headers={"Origin": SITE, "Authorization": f"Bearer {token}"},
            )
            assert message.json()["content"] == "we can help"
    finally:
        await asyncio.to_thread(server.stop)
