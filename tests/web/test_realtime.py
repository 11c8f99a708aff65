"""Realtime: events reach agents live, a reconnect replays what was missed, nothing leaks."""

import httpx
import pytest
import websockets

from rapport.domain import events
from rapport.domain.accounts.models import Visibility
from rapport.domain.agents.models import Role
from rapport.realtime import feed
from rapport.realtime.feed import run_until_suspended
from rapport.web.app import create_app
from rapport.workers.relay import worker_in_background
from tests.support.agents import AgentSocket
from tests.support.factory import signed_api_call
from tests.support.live import serve


@pytest.fixture
async def live(settings, services):
    app = create_app(settings, services=services, background=[worker_in_background])
    async with serve(app) as base:
        yield base


def _message(n, contact="user-1"):
    return {"id": f"m-{n}", "contact": {"id": contact, "name": "Lucía"}, "content": f"message {n}"}


async def _post(base, inbox, body):
    raw, headers = signed_api_call(body)
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{base}/hooks/api/{inbox.id}", content=raw, headers=headers)
        assert response.status_code == 200


async def test_a_webhook_reaches_a_connected_agent_without_reload(live, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    agent = AgentSocket(live, await factory.user(account))
    await agent.connect()
    await _post(live, inbox, _message(1))
    event = await agent.wait_for(lambda e: e["type"] == "message.created")
    assert event["data"]["direction"] == "incoming"
    await agent.close()


async def test_a_live_socket_is_written_from_the_fan_out_at_once(live, factory, monkeypatch):
    """Fan-out's fast path holds with uvicorn and Rapport's middleware: a send to a socket with
    room in its buffer completes without suspending (else every frame falls back to a task)."""
    finished_at_once = []

    def recording(coro):
        rest = run_until_suspended(coro)
        finished_at_once.append(rest is None)
        return rest

    monkeypatch.setattr(feed, "run_until_suspended", recording)
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    agent = AgentSocket(live, await factory.user(account))
    await agent.connect()
    await _post(live, inbox, _message(1))
    await agent.wait_for(lambda e: e["type"] == "message.created")
    assert finished_at_once and all(finished_at_once)
    await agent.close()


async def test_a_reconnect_replays_exactly_what_was_missed(live, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    agent = AgentSocket(live, await factory.user(account))
    await agent.connect()
    await _post(live, inbox, _message(1))
    await agent.wait_for(lambda e: e["type"] == "message.created")
    await agent.disconnect()
    for n in range(2, 6):  # the agent's laptop is asleep
        await _post(live, inbox, _message(n))
    other = AgentSocket(live, agent.user)
    other.http.cookies = agent.http.cookies
    # A second tab, resuming where the first stopped, confirms the worker has finished: it
    # replays what is already committed and follows the rest live, however fast the worker.
    other.last_seq = agent.last_seq
    await other.connect()
    await other.wait_for(lambda e: e["type"] == "message.created" and e["seq"] > agent.last_seq + 3)
    await agent.connect()  # resume from the last seq seen
    seqs = [e["seq"] for e in agent.events]
    assert seqs == sorted(set(seqs)) == list(range(seqs[0], seqs[-1] + 1))
    created = [e for e in agent.events if e["type"] == "message.created"]
    assert len(created) == 5
    await agent.close()
    await other.close()


async def test_agents_only_receive_what_they_may_see(live, services, factory):
    account = await factory.account()
    async with services.session() as session:
        merged = await session.merge(account)
        merged.agent_visibility = Visibility.assigned
        await events.commit(session)
    inbox = await factory.api_inbox(account)
    other_account = await factory.account("Other")
    other_inbox = await factory.api_inbox(other_account)
    agent = AgentSocket(live, await factory.user(account))
    spectator = AgentSocket(live, await factory.user(account, role=Role.admin))
    await agent.connect()
    await spectator.connect()
    await _post(live, other_inbox, _message(1))  # another tenant
    await _post(live, inbox, _message(2))  # unassigned: not visible under "assigned only"
    await spectator.wait_for(lambda e: e["type"] == "message.created")
    with pytest.raises(TimeoutError):
        await agent.wait_for(
            lambda e: e["type"].startswith(("message", "conversation")), timeout=1.0
        )
    await agent.close()
    await spectator.close()


async def test_sockets_refuse_other_origins_and_anonymous_visitors(live, factory):
    account = await factory.account()
    agent = AgentSocket(live, await factory.user(account))
    await agent.connect()
    cookie = "; ".join(f"{k}={v}" for k, v in agent.http.cookies.items())
    url = live.replace("http", "ws", 1) + "/ws"
    with pytest.raises(websockets.InvalidStatus) as refused:  # cross-site: refused outright
        await websockets.connect(
            url, additional_headers={"Cookie": cookie}, origin="https://evil.example"
        )
    assert refused.value.response.status_code == 403
    anonymous = await websockets.connect(url, origin=live)  # told to sign in
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await anonymous.recv()
    assert closed.value.rcvd.code == 4401
    await agent.close()
