"""The Messenger and Instagram webhook URLs: only Meta's signed calls get in, nothing happens twice.

Through the real endpoint `/hooks/<channel>/<inbox_id>`, on SQLite and PostgreSQL, for both
channels of the Send API (they share `meta_app.SendApiChannel`, so one module covers both):
the signature gate writes nothing for a refused call, the GET handshake, the previous app secret
during a reset, redeliveries in any order with out-of-order receipts, and echoes of our sends.
Bodies come from the provider fixtures in `src/rapport/channels/<channel>/fixtures/` as Meta
sends them (non-ASCII escaped as `\\uXXXX`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from typing import Any

import pytest
from sqlalchemy import func, select

from rapport.db.base import Base
from rapport.domain import events
from rapport.domain.conversations.models import DeliveryStatus, Direction
from rapport.domain.inboxes.actions import update_inbox
from rapport.domain.inboxes.models import InboundEvent, Inbox
from rapport.lib import meta_webhooks
from rapport.web.sandbox.providers.meta_payloads import Webhook, meta_json, signed
from tests.support.meta import (
    APP_SECRET,
    IG_ID,
    PAGE_ID,
    VERIFY_TOKEN,
    fake_meta_server,
    fixture,
    make_inbox,
    messages_of,
    messaging_config,
    reply,
    run_jobs,
)

APP_ID = "1517776481860111"  # the app_id of our echoes in the fixtures
OBJECT = {"messenger": "page", "instagram": "instagram"}
ACCOUNT = {"messenger": PAGE_ID, "instagram": IG_ID}
# The customer who writes in each channel's fixtures.
CUSTOMER = {"messenger": "6283947561029384", "instagram": "5309271846620194"}
FIXTURE_TEXT = {
    "messenger": "¡Hola! ¿Está abierto el sábado? 🙌 Olá, ação",
    "instagram": "Hola 👋 ¿hacéis envíos a Canarias?",
}


@pytest.fixture(params=["messenger", "instagram"])
def channel(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def row_counts(services) -> dict[str, int]:
    """How many rows every table holds: a refused call must change none of them."""
    async with services.read_session() as session:
        return {
            table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
        }


async def reconfigure(services, inbox, *, is_active: bool = True, **changes: Any) -> None:
    """Change the inbox's settings through the real action, as the settings page saves them."""
    async with services.session() as session:
        row = await session.get(Inbox, inbox.id)
        assert row is not None
        config = {**messaging_config(row.channel, app_id=APP_ID), **changes}
        await update_inbox(
            session,
            inbox=row,
            name=row.name,
            config=config,
            box=services.box,
            team_id=row.team_id,
            is_active=is_active,
        )
        await events.commit(session)


