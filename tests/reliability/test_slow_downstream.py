"""A slow downstream does not slow the webhook acknowledgement.

The provider that replies go out through stops answering (it accepted the sends and sits on
them, the extreme of a slow provider), so the worker, running inside the web process as in the
embedded set-up, is stuck waiting on it. Webhooks arriving meanwhile must still be acknowledged,
every one of them, before a single send has been answered: the acknowledgement waits for the
durable write only, never for the worker or a provider. No timing threshold is involved: the
sends are held until the test lets them go. Afterwards everything catches up.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from rapport.domain.conversations.models import DeliveryStatus, Direction, Message
from rapport.domain.inboxes.models import InboundEvent
from rapport.services import build_services
from rapport.web.sandbox.common import SignedCall
from tests.conftest import make_settings
from tests.support.factory import Factory, signed_api_call
from tests.support.integration import FakeIntegration
from tests.support.live import eventually, free_port, serve
from tests.support.outbound import claimed_deliveries, reply
from tests.support.processes import RapportProcess, running, settings_env, wait_healthy
from tests.support.senders import deliver_until_acked

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

REPLIES = 8
WEBHOOKS = 200


async def test_webhooks_are_acknowledged_while_every_send_hangs(db_url, tmp_path):
    settings = make_settings(db_url, tmp_path)
    services = build_services(settings, with_hub=False)
    factory = Factory(services)
    integration = FakeIntegration()
    async with serve(integration.app()) as fake_base:
        account = await factory.account()
        inbox = await factory.api_inbox(account, outbound_url=f"{fake_base}/replies")
        conversation = (await factory.receive(account, inbox, external_id="customer")).conversation
        queued = [
            await reply(services, factory, inbox, f"reply {n}", conversation_id=conversation.id)
            for n in range(REPLIES)
        ]

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        calls = {}
        for n in range(WEBHOOKS):
            raw, headers = signed_api_call(
                {"id": f"m-{n}", "contact": {"id": f"customer-{n % 5}"}, "content": f"hi {n}"}
            )
            calls[f"m-{n}"] = SignedCall(f"{base}/hooks/api/{inbox.id}", raw, headers)

        env = settings_env(settings, worker_concurrency=str(REPLIES))
        web = RapportProcess(
            ["serve", "--with-worker", "--port", str(port)], env, tmp_path / "web.log"
        )
        with running(web):
            integration.hold()
            web.start()
            await wait_healthy(base)

            async def worker_stuck_on_the_provider():
                held = await claimed_deliveries(services)
                return held if held and integration.waiting == held else None

            held = await eventually(worker_stuck_on_the_provider, within=30)

            sending = await deliver_until_acked(calls, connections=8, within=120)

            # Every webhook was acknowledged at the first attempt, and durably stored, while
            # no send had been answered yet.
            assert integration.answered == 0
            assert integration.waiting == held
            assert sending.attempts == WEBHOOKS and not sending.failures
            async with services.read_session() as session:
                stored = await session.scalar(
                    select(func.count())
                    .select_from(InboundEvent)
                    .where(InboundEvent.inbox_id == inbox.id)
                )
            assert stored == WEBHOOKS

            integration.let_go()  # the provider answers at last: everything catches up

            async def caught_up():
                async with services.read_session() as session:
                    rows = (
                        await session.execute(
                            select(Message.direction, Message.status).where(
                                Message.inbox_id == inbox.id
                            )
                        )
                    ).all()
                incoming = sum(r.direction == Direction.incoming for r in rows)
                sent = sum(r.status == DeliveryStatus.sent for r in rows)
                return incoming == WEBHOOKS + 1 and sent == REPLIES

            await eventually(caught_up, within=60)
    assert integration.accepted == {m.id: 1 for m in queued}
    await services.stop()
