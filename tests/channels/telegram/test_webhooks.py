"""Telegram end to end: Rapport sets its webhook, verifies the secret, fetches files, replies."""

import random

import pytest
from sqlalchemy import func, select

from rapport.channels.telegram.adapter import SECRET_HEADER
from rapport.db.outbox import OutboxJob
from rapport.domain import events
from rapport.domain.accounts.models import Account
from rapport.domain.agents.models import Role
from rapport.domain.conversations import actions
from rapport.domain.conversations.models import Attachment, Message
from rapport.domain.events import Event
from rapport.domain.inboxes.models import InboundEvent
from rapport.lib.http import build_client
from rapport.web.sandbox.common import Fault
from rapport.web.sandbox.providers.telegram import update_call
from tests.support.channels import channel_inbox
from tests.support.factory import login
from tests.support.fakes import BOT_TOKEN, WEBHOOK_SECRET, running_telegram, telegram_config
from tests.support.live import eventually
from tests.support.outbound import reply, reply_and_deliver

USER = 111222333


async def count(services, model, *where):
    async with services.read_session() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
async def telegram():
    async with running_telegram() as fake:
        yield fake


@pytest.fixture
async def inbox(services, factory, telegram):
    account = await factory.account()
    return await channel_inbox(services, account, "telegram", telegram_config(telegram))


def customer(telegram, inbox, text="Hola 👋", secret=WEBHOOK_SECRET, **kwargs):
    update = telegram.message_update(
        user_id=USER, first_name="Lucía", last_name="Núñez", text=text, **kwargs
    )
    return update_call(f"http://testserver/hooks/telegram/{inbox.id}", secret, update)


async def test_saving_the_inbox_sets_the_webhook_with_its_secret(
    client, services, factory, telegram
):
    account = await factory.account()
    admin = await factory.user(account, role=Role.admin)
    csrf = await login(client, admin)
    response = await client.post(
        "/settings/inboxes/new?channel=telegram",
        data={
            "csrf_token": csrf,
            "name": "Support bot",
            "config.bot_token": BOT_TOKEN,
            "config.webhook_secret": "",
            "config.api_base_url": telegram.base_url,
        },
    )
    assert response.status_code == 303, response.text
    inbox_id = int(response.headers["location"].rsplit("/", 1)[1])
    hook = telegram.webhooks[BOT_TOKEN]
    assert hook["url"] == f"http://testserver/hooks/telegram/{inbox_id}"
    assert len(hook["secret_token"]) >= 32  # made for us, never shown back
    assert "message_reaction" in hook["allowed_updates"]
    signed = update_call(
        hook["url"],
        hook["secret_token"],
        telegram.message_update(user_id=1, first_name="A", text="hi"),
    )
    assert (await signed.deliver(client)).status_code == 200


async def test_a_refused_bot_token_is_shown_and_nothing_is_saved(
    client, services, factory, telegram
):
    account = await factory.account()
    admin = await factory.user(account, role=Role.admin)
    csrf = await login(client, admin)
    response = await client.post(
        "/settings/inboxes/new?channel=telegram",
        data={
            "csrf_token": csrf,
            "name": "Wrong bot",
            "config.bot_token": "999:not-a-real-token",
            "config.api_base_url": telegram.base_url,
        },
    )
    assert response.status_code == 422 and "Unauthorized" in response.text


async def test_an_update_is_kept_once_and_becomes_one_message(
    client, services, inbox, worker, telegram
):
    call = customer(telegram, inbox)
    for _ in range(3):  # Telegram repeats an update until it gets a 2xx
        assert (await call.deliver(client)).status_code == 200
    assert await count(services, InboundEvent) == 1
    await worker.drain()
    async with services.read_session() as session:
        [message] = (await session.scalars(select(Message))).all()
    assert message.content == "Hola 👋" and message.channel == "telegram"


@pytest.mark.parametrize("backend", ["sqlite"])  # refused before any row: one database is enough
@pytest.mark.parametrize(
    "secret",
    ["wrong-secret", WEBHOOK_SECRET + "x", WEBHOOK_SECRET[:-1]],
    ids=["wrong", "longer", "shorter"],
)
async def test_a_wrong_secret_changes_nothing(client, services, inbox, worker, telegram, secret):
    call = customer(telegram, inbox, media=[("p.png", "image/png", b"png")], secret=secret)
    assert (await call.deliver(client)).status_code == 403
    headers = {k: v for k, v in call.headers.items() if k != SECRET_HEADER}
    missing = await client.post(call.url, content=call.body, headers=headers)
    assert missing.status_code == 401
    await worker.drain()
    for model in (InboundEvent, OutboxJob, Message, Event):
        assert await count(services, model) == 0
    assert telegram.downloads == 0 and telegram.calls == []


async def test_a_photo_is_fetched_with_getfile_after_verification(
    client, services, inbox, worker, telegram
):
    photo = b"\x89PNG\r\n" + bytes(200)
    await customer(
        telegram, inbox, text="the box", media=[("box.png", "image/png", photo)]
    ).deliver(client)
    await worker.drain()
    async with services.read_session() as session:
        [attachment] = (await session.scalars(select(Attachment))).all()
    assert await services.files.read(attachment.storage_key) == photo
    assert [method for method, _ in telegram.calls] == ["getFile"]
    assert telegram.downloads == 1


