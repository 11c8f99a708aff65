"""Crash during a burst: `kill -9` the web process while a provider delivers signed webhooks.

A sender plays Twilio: a thousand signed SMS webhooks over several connections, each retried until
acknowledged. The web process is killed mid-burst and started again on the same port. Every
acknowledged webhook must end up as exactly one message: none missing, none doubled.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from rapport.domain.conversations.models import Direction, Message
from rapport.domain.inboxes.models import InboundEvent
from rapport.services import build_services
from rapport.web.sandbox.providers.twilio import message_params, new_sid, signed
from tests.conftest import make_settings
from tests.support.channels import channel_inbox
from tests.support.factory import Factory
from tests.support.fakes import BUSINESS_NUMBER, TWILIO_SID, TWILIO_TOKEN
from tests.support.live import eventually, free_port
from tests.support.processes import RapportProcess, running, settings_env, wait_healthy
from tests.support.senders import Sending, deliver_until_acked

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

# A burst the size a provider sends in a busy minute; 1,000 keeps the test well under a minute
# on a loaded 2-core machine (the benchmark suite measures throughput, not this test).
WEBHOOKS = 1_000
CUSTOMERS = 40


@pytest.fixture
def backend():
    return "postgres"


async def test_kill_9_during_a_webhook_burst_loses_and_doubles_nothing(db_url, tmp_path):
    settings = make_settings(db_url, tmp_path)
    services = build_services(settings, with_hub=False)
    account = await Factory(services).account()
    config = {
        "account_sid": TWILIO_SID,
        "auth_token": TWILIO_TOKEN,
        "from_number": BUSINESS_NUMBER,
        "api_base_url": "http://127.0.0.1:9",  # no reply is sent in this test
    }
    inbox = await channel_inbox(services, account, "sms", config)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/hooks/sms/{inbox.id}"
    calls = {}
    for n in range(WEBHOOKS):
        sid = new_sid("SM")
        params = message_params(
            account_sid=TWILIO_SID,
            sid=sid,
            sender=f"+1415555{n % CUSTOMERS:04d}",
            to=BUSINESS_NUMBER,
            body=f"burst message {n}",
        )
        calls[sid] = signed(url, TWILIO_TOKEN, params)

    env = settings_env(settings, outbox_lease_seconds="10")
    web = RapportProcess(["serve", "--port", str(port)], env, tmp_path / "web.log")
    worker = RapportProcess(["worker"], env, tmp_path / "worker.log")
    with running(web, worker):
        web.start()
        worker.start()
        await wait_healthy(base)

        sending = Sending(total=WEBHOOKS)
        burst = asyncio.create_task(deliver_until_acked(calls, sending, connections=12))

        async def a_third_acked():
            return len(sending.acked) >= WEBHOOKS // 3

        await eventually(a_third_acked, within=60)
        web.kill()  # kill -9, with requests in flight
        acked_before_restart = len(sending.acked)
        web.start()  # same port; the sender keeps retrying meanwhile
        await wait_healthy(base)
        await asyncio.wait_for(burst, 120)

        assert acked_before_restart < WEBHOOKS, "the crash happened after the burst"
        assert sending.failures, "the crash cut no request off"
        # Everything acknowledged was stored, once.
        async with services.read_session() as session:
            stored = await session.scalar(
                select(func.count())
                .select_from(InboundEvent)
                .where(InboundEvent.inbox_id == inbox.id)
            )
        assert stored == WEBHOOKS

        # And the worker turned each into exactly one message.
        async def all_messages():
            async with services.read_session() as session:
                rows = await session.execute(
                    select(Message.provider_id, Message.content).where(
                        Message.inbox_id == inbox.id, Message.direction == Direction.incoming
                    )
                )
                return rows.all()

        async def all_processed():
            return len(await all_messages()) >= WEBHOOKS

        await eventually(all_processed, within=120)
        rows = await all_messages()
        provider_ids = [r.provider_id for r in rows]
        assert len(provider_ids) == len(set(provider_ids)) == WEBHOOKS, "a message was doubled"
        assert set(provider_ids) == set(sending.acked), "an acknowledged webhook is missing"
        contents = sorted(r.content for r in rows)
        assert contents == sorted(f"burst message {n}" for n in range(WEBHOOKS))
    await services.stop()
