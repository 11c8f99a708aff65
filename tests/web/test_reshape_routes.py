"""Merging and splitting from the conversation view, and timeline events fetched one by one
(how the live path draws a channel switch without a reload)."""

from sqlalchemy import select

from rapport.domain import events
from rapport.domain.accounts.models import Account, JoinPolicy
from rapport.domain.agents.models import Role
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import Conversation, Message
from rapport.domain.events import Event
from rapport.domain.inboxes.actions import create_inbox
from rapport.domain.ports import IdentityClaim
from tests.support.factory import login
from tests.support.webchat import Visitor, widget_inbox

PHONE = (IdentityClaim(IdentityKind.phone, "+34612345678", Verification.provider),)


async def _inbox(services, account, channel):
    async with services.session() as session:
        inbox = await create_inbox(
            session,
            account_id=account.id,
            name=channel,
            channel=channel,
            config={},
            box=services.box,
        )
        await events.commit(session)
        return inbox


async def _account(services, factory, policy=JoinPolicy.always):
    account = await factory.account(default_region="ES")
    async with services.session() as session:
        (await session.get(Account, account.id)).join_policy = policy
        await events.commit(session)
    return account


async def test_a_channel_switch_event_is_served_for_the_live_timeline(client, services, factory):
    account = await _account(services, factory)
    whatsapp, sms = (
        await _inbox(services, account, "whatsapp"),
        await _inbox(services, account, "sms"),
    )
    agent = await factory.user(account)
    first = await factory.receive(account, whatsapp, claims=PHONE, text="on WhatsApp")
    await factory.receive(account, sms, claims=PHONE, text="now by SMS")
    async with services.read_session() as session:
        switch = await session.scalar(
            select(Event).where(Event.type == "conversation.channel_switched")
        )
        created = await session.scalar(select(Event).where(Event.type == "message.created"))
    await login(client, agent)
    conversation_id = first.conversation.id
    fragment = await client.get(f"/conversations/{conversation_id}/events?seq={switch.seq}")
    assert fragment.status_code == 200
    assert (
        "Moved from WhatsApp to SMS" in fragment.text and f'id="event-{switch.id}"' in fragment.text
    )
    # Only timeline events of this conversation are served.
    other = await client.get(f"/conversations/{conversation_id}/events?seq={created.seq}")
    assert other.status_code == 404
    page = await client.get(f"/conversations/{conversation_id}")
    assert page.text.index("on WhatsApp") < page.text.index("Moved from WhatsApp to SMS")
    assert page.text.index("Moved from WhatsApp to SMS") < page.text.index("now by SMS")


async def test_merge_and_split_from_the_conversation_view(client, services, factory):
    account = await _account(services, factory, JoinPolicy.never)
    whatsapp, sms = (
        await _inbox(services, account, "whatsapp"),
        await _inbox(services, account, "sms"),
    )
    agent = await factory.user(account, name="Ana Ruiz", role=Role.admin)
    target = (await factory.receive(account, whatsapp, claims=PHONE, text="wa")).conversation
    source = (await factory.receive(account, sms, claims=PHONE, text="sms")).conversation
    csrf = await login(client, agent)
    headers = {"X-CSRF-Token": csrf, "HX-Request": "true"}

    page = await client.get(f"/conversations/{source.id}")
    assert f'<option value="{target.id}">#{target.id} · WhatsApp' in page.text
    missing = await client.post(f"/conversations/{source.id}/merge", headers=headers)
    assert missing.status_code == 422
    merged = await client.post(
        f"/conversations/{source.id}/merge", data={"target_id": str(target.id)}, headers=headers
    )
    assert merged.status_code == 204
    assert merged.headers["HX-Redirect"] == f"/conversations/{target.id}"
    after = await client.get(f"/conversations/{target.id}")
    assert f"Ana Ruiz merged conversation #{source.id} into this one (1 message)" in after.text
    closed = await client.get(f"/conversations/{source.id}")
    assert "This conversation was merged into" in closed.text and 'id="composer"' not in closed.text

    async with services.read_session() as session:
        ids = list(
            await session.scalars(
                select(Message.id).where(Message.conversation_id == target.id).order_by(Message.id)
            )
        )
    split = await client.post(
        f"/conversations/{target.id}/split",
        data={"message_ids": [str(ids[-1])]},
        headers={"X-CSRF-Token": csrf},
    )
    assert split.status_code == 303
    async with services.read_session() as session:
        new = await session.scalar(
            select(Conversation).where(Conversation.id.not_in([target.id, source.id]))
        )
        moved = await session.get(Message, ids[-1])
    assert split.headers["location"] == f"/conversations/{new.id}"
    assert moved.conversation_id == new.id and new.channel == "sms"
    view = await client.get(f"/conversations/{new.id}")
    assert "Ana Ruiz split this conversation off from" in view.text
    everything = await client.post(
        f"/conversations/{target.id}/split",
        data={"message_ids": [str(ids[0])]},
        headers=headers,
    )
    assert everything.status_code == 422


async def test_a_visitor_keeps_chatting_in_the_conversation_theirs_was_merged_into(
    client, services, factory, worker
):
    account = await _account(services, factory, JoinPolicy.never)
    chat = await widget_inbox(services, account)
    whatsapp = await _inbox(services, account, "whatsapp")
    agent = await factory.user(account, role=Role.admin)
    visitor = Visitor(client, chat)
    await visitor.start()
    await visitor.post("/details", json={"name": "Lucía", "phone": "+34612345678"})
    said = await visitor.say("Hello from the website", "client-merge-1")
    await worker.drain()
    source_id = said.json()["conversation_id"]
    target = (await factory.receive(account, whatsapp, claims=PHONE, text="wa")).conversation
    assert target.id != source_id and target.contact_id is not None
    csrf = await login(client, agent)
    merged = await client.post(
        f"/conversations/{source_id}/merge",
        data={"target_id": str(target.id)},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert merged.status_code == 204
    again = await visitor.say("Still here", "client-merge-2")
    await worker.drain()
    assert again.json()["conversation_id"] == target.id
    shown = [m["content"] for m in await visitor.messages()]
    assert "Hello from the website" in shown and "Still here" in shown
