"""Sending on WhatsApp: once and only once, the 24-hour window, templates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from rapport.channels.base import SendContext
from rapport.channels.whatsapp import WhatsAppChannel
from rapport.domain import events
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import DeliveryStatus, Message
from rapport.domain.errors import Conflict
from rapport.domain.ports import IdentityClaim
from rapport.lib.clock import utcnow
from tests.support.meta import (
    PHONE_NUMBER_ID,
    fake_meta_server,
    make_inbox,
    messages_of,
    reply,
    run_jobs,
    whatsapp_config,
)

WA_ID = "34612345678"


async def conversation_with_customer(services, factory, client, fake):
    account = await factory.account()
    user = await factory.user(account)
    inbox = await make_inbox(services, account, "whatsapp", whatsapp_config(fake.base_url))
    hook = fake.whatsapp_text(phone_number_id=PHONE_NUMBER_ID, wa_id=WA_ID, text="Hola")
    assert (await fake.deliver(client, f"/hooks/whatsapp/{inbox.id}", hook)).status_code == 200
    return account, user, inbox


async def test_429_then_success_sends_once(client, factory, services, worker):
    async with fake_meta_server() as fake:
        _account, user, inbox = await conversation_with_customer(services, factory, client, fake)
        await run_jobs(services, worker)
        (incoming,) = await messages_of(services, inbox)
        fake.fail_next(status=429, code=130429, message="Rate limit hit", retry_after=3)
        message = await reply(services, user, incoming.conversation_id, inbox, "Un momento 🙏")
        await worker.drain()
        _, waiting = await messages_of(services, inbox)
        assert waiting.status == DeliveryStatus.sending
        assert "Rate limit hit" in (waiting.error or "")  # the agent sees it is being retried
        await run_jobs(services, worker)
        _, sent = await messages_of(services, inbox)
        assert sent.id == message.id and sent.status == DeliveryStatus.sent and sent.error is None
        assert len(fake.sent) == 1 and fake.sent[0].text == "Un momento 🙏"
        assert sent.provider_id == fake.sent[0].id
        assert fake.sent[0].reference == f"rapport-msg-{message.id}"


async def test_lost_answer_is_reconciled_never_sent_twice(
    client, factory, services, worker, settings
):
    """Meta accepted the send but its answer never came back (timeout): no second send."""
    settings.http_timeout_seconds = 0.5
    services.http.timeout = services.http.timeout.__class__(0.5)
    async with fake_meta_server() as fake:
        _account, user, inbox = await conversation_with_customer(services, factory, client, fake)
        await run_jobs(services, worker)
        (incoming,) = await messages_of(services, inbox)
        fake.hang_next(accept=True)
        await reply(services, user, incoming.conversation_id, inbox, "¿Sigue ahí?")
        await worker.drain()
        assert len(fake.sent) == 1  # accepted, but Rapport never heard back
        _, pending = await messages_of(services, inbox)
        assert pending.status == DeliveryStatus.sending and pending.provider_id is None
        # Meta then sends the "sent" status, carrying our key back.
        (status,) = fake.whatsapp_statuses(fake.sent[0], "sent")
        await fake.deliver(client, f"/hooks/whatsapp/{inbox.id}", status)
        await worker.drain()  # the status comes in while the retry still waits
        _, done = await messages_of(services, inbox)
        assert done.status == DeliveryStatus.sent
        await run_jobs(services, worker)  # the retry is due: it finds nothing left to send
        _, done = await messages_of(services, inbox)
        assert done.status == DeliveryStatus.sent
        assert done.provider_id == fake.sent[0].id
        assert len(fake.sent) == 1
        fake.release()


async def test_graph_refusal_is_a_dead_letter_the_agent_can_retry(
    client, factory, services, worker
):
    async with fake_meta_server() as fake:
        _account, user, inbox = await conversation_with_customer(services, factory, client, fake)
        await run_jobs(services, worker)
        (incoming,) = await messages_of(services, inbox)
        fake.fail_next(status=400, code=131026, message="Message undeliverable")
        await reply(services, user, incoming.conversation_id, inbox, "Hola")
        await run_jobs(services, worker)
        _, failed = await messages_of(services, inbox)
        assert failed.status == DeliveryStatus.failed
        assert failed.error == "WhatsApp refused the message: (#131026) Message undeliverable"
        assert fake.sent == []


async def close_window(services, inbox) -> None:
    async with services.session() as session:
        await session.execute(
            update(Message)
            .where(Message.inbox_id == inbox.id)
            .values(created_at=utcnow() - timedelta(hours=25))
        )
        await events.commit(session)


async def test_closed_window_requires_a_template_and_a_template_goes_out(
    client, factory, services, worker
):
    async with fake_meta_server() as fake:
        _account, user, inbox = await conversation_with_customer(services, factory, client, fake)
        await run_jobs(services, worker)
        (incoming,) = await messages_of(services, inbox)
        await close_window(services, inbox)
        with pytest.raises(Conflict, match="choose a template"):
            await reply(services, user, incoming.conversation_id, inbox, "¿Hola?")
        template = {"name": "order_update", "language": "es", "variables": ["Lucía", "4521"]}
        await reply(services, user, incoming.conversation_id, inbox, "", template=template)
        await run_jobs(services, worker)
        (sent,) = fake.sent
        assert sent.body["type"] == "template"
        assert sent.body["template"] == {
            "name": "order_update",
            "language": {"code": "es"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Lucía"},
                        {"type": "text", "text": "4521"},
                    ],
                }
            ],
        }
        assert sent.body["to"] == WA_ID


async def test_templates_are_listed_from_the_provider(services):
    async with fake_meta_server() as fake:
        fake.templates = [
            {
                "name": f"tpl_{n}",
                "language": "es",
                "status": "APPROVED" if n % 3 else "PENDING",
                "category": "UTILITY",
                "id": str(n),
                "components": [{"type": "BODY", "text": "Hola {{1}}, tu pedido {{2}}, {{1}}"}],
            }
            for n in range(130)
        ]
        adapter = WhatsAppChannel()
        config = adapter.load_config(whatsapp_config(fake.base_url))
        ctx = SendContext(http=services.http, read_file=services.files.read, public_url="")
        found = await adapter.list_templates(config, ctx)
        assert len(found) == len([n for n in range(130) if n % 3])  # paged, approved only
        assert found[0] == {
            "name": "tpl_1",
            "language": "es",
            "category": "UTILITY",
            "status": "APPROVED",
            "body": "Hola {{1}}, tu pedido {{2}}, {{1}}",
            "variables": ["1", "2"],  # a repeated placeholder is one variable
        }


async def test_whatsapp_and_an_sms_shaped_message_from_one_phone_are_one_contact(
    client, factory, services, worker
):
    account = await factory.account(default_region="ES")
    api_inbox = await factory.api_inbox(account)
    sms_like = await factory.receive(
        account,
        api_inbox,
        text="Te escribo por SMS",
        claims=(IdentityClaim(IdentityKind.phone, "612 34 56 78", Verification.provider),),
    )
    async with fake_meta_server() as fake:
        inbox = await make_inbox(services, account, "whatsapp", whatsapp_config(fake.base_url))
        hook = fake.whatsapp_text(phone_number_id=PHONE_NUMBER_ID, wa_id=WA_ID, text="Y ahora WA")
        await fake.deliver(client, f"/hooks/whatsapp/{inbox.id}", hook)
        await run_jobs(services, worker)
    (whatsapp,) = await messages_of(services, inbox)
    assert whatsapp.conversation_id == sms_like.conversation.id
    assert sms_like.conversation.contact_id is not None
