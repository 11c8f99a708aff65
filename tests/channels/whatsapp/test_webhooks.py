"""The WhatsApp webhook URL: only Meta's signed calls get in, and they cause nothing twice."""

from __future__ import annotations

import json
import random

from sqlalchemy import func, select

from rapport.domain.conversations.models import DeliveryStatus, Direction
from rapport.domain.inboxes.models import InboundEvent
from rapport.lib import meta_webhooks
from tests.support.meta import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    attachments_of,
    fake_meta_server,
    fixture,
    make_inbox,
    messages_of,
    reply,
    run_jobs,
    whatsapp_config,
)


async def inbound_rows(services) -> int:
    async with services.read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(InboundEvent)) or 0)


async def test_handshake(client, factory, services):
    account = await factory.account()
    inbox = await make_inbox(services, account, "whatsapp", whatsapp_config())
    url = f"/hooks/whatsapp/{inbox.id}"
    ok = await client.get(
        f"{url}?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={VERIFY_TOKEN}"
    )
    assert ok.status_code == 200 and ok.text == "1158201444"
    assert ok.headers["content-type"].startswith("text/plain")
    bad_token = await client.get(f"{url}?hub.mode=subscribe&hub.challenge=1&hub.verify_token=x")
    assert bad_token.status_code == 403
    bad_mode = await client.get(
        f"{url}?hub.mode=unsubscribe&hub.challenge=1&hub.verify_token={VERIFY_TOKEN}"
    )
    assert bad_mode.status_code == 403


async def test_signature_gate_stores_nothing_and_fetches_nothing(client, factory, services, worker):
    account = await factory.account()
    async with fake_meta_server() as fake:
        inbox = await make_inbox(services, account, "whatsapp", whatsapp_config(fake.base_url))
        hook = fake.whatsapp_media(
            phone_number_id=PHONE_NUMBER_ID,
            wa_id="34612345678",
            kind="image",
            data=b"\x89PNG fake",
            mime_type="image/png",
            caption="¡Mírala! 😍",
        )
        url = f"/hooks/whatsapp/{inbox.id}"
        signature = hook.headers[meta_webhooks.SIGNATURE_HEADER]
        attempts = [
            {"Content-Type": "application/json"},  # missing
            {meta_webhooks.SIGNATURE_HEADER: "sha256=" + "0" * 64},  # invalid
            {meta_webhooks.LEGACY_SIGNATURE_HEADER: hook.headers["X-Hub-Signature"]},  # sha1 only
            {meta_webhooks.SIGNATURE_HEADER: meta_webhooks.sign("other-secret", hook.body)},
        ]
        for headers in attempts:
            response = await client.post(url, content=hook.body, headers=headers)
            assert response.status_code in (401, 403)
        # The same event re-serialised (emoji no longer escaped) does not pass either.
        reserialised = json.dumps(hook.json, ensure_ascii=False).encode()
        response = await client.post(
            url, content=reserialised, headers={meta_webhooks.SIGNATURE_HEADER: signature}
        )
        assert response.status_code == 401
        await run_jobs(services, worker)
        assert await inbound_rows(services) == 0
        assert await messages_of(services, inbox) == []
        assert fake.requests == []  # no media fetched

        response = await client.post(url, content=hook.body, headers=hook.headers)
        assert response.status_code == 200
        await run_jobs(services, worker)
        (message,) = await messages_of(services, inbox)
        assert message.content == "¡Mírala! 😍"
        (media_id,) = fake.media
        assert [r.path for r in fake.requests] == [f"/v21.0/{media_id}", f"/media/{media_id}"]
        (attachment,) = await attachments_of(services, message)
        assert attachment.content_type == "image/png" and attachment.size == len(b"\x89PNG fake")


async def test_signed_with_another_inboxs_secret_is_refused(client, factory, services):
    account = await factory.account()
    other = {**whatsapp_config(), "app_secret": "someone-elses-secret"}
    inbox = await make_inbox(services, account, "whatsapp", other)
    body = fixture("whatsapp", "text")
    headers = {meta_webhooks.SIGNATURE_HEADER: meta_webhooks.sign(APP_SECRET, body)}
    response = await client.post(f"/hooks/whatsapp/{inbox.id}", content=body, headers=headers)
    assert response.status_code == 401
    assert await inbound_rows(services) == 0


async def test_three_shuffled_deliveries_with_out_of_order_statuses(
    client, factory, services, worker
):
    """Meta redelivers and reorders: one message, and statuses end at the most advanced."""
    account = await factory.account()
    user = await factory.user(account)
    async with fake_meta_server() as fake:
        inbox = await make_inbox(services, account, "whatsapp", whatsapp_config(fake.base_url))
        url = f"/hooks/whatsapp/{inbox.id}"
        first = fake.whatsapp_text(
            phone_number_id=PHONE_NUMBER_ID, wa_id="34612345678", text="¿Hola?", name="Lucía"
        )
        assert (await fake.deliver(client, url, first)).status_code == 200
        await run_jobs(services, worker)
        (incoming,) = await messages_of(services, inbox)
        await reply(services, user, incoming.conversation_id, inbox, "Buenos días")
        await run_jobs(services, worker)
        (sent,) = fake.sent
        statuses = fake.whatsapp_statuses(sent, "sent", "delivered", "read")
        deliveries = [first] * 3 + statuses * 3
        random.Random(6).shuffle(deliveries)
        # Make sure the read arrives before the sent at least once.
        deliveries.sort(key=lambda h: h is not statuses[2])
        for hook in deliveries:
            assert (await fake.deliver(client, url, hook)).status_code == 200
        await run_jobs(services, worker)
        incoming_now, outgoing = await messages_of(services, inbox)
        assert incoming_now.direction == Direction.incoming
        assert outgoing.status == DeliveryStatus.read
        assert len(fake.sent) == 1
