"""SMS replies: sent once whatever the provider does, STOP obeyed, dead letters retried."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from rapport.db.outbox import OutboxJob
from rapport.domain.accounts.models import Account
from rapport.domain.contacts.models import Identity
from rapport.domain.conversations.models import Message
from rapport.domain.errors import Conflict
from rapport.lib.clock import utcnow
from rapport.lib.http import build_client
from rapport.web.sandbox.common import Fault
from rapport.web.sandbox.providers.twilio import message_params, new_sid, signed
from tests.support.channels import channel_inbox
from tests.support.factory import login
from tests.support.fakes import (
    BUSINESS_NUMBER,
    TWILIO_SID,
    TWILIO_TOKEN,
    running_twilio,
    sms_config,
)
from tests.support.live import eventually
from tests.support.outbound import reply, reply_and_deliver

CUSTOMER = "+14155550123"


@pytest.fixture
async def twilio(client):
    async with running_twilio(client, statuses=("sent", "delivered")) as fake:
        yield fake


async def sms_inbox(services, factory, twilio, **config):
    account = await factory.account()
    return await channel_inbox(services, account, "sms", sms_config(twilio, **config))


async def customer_texts(client, inbox, body):
    params = message_params(
        account_sid=TWILIO_SID,
        sid=new_sid("SM"),
        sender=CUSTOMER,
        to=BUSINESS_NUMBER,
        body=body,
    )
    call = signed(f"http://testserver/hooks/sms/{inbox.id}", TWILIO_TOKEN, params)
    response = await call.deliver(client)
    assert response.status_code == 200
    return response


async def message(services, message_id):
    async with services.read_session() as session:
        return await session.get(Message, message_id)


async def until_settled(services, worker, message_id, status):
    async def settled():
        await worker.run_once()
        found = await message(services, message_id)
        return found if found.status == status else None

    return await eventually(settled, within=15)


async def test_a_reply_goes_out_with_our_status_callback_and_comes_back_delivered(
    client, services, factory, worker, twilio
):
    inbox = await sms_inbox(services, factory, twilio)
    await customer_texts(client, inbox, "Hi!")
    await worker.drain()
    sent = await reply_and_deliver(services, factory, worker, inbox, "Hello! How can we help?")
    [create] = twilio.creates
    assert create["To"] == CUSTOMER and create["From"] == BUSINESS_NUMBER
    assert create["Body"] == "Hello! How can we help?"
    assert create["StatusCallback"] == f"http://testserver/hooks/sms/{inbox.id}"
    assert sent.provider_id == twilio.messages[0]["sid"]
    await until_settled(services, worker, sent.id, "delivered")  # the provider's callbacks


async def test_a_429_then_success_sends_once(client, services, factory, worker, twilio):
    inbox = await sms_inbox(services, factory, twilio)
    await customer_texts(client, inbox, "Hi!")
    await worker.drain()
    twilio.faults.add(Fault(status=429, retry_after=1))
    queued = await reply(services, factory, inbox, "Thanks for waiting")
    await worker.drain()
    waiting = await message(services, queued.id)
    assert waiting.status == "sending" and "429" in waiting.error
    await until_settled(services, worker, queued.id, "delivered")
    assert len(twilio.messages) == 1
    assert len(twilio.creates) == 2  # the refused attempt and the accepted one


async def test_a_send_hidden_by_a_timeout_is_found_not_sent_again(
    client, services, factory, worker, twilio
):
    await services.http.aclose()
    services.http = build_client(allow_private=True, timeout=0.3)
    inbox = await sms_inbox(services, factory, twilio)
    await customer_texts(client, inbox, "Hi!")
    await worker.drain()
    twilio.faults.add(Fault(accept=True, delay=1.0))  # accepted, answered too late
    queued = await reply(services, factory, inbox, "Your refund is on its way")
    await worker.drain()
    assert len(twilio.messages) == 1
    assert (await message(services, queued.id)).status == "sending"
    sent = await until_settled(services, worker, queued.id, "delivered")
    assert sent.provider_id == twilio.messages[0]["sid"]
    assert len(twilio.creates) == 1  # the provider never got a second send


async def test_stop_is_recorded_and_every_later_send_is_refused(
    client, services, factory, worker, twilio
):
    inbox = await sms_inbox(services, factory, twilio)
    await customer_texts(client, inbox, "Hi!")
    await worker.drain()
    queued_before = await reply(services, factory, inbox, "A reply written before the STOP")
    await _postpone(services, queued_before.outbox_job_id)  # still waiting when STOP arrives
    response = await customer_texts(client, inbox, "STOP")
    assert b"<Message>" not in response.content  # the provider answers STOP itself
    await worker.drain()
    await _postpone(services, queued_before.outbox_job_id, seconds=-1)
    await worker.drain()
    async with services.read_session() as session:
        identity = await session.scalar(select(Identity).where(Identity.value == CUSTOMER))
    assert identity.opted_out_at is not None
    refused = await message(services, queued_before.id)
    assert refused.status == "failed" and refused.error == "the contact opted out on this channel"
    with pytest.raises(Conflict, match="opted out"):
        await reply(services, factory, inbox, "Are you sure?")
    assert twilio.creates == []

    await customer_texts(client, inbox, "START")
    await worker.drain()
    again = await reply_and_deliver(services, factory, worker, inbox, "Welcome back")
    assert again.status in ("sent", "delivered") and len(twilio.creates) == 1


async def test_spanish_keywords_are_answered_in_spanish_by_rapport(
    client, services, factory, worker, twilio
):
    inbox = await sms_inbox(services, factory, twilio)
    response = await customer_texts(client, inbox, "Baja")
    assert "Te has dado de baja" in response.text
    help_answer = await customer_texts(client, inbox, "AYUDA")
    assert "Responde BAJA" in help_answer.text
    await worker.drain()
    async with services.read_session() as session:
        identity = await session.scalar(select(Identity).where(Identity.value == CUSTOMER))
    assert identity.opted_out_at is not None


async def test_on_a_short_code_rapport_answers_the_english_keywords_too(
    client, services, factory, twilio
):
    inbox = await sms_inbox(services, factory, twilio, answer_keywords=True)
    response = await customer_texts(client, inbox, "HELP")
    assert "<Message>Reply STOP to unsubscribe. Msg&amp;Data Rates May Apply.</Message>" in (
        response.text
    )


async def test_a_refused_message_is_a_dead_letter_the_agent_can_retry(
    client, services, factory, worker, twilio
):
    inbox = await sms_inbox(services, factory, twilio)
    await customer_texts(client, inbox, "Hi!")
    await worker.drain()
    twilio.opted_out.add((BUSINESS_NUMBER, CUSTOMER))  # the provider knows a STOP we never saw
    failed = await reply_and_deliver(services, factory, worker, inbox, "Hello?")
    assert failed.status == "failed"
    assert "21610" in failed.error and "START" in failed.error

    twilio.opted_out.clear()
    user = await factory.user(await _account(services, inbox.account_id))
    csrf = await login(client, user)
    retried = await client.post(
        f"/conversations/{failed.conversation_id}/messages/{failed.id}/retry",
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert retried.status_code == 200
    await worker.drain()
    assert (await message(services, failed.id)).status in ("sent", "delivered")
    assert len(twilio.messages) == 1


async def _account(services, account_id):
    async with services.read_session() as session:
        return await session.get(Account, account_id)


async def _postpone(services, job_id, seconds=3600):
    async with services.session() as session:
        await session.execute(
            update(OutboxJob)
            .where(OutboxJob.id == job_id)
            .values(available_at=utcnow() + timedelta(seconds=seconds))
        )
        await session.commit()
