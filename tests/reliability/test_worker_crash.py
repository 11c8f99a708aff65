"""Worker crash during delivery: `kill -9` the worker while replies are going out.

The provider accepts a batch of replies and holds its answers; the worker is killed right
then, so those sends were accepted but never recorded as sent. The restarted worker must not
make the provider send any of them twice:

- API inbox: the integration honours idempotency keys; the retries carry the same key and the
  integration recognises it.
- SMS inbox: Twilio takes no key, so a reply left `sending` is in doubt and the adapter looks
  for the accepted send before sending again (channels/sms/api.py).
- Telegram inbox: no key and no list of sent messages, so a reply in doubt becomes a dead letter
  the agent can retry; it is never sent a second time behind their back.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import DeliveryStatus, Message
from rapport.domain.ports import IdentityClaim
from rapport.services import build_services
from rapport.web.sandbox.common import Fault
from rapport.web.sandbox.providers.telegram import update_call
from rapport.web.sandbox.providers.twilio import FakeTwilio
from rapport.workers.delivery import idempotency_key
from tests.conftest import make_settings
from tests.support.channels import channel_inbox, provider_app
from tests.support.factory import Factory
from tests.support.fakes import (
    TWILIO_SID,
    TWILIO_TOKEN,
    WEBHOOK_SECRET,
    running_telegram,
    sms_config,
    telegram_config,
)
from tests.support.integration import FakeIntegration
from tests.support.live import eventually, serve
from tests.support.outbound import claimed_deliveries, reply
from tests.support.processes import RapportProcess, running, settings_env

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

CUSTOMERS = 10
REPLIES = 60
CONCURRENCY = 8  # the worker sends this many at once


@pytest.fixture
def backend():
    return "postgres"


async def all_sent(services, queued):
    async with services.read_session() as session:
        rows = await session.execute(
            select(Message.id, Message.status, Message.provider_id).where(
                Message.id.in_([m.id for m in queued])
            )
        )
        done = [r for r in rows.all() if r.status == DeliveryStatus.sent]
        return done if len(done) == len(queued) else None


async def test_kill_9_during_delivery_sends_every_reply_exactly_once(db_url, tmp_path):
    settings = make_settings(db_url, tmp_path)
    services = build_services(settings, with_hub=False)
    factory = Factory(services)
    integration = FakeIntegration()
    async with serve(integration.app()) as fake_base:
        account = await factory.account()
        inbox = await factory.api_inbox(account, outbound_url=f"{fake_base}/replies")
        conversations = [
            (await factory.receive(account, inbox, external_id=f"customer-{n}")).conversation.id
            for n in range(CUSTOMERS)
        ]
        queued = [
            await reply(
                services, factory, inbox, f"reply {n}", conversation_id=conversations[n % CUSTOMERS]
            )
            for n in range(REPLIES)
        ]

        env = settings_env(settings, outbox_lease_seconds="3", worker_concurrency=str(CONCURRENCY))
        worker = RapportProcess(["worker"], env, tmp_path / "worker.log")
        with running(worker):
            integration.hold()  # the provider accepts the first sends and answers late...
            worker.start()

            async def a_batch_accepted():
                held = await claimed_deliveries(services)
                return held if held and integration.waiting == held else None

            held = await eventually(a_batch_accepted, within=30)
            worker.kill()  # ...and the worker dies before it hears back
            in_doubt = set(integration.accepted)
            integration.let_go()
            worker.start()

            sent = await eventually(lambda: all_sent(services, queued), within=45)

    assert len(in_doubt) == held
    # The provider accepted exactly one send per reply, and every reply was accepted.
    assert integration.accepted == {m.id: 1 for m in queued}
    # Every attempt at one reply carried that reply's one key; the in-doubt ones were retried.
    for message in queued:
        assert set(integration.keys[message.id]) == {idempotency_key(message.id)}
    retried = {m for m, keys in integration.keys.items() if len(keys) > 1}
    assert retried == in_doubt
    # What Rapport recorded is the provider's answer to the one accepted send.
    assert {r.provider_id for r in sent} == {a["id"] for a in integration.answers.values()}
    await services.stop()


async def test_kill_9_during_sms_delivery_never_sends_an_accepted_reply_twice(db_url, tmp_path):
    settings = make_settings(db_url, tmp_path)
    services = build_services(settings, with_hub=False)
    factory = Factory(services)
    twilio = FakeTwilio(accounts={TWILIO_SID: TWILIO_TOKEN})
    # The first batch is accepted, but Twilio's answers come only after the worker is dead.
    twilio.faults.add(*[Fault(accept=True, delay=6) for _ in range(CONCURRENCY)])
    async with serve(provider_app(twilio.router)) as fake_base:
        twilio.base_url = fake_base
        account = await factory.account()
        inbox = await channel_inbox(services, account, "sms", sms_config(twilio))
        conversations = []
        for n in range(CUSTOMERS):
            phone = IdentityClaim(IdentityKind.phone, f"+1415555{n:04d}", Verification.verified)
            received = await factory.receive(account, inbox, claims=(phone,))
            conversations.append(received.conversation.id)
        queued = [
            await reply(
                services, factory, inbox, f"reply {n}", conversation_id=conversations[n % CUSTOMERS]
            )
            for n in range(REPLIES)
        ]

        env = settings_env(settings, outbox_lease_seconds="3", worker_concurrency=str(CONCURRENCY))
        worker = RapportProcess(["worker"], env, tmp_path / "worker.log")
        with running(worker):
            worker.start()

            async def a_batch_accepted():
                held = await claimed_deliveries(services)
                return held if held and len(twilio.messages) == held else None

            held = await eventually(a_batch_accepted, within=30)
            worker.kill()
            in_doubt = {m["body"] for m in twilio.messages}
            worker.start()
            sent = await eventually(lambda: all_sent(services, queued), within=45)

    assert len(in_doubt) == held
    bodies = [m["body"] for m in twilio.messages]
    assert sorted(bodies) == sorted(f"reply {n}" for n in range(REPLIES)), "sent twice or never"
    # The in-doubt replies were adopted from the provider's list instead of being sent again.
    assert {r.provider_id for r in sent} == {m["sid"] for m in twilio.messages}
    assert len(twilio.creates) == REPLIES
    await services.stop()


async def test_kill_9_during_telegram_delivery_makes_a_dead_letter_not_a_second_copy(
    db_url, tmp_path, settings, services, factory, client, worker
):
    async with running_telegram() as telegram:
        account = await factory.account()
        inbox = await channel_inbox(services, account, "telegram", telegram_config(telegram))
        update = telegram.message_update(user_id=4242, first_name="Lucía", text="Hola")
        await update_call(
            f"http://testserver/hooks/telegram/{inbox.id}", WEBHOOK_SECRET, update
        ).deliver(client)
        await worker.drain()
        # The first batch of Bot API calls hangs (and then fails) until the worker is dead.
        telegram.faults.add(*[Fault(status=502, delay=6) for _ in range(CONCURRENCY)])
        queued = [await reply(services, factory, inbox, f"reply {n}") for n in range(20)]

        env = settings_env(settings, outbox_lease_seconds="3", worker_concurrency=str(CONCURRENCY))
        process = RapportProcess(["worker"], env, tmp_path / "worker.log")
        with running(process):
            process.start()

            def sends():
                return [c[1]["text"] for c in telegram.calls if c[0] == "sendMessage"]

            async def a_batch_in_flight():
                held = await claimed_deliveries(services)
                return held if held and len(sends()) == held else None

            held = await eventually(a_batch_in_flight, within=30)
            process.kill()
            in_doubt = set(sends())
            process.start()

            async def settled():
                async with services.read_session() as session:
                    rows = await session.execute(
                        select(Message.content, Message.status, Message.error).where(
                            Message.id.in_([m.id for m in queued])
                        )
                    )
                    done = [r for r in rows.all() if r.status in ("sent", "failed")]
                    return done if len(done) == len(queued) else None

            done = await eventually(settled, within=45)

    assert len(in_doubt) == held
    failed = {r.content for r in done if r.status == "failed"}
    assert failed == in_doubt, "only the replies cut off mid-send wait for the agent"
    assert all("may have been delivered" in r.error for r in done if r.status == "failed")
    assert sorted(sends()) == sorted(m.content for m in queued), "a reply went out twice"
