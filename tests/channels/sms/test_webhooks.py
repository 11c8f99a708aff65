"""The SMS webhook: signed calls are kept once and become messages; unsigned ones change nothing."""

import random

import pytest
from sqlalchemy import func, select

from rapport.db.outbox import OutboxJob
from rapport.domain.conversations.models import Attachment, Message
from rapport.domain.events import Event
from rapport.domain.inboxes.models import InboundEvent
from rapport.lib.twilio_webhooks import SIGNATURE_HEADER
from rapport.web.sandbox.providers.twilio import message_params, new_sid, signed
from tests.support.channels import channel_inbox
from tests.support.fakes import TWILIO_SID, TWILIO_TOKEN, running_twilio, sms_config
from tests.support.outbound import reply_and_deliver, status_call

CUSTOMER = "+14155550123"


async def count(services, model, *where):
    async with services.read_session() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


def customer_sms(url, body="Where is my order?", token=TWILIO_TOKEN, media=(), sid=None):
    params = message_params(
        account_sid=TWILIO_SID,
        sid=sid or new_sid("SM"),
        sender=CUSTOMER,
        to="+14155550100",
        body=body,
        media=media,
    )
    return signed(url, token, params)


@pytest.fixture
async def twilio(client):
    async with running_twilio(client) as fake:
        yield fake


@pytest.fixture
async def inbox(services, factory, twilio):
    account = await factory.account()
    return await channel_inbox(
        services, account, "sms", sms_config(twilio, secondary_auth_token="next-token-987654")
    )


def hook(inbox, host="http://testserver"):
    return f"{host}/hooks/sms/{inbox.id}"


async def test_a_signed_sms_is_kept_once_and_becomes_one_message(client, services, inbox, worker):
    call = customer_sms(hook(inbox), body="¿Dónde está mi pedido? 😊")
    for _ in range(3):  # the provider retries when it does not hear back
        response = await call.deliver(client)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/xml")
        assert response.content.endswith(b"<Response></Response>")
    assert await count(services, InboundEvent) == 1
    await worker.drain()
    async with services.read_session() as session:
        [message] = (await session.scalars(select(Message))).all()
    assert message.content == "¿Dónde está mi pedido? 😊" and message.channel == "sms"


@pytest.mark.parametrize("backend", ["sqlite"])  # refused before any row: one database is enough
@pytest.mark.parametrize(
    "forge",
    [
        lambda inbox: customer_sms(hook(inbox), token="wrong-token-000"),  # invalid
        lambda inbox: customer_sms(f"http://testserver/hooks/sms/{inbox.id + 1}"),  # wrong URL
        lambda inbox: customer_sms(hook(inbox) + "?extra=1"),  # query string not requested
        lambda inbox: customer_sms(hook(inbox, "https://testserver")),  # wrong scheme
        lambda inbox: customer_sms(hook(inbox, "http://testserver:8080")),  # wrong port
    ],
    ids=["invalid", "wrong-url", "wrong-query", "wrong-scheme", "wrong-port"],
)
async def test_forged_calls_change_nothing(client, services, inbox, worker, twilio, forge):
    media = [(twilio.media_url(TWILIO_SID, "MM1", "image/png", b"png"), "image/png")]
    call = forge(inbox)
    forged = customer_sms(call.url, media=media)
    headers = {**forged.headers, SIGNATURE_HEADER: call.headers[SIGNATURE_HEADER]}
    response = await client.post(hook(inbox), content=forged.body, headers=headers)
    assert response.status_code == 403
    await worker.drain()
    for model in (InboundEvent, OutboxJob, Message, Event):
        assert await count(services, model) == 0
    assert twilio.media_fetches == 0


async def test_a_missing_signature_is_401(client, services, inbox):
    call = customer_sms(hook(inbox))
    headers = {k: v for k, v in call.headers.items() if k != SIGNATURE_HEADER}
    response = await client.post(hook(inbox), content=call.body, headers=headers)
    assert response.status_code == 401
    assert await count(services, InboundEvent) == 0


async def test_the_default_port_and_the_secondary_token_are_accepted(client, services, inbox):
    assert (await customer_sms(hook(inbox, "http://testserver:80")).deliver(client)).is_success
    rotated = customer_sms(hook(inbox), token="next-token-987654")
    assert (await rotated.deliver(client)).is_success
    assert await count(services, InboundEvent) == 2


async def test_mms_media_is_fetched_from_the_provider_after_verification(
    client, services, inbox, worker, twilio
):
    photo = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
    media = [(twilio.media_url(TWILIO_SID, "MM1", "image/png", photo), "image/png")]
    await customer_sms(hook(inbox), body="", media=media).deliver(client)
    await worker.drain()
    async with services.read_session() as session:
        [attachment] = (await session.scalars(select(Attachment))).all()
    assert attachment.content_type == "image/png" and attachment.size == len(photo)
    assert await services.files.read(attachment.storage_key) == photo
    assert twilio.media_fetches == 1


async def test_media_from_anywhere_but_the_provider_is_not_fetched(
    client, services, inbox, worker, twilio
):
    media = [("https://attacker.example/steal.png", "image/png")]
    await customer_sms(hook(inbox), media=media).deliver(client)
    await worker.drain()
    async with services.read_session() as session:
        [failed] = (await session.scalars(select(InboundEvent))).all()
    assert failed.status == "failed" and "not the provider's" in failed.error
    assert await count(services, Message) == 0


async def test_redeliveries_in_any_order_give_one_message_with_the_final_status(
    client, services, factory, inbox, worker, twilio
):
    account_inbox = inbox
    await customer_sms(hook(account_inbox), body="Hi").deliver(client)
    await worker.drain()
    reply = await reply_and_deliver(services, factory, worker, account_inbox, "Hello from us")
    sid = reply.provider_id
    calls = [
        status_call(hook(account_inbox), sid, status) for status in ("sent", "delivered", "queued")
    ]
    deliveries = calls * 3
    random.Random(4).shuffle(deliveries)
    for call in deliveries:
        assert (await call.deliver(client)).is_success
        await worker.drain()
    assert await count(services, InboundEvent) == 4  # the customer's SMS and three statuses
    async with services.read_session() as session:
        message = await session.get(Message, reply.id)
    assert message.status == "delivered"
    assert len(twilio.creates) == 1


async def test_another_tenants_token_does_not_open_this_inbox(
    client, services, factory, inbox, twilio
):
    other = await factory.account("Globex")
    await channel_inbox(
        services, other, "sms", sms_config(twilio, auth_token="globex-token-123456")
    )
    response = await customer_sms(hook(inbox), token="globex-token-123456").deliver(client)
    assert response.status_code == 403
    assert await count(services, InboundEvent) == 0


async def test_media_must_be_the_type_the_webhook_declared(client, services, inbox, worker, twilio):
    served_as_html = twilio.media_url(TWILIO_SID, "MM1", "text/html", b"<script>alert(1)</script>")
    await customer_sms(hook(inbox), media=[(served_as_html, "image/png")]).deliver(client)
    await worker.drain()
    async with services.read_session() as session:
        [failed] = (await session.scalars(select(InboundEvent))).all()
    assert failed.status == "failed" and "text/html" in failed.error
    assert await count(services, Attachment) == 0