async def test_shuffled_redeliveries_give_each_message_once(
    client, services, inbox, worker, telegram
):
    calls = [customer(telegram, inbox, text=f"message {n}") for n in range(3)]
    deliveries = calls * 3
    random.Random(6).shuffle(deliveries)
    for call in deliveries:
        assert (await call.deliver(client)).status_code == 200
    await worker.drain()
    async with services.read_session() as session:
        texts = sorted((await session.scalars(select(Message.content))).all())
    assert texts == ["message 0", "message 1", "message 2"]


async def test_a_reply_is_one_sendmessage_to_the_chat(
    client, services, factory, inbox, worker, telegram
):
    await customer(telegram, inbox).deliver(client)
    await worker.drain()
    sent = await reply_and_deliver(
        services, factory, worker, inbox, "¡Hola Lucía! ¿En qué te ayudo?"
    )
    [(method, params)] = [c for c in telegram.calls if c[0] != "getFile"]
    assert method == "sendMessage" and params["chat_id"] == USER
    assert params["text"] == "¡Hola Lucía! ¿En qué te ayudo?"
    assert sent.status == "sent" and sent.provider_id.startswith(f"{USER}:")


async def test_a_429_waits_for_retry_after_then_sends_once(
    client, services, factory, inbox, worker, telegram
):
    await customer(telegram, inbox).deliver(client)
    await worker.drain()
    telegram.faults.add(Fault(status=429, retry_after=1))
    queued = await reply(services, factory, inbox, "One moment please")
    await worker.drain()
    async with services.read_session() as session:
        job = await session.get(OutboxJob, queued.outbox_job_id)
        waiting = await session.get(Message, queued.id)
    assert "429" in waiting.error and job.available_at > job.created_at

    async def sent():
        await worker.run_once()
        async with services.read_session() as session:
            return (await session.get(Message, queued.id)).status == "sent"

    await eventually(sent, within=15)
    sends = [c for c in telegram.calls if c[0] == "sendMessage"]
    assert len(sends) == 2 and len(telegram.transcript.entries) == 1  # refused once, sent once


async def test_no_answer_in_time_is_a_dead_letter_not_a_second_copy(
    client, services, factory, inbox, worker, telegram
):
    await services.http.aclose()
    services.http = build_client(allow_private=True, timeout=0.3)
    await customer(telegram, inbox).deliver(client)
    await worker.drain()
    telegram.faults.add(Fault(status=502, delay=1.0))  # Telegram is slow to answer
    failed = await reply_and_deliver(services, factory, worker, inbox, "Are you there?")
    assert failed.status == "failed" and "may have been delivered" in failed.error
    assert len([c for c in telegram.calls if c[0] == "sendMessage"]) == 1


async def test_a_send_cut_off_by_a_worker_crash_is_a_dead_letter_not_a_second_copy(
    client, services, factory, inbox, worker, telegram
):
    await customer(telegram, inbox).deliver(client)
    await worker.drain()
    queued = await reply(services, factory, inbox, "Your order has shipped")
    # What a worker killed during the Bot API call leaves: the reply marked `sending`, its job
    # back once the lease ran out. Telegram may or may not have it.
    async with services.session() as session:
        message = await session.get(Message, queued.id)
        await actions.mark_sending(session, message=message)
        await events.commit(session)
    await worker.drain()
    async with services.read_session() as session:
        failed = await session.get(Message, queued.id)
    assert failed.status == "failed" and "may have been delivered" in failed.error
    assert not [c for c in telegram.calls if c[0] == "sendMessage"]

    # The agent checked with the customer and presses Retry: now it goes, once.
    agent = await factory.user(await account_of(services, inbox), role=Role.agent)
    async with services.session() as session:
        message = await session.get(Message, queued.id)
        await actions.retry_delivery(session, message=message, actor=agent)
        await events.commit(session)
    await worker.drain()
    async with services.read_session() as session:
        assert (await session.get(Message, queued.id)).status == "sent"
    assert len([c for c in telegram.calls if c[0] == "sendMessage"]) == 1


async def account_of(services, inbox):
    async with services.read_session() as session:
        return await session.get(Account, inbox.account_id)


async def test_files_go_in_one_call(client, services, factory, inbox, worker, telegram):
    await customer(telegram, inbox).deliver(client)
    await worker.drain()
    files = [("guide.pdf", "application/pdf", b"%PDF-1.4"), ("map.png", "image/png", b"png")]
    message = await reply(services, factory, inbox, "Here you go", files=files)
    await worker.drain()
    [(method, params)] = [c for c in telegram.calls if c[0].startswith("send")]
    assert method == "sendMediaGroup"
    assert '"caption": "Here you go"' in params["media"]
    async with services.read_session() as session:
        assert (await session.get(Message, message.id)).status == "sent"
    assert telegram.transcript.entries[-1].media == ["guide.pdf", "map.png"]
