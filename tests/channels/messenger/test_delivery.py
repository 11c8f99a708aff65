"""Messenger and Instagram end to end: echoes, receipts, windows, and sending once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from rapport.domain import events
from rapport.domain.conversations.models import DeliveryStatus, Direction, Message
from rapport.domain.errors import Conflict
from rapport.lib.clock import utcnow
from tests.support.meta import (
    IG_ID,
    PAGE_ID,
    attachments_of,
    fake_meta_server,
    make_inbox,
    messages_of,
    messaging_config,
    reply,
    run_jobs,
)

APP_ID = "1517776481860111"
USER = "6283947561029384"
OBJECT = {"messenger": "page", "instagram": "instagram"}
ACCOUNT = {"messenger": PAGE_ID, "instagram": IG_ID}


@pytest.fixture(params=["messenger", "instagram"])
def channel(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def start(services, factory, client, fake, channel, text="Hola"):
    account = await factory.account()
    user = await factory.user(account)
    config = messaging_config(channel, fake.base_url, app_id=APP_ID)
    inbox = await make_inbox(services, account, channel, config)
    hook = fake.customer_message(
        OBJECT[channel], account_id=ACCOUNT[channel], user_id=USER, text=text
    )
    assert (await fake.deliver(client, f"/hooks/{channel}/{inbox.id}", hook)).status_code == 200
    return user, inbox


async def test_echo_is_not_a_customer_message_and_receipts_apply(
    channel, client, factory, services, worker
):
    async with fake_meta_server() as fake:
        user, inbox = await start(services, factory, client, fake, channel)
        url = f"/hooks/{channel}/{inbox.id}"
        await run_jobs(services, worker)
        (incoming,) = await messages_of(services, inbox)
        await reply(services, user, incoming.conversation_id, inbox, "¡Claro! 😊")
        await run_jobs(services, worker)
        (sent,) = fake.sent
        assert sent.body["messaging_type"] == "RESPONSE"
        assert sent.body["message"] == {"metadata": sent.reference, "text": "¡Claro! 😊"}
        receipts = (
            [fake.messenger_delivery(sent), fake.messenger_read(sent)]
            if channel == "messenger"
            else [fake.instagram_read(sent)]
        )
        for hook in [fake.echo(OBJECT[channel], sent, app_id=APP_ID), *receipts] * 2:
            assert (await fake.deliver(client, url, hook)).status_code == 200
        await run_jobs(services, worker)
        messages = await messages_of(services, inbox)
        assert [m.direction for m in messages] == [Direction.incoming, Direction.outgoing]
        assert messages[1].status == DeliveryStatus.read
        assert len(fake.sent) == 1


async def test_echo_of_a_message_sent_elsewhere_is_kept_as_outgoing(
    channel, client, factory, services, worker
):
    async with fake_meta_server() as fake:
        _user, inbox = await start(services, factory, client, fake, channel)
        event = fake.messaging_event(
            ACCOUNT[channel],
            USER,
            message={
                "is_echo": True,
                "app_id": 263902037430900,
                "mid": "m_ELSEWHERE",
                "text": "Hi",
            },
        )
        hook = fake.messaging_webhook(OBJECT[channel], ACCOUNT[channel], event)
        await fake.deliver(client, f"/hooks/{channel}/{inbox.id}", hook)
        await run_jobs(services, worker)
        # Both webhooks are processed by concurrent jobs: their order is not guaranteed.
        by_direction = {m.direction: m for m in await messages_of(services, inbox)}
        incoming, elsewhere = by_direction[Direction.incoming], by_direction[Direction.outgoing]
        assert elsewhere.direction == Direction.outgoing
        assert elsewhere.payload["sent_elsewhere"] is True
        assert elsewhere.conversation_id == incoming.conversation_id
        assert elsewhere.status == DeliveryStatus.sent


async def test_lost_answer_is_reconciled_by_the_echo(channel, client, factory, services, worker):
    services.http.timeout = services.http.timeout.__class__(0.5)
    async with fake_meta_server() as fake:
        user, inbox = await start(services, factory, client, fake, channel)
        await run_jobs(services, worker)
        (incoming,) = await messages_of(services, inbox)
        fake.hang_next(accept=True)
        await reply(services, user, incoming.conversation_id, inbox, "¿Sigue ahí?")
        await worker.drain()
        (sent,) = fake.sent
        echo = fake.echo(OBJECT[channel], sent, app_id=APP_ID)
        await fake.deliver(client, f"/hooks/{channel}/{inbox.id}", echo)
        await worker.drain()
        await run_jobs(services, worker)
        _, outgoing = await messages_of(services, inbox)
        assert outgoing.status == DeliveryStatus.sent and outgoing.provider_id == sent.id
        assert len(fake.sent) == 1
        fake.release()


async def test_429_then_success_sends_once(channel, client, factory, services, worker):
    async with fake_meta_server() as fake:
        user, inbox = await start(services, factory, client, fake, channel)
        await run_jobs(services, worker)
        (incoming,) = await messages_of(services, inbox)
        fake.fail_next(
            status=429, code=613, message="Calls to this api have exceeded the rate limit."
        )
        await reply(services, user, incoming.conversation_id, inbox, "Uno")
        await run_jobs(services, worker)
        assert len(fake.sent) == 1
        _, outgoing = await messages_of(services, inbox)
        assert outgoing.status == DeliveryStatus.sent


async def age_messages(services, inbox, hours: float) -> None:
    async with services.session() as session:
        await session.execute(
            update(Message)
            .where(Message.inbox_id == inbox.id)
            .values(created_at=utcnow() - timedelta(hours=hours))
        )
        await events.commit(session)


async def test_human_agent_tag_after_24_hours_and_nothing_after_7_days(
    channel, client, factory, services, worker
):
    async with fake_meta_server() as fake:
        user, inbox = await start(services, factory, client, fake, channel)
        await run_jobs(services, worker)
        (incoming,) = await messages_of(services, inbox)
        await age_messages(services, inbox, hours=30)
        await reply(services, user, incoming.conversation_id, inbox, "Perdón por la espera")
        await run_jobs(services, worker)
        (sent,) = fake.sent
        assert sent.body["messaging_type"] == "MESSAGE_TAG" and sent.body["tag"] == "HUMAN_AGENT"
        await age_messages(services, inbox, hours=24 * 8)
        with pytest.raises(Conflict, match="window is closed"):
            await reply(services, user, incoming.conversation_id, inbox, "¿Hola?")


async def test_attachments_are_downloaded_from_the_payload_url(
    channel, client, factory, services, worker
):
    async with fake_meta_server() as fake:
        _user, inbox = await start(services, factory, client, fake, channel)
        attachment = fake.hosted_attachment("image", b"\x89PNG image", "image/png")
        hook = fake.customer_message(
            OBJECT[channel], account_id=ACCOUNT[channel], user_id=USER, attachments=[attachment]
        )
        await fake.deliver(client, f"/hooks/{channel}/{inbox.id}", hook)
        await run_jobs(services, worker)
        (photo,) = [m for m in await messages_of(services, inbox) if m.content != "Hola"]
        (stored,) = await attachments_of(services, photo)
        assert stored.size == len(b"\x89PNG image") and stored.filename.startswith("image")
        assert [r.path for r in fake.requests if r.path.startswith("/cdn/")] == [
            "/cdn/" + next(iter(fake.media))
        ]