def sha1_header(secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def from_fixture(channel: str, name: str, secret: str = APP_SECRET, **message: Any) -> Webhook:
    """A fixture as Meta sends it, signed; `message` overrides fields of its first event's
    `message` (to point an echo at the message we really sent)."""
    if not message:
        return signed(fixture(channel, name), secret)
    data = json.loads(fixture(channel, name))
    event = data["entry"][0]["messaging"][0]
    event["message"].update(message)
    return signed(meta_json(data), secret)


async def test_handshake(channel, client, factory, services):
    account = await factory.account()
    inbox = await make_inbox(services, account, channel, messaging_config(channel))
    url = f"/hooks/{channel}/{inbox.id}"
    ok = await client.get(
        f"{url}?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={VERIFY_TOKEN}"
    )
    assert ok.status_code == 200 and ok.text == "1158201444"
    assert ok.headers["content-type"].startswith("text/plain")
    refused = [
        f"{url}?hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong-token",
        f"{url}?hub.mode=subscribe&hub.challenge=1&hub.verify_token=",
        f"{url}?hub.mode=subscribe&hub.challenge=1",
        f"{url}?hub.mode=unsubscribe&hub.challenge=1&hub.verify_token={VERIFY_TOKEN}",
        f"{url}?hub.challenge=1&hub.verify_token={VERIFY_TOKEN}",
        # Another inbox's verify token does not open this one.
        f"{url}?hub.mode=subscribe&hub.challenge=1&hub.verify_token={VERIFY_TOKEN}x",
    ]
    for query in refused:
        response = await client.get(query)
        assert response.status_code == 403, query
        assert "1158201444" not in response.text


async def test_signature_gate_writes_nothing(channel, client, factory, services, worker):
    account = await factory.account()
    inbox = await make_inbox(services, account, channel, messaging_config(channel, app_id=APP_ID))
    url = f"/hooks/{channel}/{inbox.id}"
    body = fixture(channel, "text")
    assert b"\\u" in body and "🙌".encode() not in body  # escaped, as Meta sends it
    good = meta_webhooks.sign(APP_SECRET, body)
    reserialised = json.dumps(json.loads(body), ensure_ascii=False).encode()
    assert reserialised != body and FIXTURE_TEXT[channel].encode() in reserialised
    before = await row_counts(services)

    attempts: list[tuple[str, bytes, dict[str, str]]] = [
        ("missing", body, {"Content-Type": "application/json"}),
        ("invalid", body, {meta_webhooks.SIGNATURE_HEADER: "sha256=" + "0" * 64}),
        ("empty", body, {meta_webhooks.SIGNATURE_HEADER: ""}),
        ("no prefix", body, {meta_webhooks.SIGNATURE_HEADER: good.removeprefix("sha256=")}),
        (
            "sha1 only",
            body,
            {meta_webhooks.LEGACY_SIGNATURE_HEADER: sha1_header(APP_SECRET, body)},
        ),
        (
            "sha1 in the sha256 header",
            body,
            {meta_webhooks.SIGNATURE_HEADER: sha1_header(APP_SECRET, body)},
        ),
        (
            "another app's secret",
            body,
            {meta_webhooks.SIGNATURE_HEADER: meta_webhooks.sign("someone-elses-secret", body)},
        ),
        # The same event re-serialised (emoji and accents no longer escaped): the signature
        # over the bytes Meta sent does not cover it ...
        ("re-serialised body", reserialised, {meta_webhooks.SIGNATURE_HEADER: good}),
        # ... and a signature over re-serialised JSON does not cover the bytes Meta sent.
        (
            "signed re-serialised",
            body,
            {meta_webhooks.SIGNATURE_HEADER: meta_webhooks.sign(APP_SECRET, reserialised)},
        ),
        # A good signature does not carry a body that was changed after signing.
        (
            "tampered",
            body.replace(b"1732352400123", b"1732352400124"),
            {meta_webhooks.SIGNATURE_HEADER: good},
        ),
    ]
    for name, content, headers in attempts:
        response = await client.post(
            url, content=content, headers={"Content-Type": "application/json", **headers}
        )
        assert response.status_code in (401, 403), name
    await run_jobs(services, worker)
    assert await row_counts(services) == before  # no stored payload, no job, no message, no event
    assert await messages_of(services, inbox) == []

    response = await client.post(
        url,
        content=body,
        headers={"Content-Type": "application/json", meta_webhooks.SIGNATURE_HEADER: good},
    )
    assert response.status_code == 200
    await run_jobs(services, worker)
    (message,) = await messages_of(services, inbox)
    assert message.direction == Direction.incoming
    assert message.content == FIXTURE_TEXT[channel]


async def test_previous_app_secret_is_accepted_while_the_secret_is_reset(
    channel, client, factory, services, worker
):
    account = await factory.account()
    config = {
        **messaging_config(channel, app_id=APP_ID),
        "app_secret": "the-new-app-secret-987654",
        "previous_app_secret": APP_SECRET,
    }
    inbox = await make_inbox(services, account, channel, config)
    url = f"/hooks/{channel}/{inbox.id}"
    # In flight from before the reset: signed with the previous secret.
    old = from_fixture(channel, "text", APP_SECRET)
    assert (await client.post(url, content=old.body, headers=old.headers)).status_code == 200
    # After it: signed with the new one.
    new = from_fixture(channel, "text", "the-new-app-secret-987654", mid="m_AFTER_RESET", text="Y")
    assert (await client.post(url, content=new.body, headers=new.headers)).status_code == 200
    before = await row_counts(services)
    stranger = from_fixture(channel, "text", "not-this-apps-secret", mid="m_STRANGER", text="Z")
    response = await client.post(url, content=stranger.body, headers=stranger.headers)
    assert response.status_code in (401, 403)
    assert await row_counts(services) == before
    await run_jobs(services, worker)
    assert sorted(m.content for m in await messages_of(services, inbox)) == sorted(
        [FIXTURE_TEXT[channel], "Y"]
    )


async def test_three_shuffled_deliveries_with_out_of_order_receipts(
    channel, client, factory, services, worker
):
    """Meta redelivers and reorders: one message each way, and the receipts end at `read`."""
    account = await factory.account()
    user = await factory.user(account)
    async with fake_meta_server() as fake:
        config = messaging_config(channel, fake.base_url, app_id=APP_ID)
        inbox = await make_inbox(services, account, channel, config)
        url = f"/hooks/{channel}/{inbox.id}"
        first = from_fixture(channel, "text")
        assert (await fake.deliver(client, url, first)).status_code == 200
        await run_jobs(services, worker)
        (incoming,) = await messages_of(services, inbox)
        await reply(services, user, incoming.conversation_id, inbox, "¡Sí! 😊")
        await run_jobs(services, worker)
        (sent,) = fake.sent
        assert sent.to == CUSTOMER[channel]

        # The customer's message again, batched differently (new bytes, the same mid).
        rebatched = json.loads(first.body)
        rebatched["entry"][0]["time"] += 1
        first_again = signed(meta_json(rebatched), APP_SECRET)
        echo = fake.echo(OBJECT[channel], sent, app_id=APP_ID)
        if channel == "messenger":
            watermark_only = fake.messaging_webhook(
                "page",
                sent.node,
                fake.messaging_event(
                    sent.to,
                    sent.node,
                    delivery={"watermark": json.loads(echo.body)["entry"][0]["time"] + 1000},
                ),
            )
            receipts = [fake.messenger_delivery(sent), watermark_only, fake.messenger_read(sent)]
        else:  # Instagram sends no delivery receipts: only messaging_seen
            receipts = [fake.instagram_read(sent)]
        read = receipts[-1]
        deliveries = [first, first_again, echo, *receipts] * 3
        random.Random(6).shuffle(deliveries)
        # The read arrives before the echo and the deliveries at least once.
        deliveries.sort(key=lambda h: h is not read)
        for hook in deliveries:
            assert (await fake.deliver(client, url, hook)).status_code == 200
            await run_jobs(services, worker)  # applied in exactly this order

        messages = await messages_of(services, inbox)
        assert [m.direction for m in messages] == [Direction.incoming, Direction.outgoing]
        assert messages[0].content == FIXTURE_TEXT[channel]
        assert messages[1].status == DeliveryStatus.read and messages[1].provider_id == sent.id
        assert len(fake.sent) == 1


async def test_echo_of_our_send_is_not_a_customer_message(
    channel, client, factory, services, worker
):
    account = await factory.account()
    user = await factory.user(account)
    async with fake_meta_server() as fake:
        config = messaging_config(channel, fake.base_url, app_id=APP_ID)
        inbox = await make_inbox(services, account, channel, config)
        url = f"/hooks/{channel}/{inbox.id}"
        first = from_fixture(channel, "text")
        assert (await fake.deliver(client, url, first)).status_code == 200
        await run_jobs(services, worker)
        (incoming,) = await messages_of(services, inbox)
        await reply(services, user, incoming.conversation_id, inbox, "Claro, ¿qué talla?")
        await run_jobs(services, worker)
        (sent,) = fake.sent
        assert sent.reference

        # The fixture's echo, pointed at our send: matched by its metadata, our key.
        ours = from_fixture(
            channel, "echo_ours", mid=sent.id, metadata=sent.reference, text=sent.text
        )
        assert (await fake.deliver(client, url, ours)).status_code == 200
        # The fixture as it is: our app's echo of a send this inbox never made (its metadata
        # names no message here) is not a customer message either, nor shown at all.
        unmatched = from_fixture(channel, "echo_ours")
        assert (await fake.deliver(client, url, unmatched)).status_code == 200
        await run_jobs(services, worker)
        messages = await messages_of(services, inbox)
        assert [m.direction for m in messages] == [Direction.incoming, Direction.outgoing]
        assert messages[0].id == incoming.id
        outgoing = messages[1]
        assert outgoing.provider_id == sent.id and outgoing.status == DeliveryStatus.sent
        assert outgoing.sender_type == "user" and outgoing.content == "Claro, ¿qué talla?"

        # A reply typed in Meta's own inbox (another app) is kept, as ours, not the customer's.
        elsewhere = from_fixture(channel, "echo_elsewhere")
        assert (await fake.deliver(client, url, elsewhere)).status_code == 200
        await run_jobs(services, worker)
        messages = await messages_of(services, inbox)
        assert [m.direction for m in messages] == [Direction.incoming] + [Direction.outgoing] * 2
        assert messages[2].payload["sent_elsewhere"] is True
        assert messages[2].conversation_id == incoming.conversation_id
        assert len(fake.sent) == 1


async def test_events_for_another_account_of_the_same_app_are_not_taken(
    channel, client, factory, services, worker
):
    """Meta has one callback URL per app: a second Page (or Instagram account) on the same app
    posts its events to this inbox's URL, signed alike. They are not this inbox's customers."""
    account = await factory.account()
    inbox = await make_inbox(services, account, channel, messaging_config(channel, app_id=APP_ID))
    url = f"/hooks/{channel}/{inbox.id}"
    other_account = "1099999999999999"
    data = json.loads(fixture(channel, "text"))
    theirs = json.loads(json.dumps(data["entry"][0]))
    theirs["id"] = other_account
    theirs["messaging"][0]["recipient"]["id"] = other_account
    theirs["messaging"][0]["sender"]["id"] = "7000000000000001"
    theirs["messaging"][0]["message"].update(mid="m_THEIRS", text="Not for you")
    alone = signed(meta_json({**data, "entry": [theirs]}), APP_SECRET)
    batched = signed(meta_json({**data, "entry": [theirs, data["entry"][0]]}), APP_SECRET)
    for hook in (alone, batched):
        assert (await client.post(url, content=hook.body, headers=hook.headers)).status_code == 200
    await run_jobs(services, worker)
    (message,) = await messages_of(services, inbox)
    assert message.content == FIXTURE_TEXT[channel]


async def test_an_app_secret_reset_from_start_to_finish(channel, client, factory, services, worker):
    """The settings change takes effect on the next call: old secret, both, then only the new."""
    account = await factory.account()
    inbox = await make_inbox(services, account, channel, messaging_config(channel, app_id=APP_ID))
    url = f"/hooks/{channel}/{inbox.id}"
    new_secret = "the-new-app-secret-987654"

    def hook(secret: str, n: int) -> Webhook:
        return from_fixture(channel, "text", secret, mid=f"m_RESET_{n}", text=f"#{n}")

    async def status(call: Webhook) -> int:
        return (await client.post(url, content=call.body, headers=call.headers)).status_code

    assert await status(hook(APP_SECRET, 1)) == 200
    assert await status(hook(new_secret, 2)) == 401
    await reconfigure(services, inbox, app_secret=new_secret, previous_app_secret=APP_SECRET)
    assert await status(hook(APP_SECRET, 3)) == 200
    assert await status(hook(new_secret, 4)) == 200
    await reconfigure(services, inbox, app_secret=new_secret, previous_app_secret="")
    assert await status(hook(APP_SECRET, 5)) == 401
    assert await status(hook(new_secret, 6)) == 200
    await run_jobs(services, worker)
    assert sorted(m.content for m in await messages_of(services, inbox)) == ["#1", "#3", "#4", "#6"]


async def test_wrong_channel_unknown_or_disabled_inbox_is_404_and_writes_nothing(
    channel, client, factory, services, worker
):
    account = await factory.account()
    inbox = await make_inbox(services, account, channel, messaging_config(channel, app_id=APP_ID))
    other = "instagram" if channel == "messenger" else "messenger"
    call = from_fixture(channel, "text")
    before = await row_counts(services)
    for url in (f"/hooks/{other}/{inbox.id}", f"/hooks/{channel}/{inbox.id + 1000}"):
        response = await client.post(url, content=call.body, headers=call.headers)
        assert response.status_code == 404, url
        handshake = await client.get(
            f"{url}?hub.mode=subscribe&hub.challenge=42&hub.verify_token={VERIFY_TOKEN}"
        )
        assert handshake.status_code == 404, url
    assert await row_counts(services) == before
    await reconfigure(services, inbox, is_active=False)
    before = await row_counts(services)
    url = f"/hooks/{channel}/{inbox.id}"
    assert (await client.post(url, content=call.body, headers=call.headers)).status_code == 404
    await run_jobs(services, worker)
    assert await row_counts(services) == before
    assert await messages_of(services, inbox) == []


async def test_messenger_watermarks_reach_only_that_customer_and_only_up_to_them(
    client, factory, services, worker
):
    """A read or delivery watermark names a person and a time, not a message."""
    account = await factory.account()
    user = await factory.user(account)
    async with fake_meta_server() as fake:
        config = messaging_config("messenger", fake.base_url, app_id=APP_ID)
        inbox = await make_inbox(services, account, "messenger", config)
        url = f"/hooks/messenger/{inbox.id}"
        ana, bruno = CUSTOMER["messenger"], "6283947561029999"
        for hook in (
            from_fixture("messenger", "text"),
            fake.customer_message("page", account_id=PAGE_ID, user_id=bruno, text="Soy Bruno"),
        ):
            assert (await fake.deliver(client, url, hook)).status_code == 200
        await run_jobs(services, worker)
        for incoming in await messages_of(services, inbox):
            await reply(services, user, incoming.conversation_id, inbox, f"Hola #{incoming.id}")
        await run_jobs(services, worker)
        assert sorted(s.to for s in fake.sent) == sorted([ana, bruno])

        def watermark(customer: str, kind: str, millis: int) -> Webhook:
            event = fake.messaging_event(customer, PAGE_ID, **{kind: {"watermark": millis}})
            return fake.messaging_webhook("page", PAGE_ID, event)

        async def statuses() -> dict[str, str]:
            replies = [m for m in await messages_of(services, inbox) if m.direction == "outgoing"]
            return {
                next(s.to for s in fake.sent if s.id == m.provider_id): m.status for m in replies
            }

        # A watermark from before the replies were written moves nothing (the fixture's time).
        for hook in (watermark(ana, "read", 1732352400123), watermark(bruno, "delivery", 1)):
            assert (await fake.deliver(client, url, hook)).status_code == 200
        await run_jobs(services, worker)
        assert await statuses() == {ana: DeliveryStatus.sent, bruno: DeliveryStatus.sent}

        later = int(json.loads(fake.echo("page", fake.sent[0]).body)["entry"][0]["time"]) + 5000
        assert (await fake.deliver(client, url, watermark(ana, "read", later))).status_code == 200
        await run_jobs(services, worker)
        assert await statuses() == {ana: DeliveryStatus.read, bruno: DeliveryStatus.sent}
        hook = watermark(bruno, "delivery", later)
        assert (await fake.deliver(client, url, hook)).status_code == 200
        # A delivery watermark after the read does not move Ana's reply back.
        hook = watermark(ana, "delivery", later + 1)
        assert (await fake.deliver(client, url, hook)).status_code == 200
        await run_jobs(services, worker)
        assert await statuses() == {ana: DeliveryStatus.read, bruno: DeliveryStatus.delivered}


async def test_redeliveries_processed_side_by_side_make_one_message(
    channel, client, factory, services, worker
):
    """All redeliveries stored first, then the worker takes them together (concurrently)."""
    account = await factory.account()
    inbox = await make_inbox(services, account, channel, messaging_config(channel, app_id=APP_ID))
    url = f"/hooks/{channel}/{inbox.id}"
    first = from_fixture(channel, "text")
    rebatched = json.loads(first.body)
    rebatched["entry"][0]["time"] += 1
    again = signed(meta_json(rebatched), APP_SECRET)
    rebatched["entry"][0]["time"] += 1
    once_more = signed(meta_json(rebatched), APP_SECRET)
    for hook in [first, again, once_more] * 3:
        assert (await client.post(url, content=hook.body, headers=hook.headers)).status_code == 200
    await run_jobs(services, worker)
    (message,) = await messages_of(services, inbox)
    assert message.content == FIXTURE_TEXT[channel]
    async with services.read_session() as session:
        stored = list(await session.scalars(select(InboundEvent.status)))
    assert stored == ["processed"] * 3  # one row per distinct body, none failed
