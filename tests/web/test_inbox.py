"""The agent inbox through HTTP: list, filters and counts, replies, notes, assignment, status."""

import re

from sqlalchemy import select

from rapport.domain import events
from rapport.domain.accounts.models import Visibility
from rapport.domain.agents.models import Role
from rapport.domain.conversations.models import Conversation, DeliveryStatus, Message
from tests.support.factory import login


async def _setup(factory, role=Role.agent):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    agent = await factory.user(account, role=role, name="Ana Ruiz")
    return account, inbox, agent


def _items(html):
    return re.findall(r'data-conversation-id="(\d+)"', html)


async def test_the_list_filters_by_scope_with_counts(client, services, factory):
    account, inbox, agent = await _setup(factory)
    mine = await factory.receive(account, inbox, external_id="c1", name="Mine Customer")
    await factory.receive(account, inbox, external_id="c2", name="Waiting Customer")
    csrf = await login(client, agent)
    await client.post(
        f"/conversations/{mine.conversation.id}/assign",
        data={"assignee": "me", "team": "none"},
        headers={"X-CSRF-Token": csrf},
    )
    page = await client.get("/conversations?scope=mine")
    assert _items(page.text) == [str(mine.conversation.id)]
    assert 'data-count="mine">1<' in page.text
    assert 'data-count="unassigned">1<' in page.text
    assert 'data-count="all">2<' in page.text
    unassigned = await client.get(
        "/conversations?scope=unassigned",
        headers={"HX-Request": "true", "HX-Target": "conversation-list"},
    )
    assert "Waiting Customer" in unassigned.text and "<html" not in unassigned.text


async def test_resolved_conversations_leave_the_open_list(client, factory):
    account, inbox, agent = await _setup(factory)
    received = await factory.receive(account, inbox)
    csrf = await login(client, agent)
    header = await client.post(
        f"/conversations/{received.conversation.id}/status",
        data={"status": "resolved"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert "Reopen" in header.text
    assert _items((await client.get("/conversations?scope=all")).text) == []
    resolved = await client.get("/conversations?scope=all&status=resolved")
    assert _items(resolved.text) == [str(received.conversation.id)]
    await client.post(
        f"/conversations/{received.conversation.id}/status",
        data={"status": "open"},
        headers={"X-CSRF-Token": csrf},
    )
    assert _items((await client.get("/conversations?scope=all")).text) == [
        str(received.conversation.id)
    ]


async def test_reply_and_note_from_the_conversation_view(client, services, factory):
    account, inbox, agent = await _setup(factory)
    received = await factory.receive(account, inbox, text="Where is my parcel?")
    csrf = await login(client, agent)
    view = await client.get(f"/conversations/{received.conversation.id}")
    assert "Where is my parcel?" in view.text
    assert f'value="{inbox.id}"' in view.text  # the reply route is offered
    reply = await client.post(
        f"/conversations/{received.conversation.id}/messages",
        data={
            "content": "It ships today",
            "private": "false",
            "inbox_id": inbox.id,
            "client_id": "c1",
        },
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert reply.status_code == 200 and "It ships today" in reply.text and "Queued" in reply.text
    again = await client.post(  # a double click: the same client id
        f"/conversations/{received.conversation.id}/messages",
        data={
            "content": "It ships today",
            "private": "false",
            "inbox_id": inbox.id,
            "client_id": "c1",
        },
        headers={"X-CSRF-Token": csrf},
    )
    assert again.status_code == 200
    note = await client.post(
        f"/conversations/{received.conversation.id}/messages",
        data={"content": "Check the warehouse", "private": "true"},
        headers={"X-CSRF-Token": csrf},
    )
    assert "Private note" in note.text
    async with services.read_session() as session:
        rows = (await session.scalars(select(Message).order_by(Message.id))).all()
    assert [(m.content, m.private, m.status) for m in rows[1:]] == [
        ("It ships today", False, DeliveryStatus.queued),
        ("Check the warehouse", True, DeliveryStatus.sent),
    ]


async def test_an_empty_reply_gets_a_clear_error(client, factory):
    account, inbox, agent = await _setup(factory)
    received = await factory.receive(account, inbox)
    csrf = await login(client, agent)
    response = await client.post(
        f"/conversations/{received.conversation.id}/messages",
        data={"content": "  ", "private": "false", "inbox_id": inbox.id},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert response.status_code == 422 and "write a message first" in response.text


async def test_assign_to_a_team_and_another_agent(client, services, factory):
    account, inbox, agent = await _setup(factory, role=Role.supervisor)
    colleague = await factory.user(account, name="Ben Okafor")
    team = await factory.team(account, "Billing", [colleague])
    received = await factory.receive(account, inbox)
    csrf = await login(client, agent)
    header = await client.post(
        f"/conversations/{received.conversation.id}/assign",
        data={"assignee": str(colleague.id), "team": str(team.id)},
        headers={"X-CSRF-Token": csrf},
    )
    assert header.status_code == 200
    async with services.read_session() as session:
        conversation = await session.get(Conversation, received.conversation.id)
    assert (conversation.assignee_id, conversation.team_id) == (colleague.id, team.id)
    view = await client.get(f"/conversations/{received.conversation.id}")
    assert "assigned this to Ben Okafor" in view.text


async def test_agents_who_see_only_their_conversations(client, services, factory):
    account, inbox, agent = await _setup(factory)
    async with services.session() as session:
        account = await session.merge(account)
        account.agent_visibility = Visibility.assigned
        await events.commit(session)
    hidden = await factory.receive(account, inbox, external_id="x", name="Hidden Person")
    await login(client, agent)
    assert "Hidden Person" not in (await client.get("/conversations?scope=all")).text
    assert (await client.get(f"/conversations/{hidden.conversation.id}")).status_code == 404


async def test_customer_text_is_escaped_everywhere(client, factory):
    account, inbox, agent = await _setup(factory)
    payload = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    received = await factory.receive(account, inbox, text=payload, name=payload)
    await login(client, agent)
    for url in [
        f"/conversations/{received.conversation.id}",
        "/conversations?scope=all",
        "/contacts",
        f"/contacts/{received.conversation.contact_id}",
    ]:
        page = await client.get(url)
        assert "<script>alert(2)" not in page.text and "<img src=x" not in page.text, url
        assert "&lt;script&gt;" in page.text, url


async def test_spanish_by_preference_then_by_browser(client, services, factory):
    account = await factory.account()
    spanish = await factory.user(account, locale="es")
    assert (
        "Entra en Rapport"
        in (await client.get("/login", headers={"Accept-Language": "es-ES,es;q=0.9"})).text
    )
    assert (
        "Sign in to Rapport"
        in (await client.get("/login", headers={"Accept-Language": "de, en;q=0.5"})).text
    )
    await login(client, spanish)
    page = await client.get("/conversations", headers={"Accept-Language": "en"})
    assert "Sin asignar" in page.text and "Mías" in page.text
