"""The widget's public API as a visitor's browser and an agent use it."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from rapport.channels.registry import ADAPTERS
from rapport.domain import events
from rapport.domain.agents.models import User
from rapport.domain.contacts.models import Identity, IdentityKind
from rapport.domain.conversations import actions
from rapport.domain.conversations.models import Conversation, Message
from rapport.domain.conversations.queries import reply_routes
from rapport.domain.events import Event
from rapport.domain.inboxes.actions import create_inbox
from rapport.domain.inboxes.models import Inbox
from rapport.domain.ports import ChannelPolicy
from rapport.domain.visitors.models import VisitorSession
from tests.support.webchat import SITE, Visitor, user_hash, widget_inbox

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def _reply(
    services, conversation_id: int, user: User, text: str, *, private=False, inbox=None
):
    async with services.session() as session:
        conversation = await session.get(Conversation, conversation_id)
        author = await session.get(User, user.id)
        box = await session.get(Inbox, inbox.id) if inbox else None
        message = await actions.send_reply(
            session,
            conversation=conversation,
            author=author,
            reply=actions.Reply(
                content=text,
                private=private,
                inbox=box,
                policy=ADAPTERS[1].policy if box else None,
            ),
        )
        await events.commit(session)
        return message.id


async def _count(services, model, *where):
    async with services.read_session() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def test_widget_script_loads_on_any_site(client):
    response = await client.get("/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "x-frame-options" not in response.headers
    assert "content-security-policy" not in response.headers


async def test_config_says_honestly_that_nobody_is_there_and_respects_the_origin_list(
    client, factory, services
):
    account = await factory.account()
    inbox = await widget_inbox(services, account, allowed_origins=[SITE], colour="#0f766e")
    ok = await client.get(f"/widget/api/{inbox.public_token}/config", headers={"Origin": SITE})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == SITE
    assert ok.json()["colour"] == "#0f766e"
    assert ok.json()["availability"]["status"] == "away"
    other = await client.get(
        f"/widget/api/{inbox.public_token}/config", headers={"Origin": "https://evil.test"}
    )
    assert other.status_code == 403
    assert "access-control-allow-origin" not in other.headers
    preflight = await client.options(
        f"/widget/api/{inbox.public_token}/messages",
        headers={"Origin": SITE, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    denied = await client.options(
        f"/widget/api/{inbox.public_token}/messages", headers={"Origin": "https://evil.test"}
    )
    assert denied.status_code == 403
    assert (await client.get("/widget/api/nope/config")).status_code == 404


async def test_outside_business_hours_the_widget_is_closed_with_the_next_opening(
    client, factory, services
):
    account = await factory.account()
    # Every day is a holiday around now except far ahead: closed, with a next opening given.
    today = datetime.now(UTC).date().toordinal()
    holidays = [datetime.fromordinal(today + d).date().isoformat() for d in range(-1, 3)]
    inbox = await widget_inbox(
        services, account, business_hours=["mon-sun 09:00-17:00"], holidays=holidays
    )
    body = (await client.get(f"/widget/api/{inbox.public_token}/config")).json()
    assert body["availability"]["status"] == "closed"
    assert body["availability"]["next_open"] is not None


async def test_visitor_chats_and_history_persists_with_the_kept_token(
    client, factory, services, worker
):
    account = await factory.account()
    agent = await factory.user(account, name="Ana Ruiz")
    inbox = await widget_inbox(services, account)
    visitor = Visitor(client, inbox)
    await visitor.start()
    sent = await visitor.say("Hello, is anyone there?", "client-000001")
    assert sent.status_code == 202
    again = await visitor.say("Hello, is anyone there?", "client-000001")  # a double click
    assert again.status_code == 202
    await worker.drain()
    [mine] = await visitor.messages()
    assert mine["mine"] and mine["client_id"] == "client-000001"
    conversation_id = sent.json()["conversation_id"]
    assert await _count(services, Message, Message.conversation_id == conversation_id) == 1

    await _reply(services, conversation_id, agent, "Hi! I'm here.", inbox=inbox)
    await _reply(services, conversation_id, agent, "customer seems upset", private=True)
    await worker.drain()
    messages = await visitor.messages()
    assert [m["content"] for m in messages] == ["Hello, is anyone there?", "Hi! I'm here."]
    assert messages[1]["sender"]["name"] == "Ana Ruiz"
    assert messages[1]["status"] == "sent"

    # A new page load with the kept token: same session, same history.
    resumed = Visitor(client, inbox)
    resumed.token = visitor.token
    assert (await resumed.start())["conversation_id"] == conversation_id
    assert len(await resumed.messages()) == 2

    # Delivered when the widget showed it, read when the visitor saw it.
    reply_id = messages[1]["id"]
    await visitor.post("/receipts", json={"status": "delivered", "up_to": reply_id})
    await worker.drain()
    assert (await visitor.get(f"/messages/{reply_id}")).json()["status"] == "delivered"
    await visitor.post("/receipts", json={"status": "read", "up_to": reply_id})
    await worker.drain()
    assert (await visitor.get(f"/messages/{reply_id}")).json()["status"] == "read"


async def test_a_visitor_reads_only_their_own_conversation(client, factory, services, worker):
    account = await factory.account()
    agent = await factory.user(account)
    inbox = await widget_inbox(services, account)
    alice, bob = Visitor(client, inbox), Visitor(client, inbox)
    await alice.start()
    await bob.start()
    await alice.say("alice's secret", "alice-00001")
    await bob.say("bob here", "bob-0000001")
    await worker.drain()
    alice_msg = (await alice.messages())[0]
    assert [m["content"] for m in await bob.messages()] == ["bob here"]
    assert (await bob.get(f"/messages/{alice_msg['id']}")).status_code == 404
    note = await _reply(
        services, (await alice.start())["conversation_id"], agent, "note", private=True
    )
    assert (await alice.get(f"/messages/{note}")).status_code == 404
    stranger = Visitor(client, inbox)
    stranger.token = "rv_not-a-real-token"
    assert (await stranger.get("/messages")).status_code == 401
    # A token of one inbox means nothing on another.
    other_inbox = await widget_inbox(services, account, name="Other site")
    elsewhere = Visitor(client, other_inbox)
    elsewhere.token = alice.token
    assert (await elsewhere.get("/messages")).status_code == 401


async def test_attachments_images_and_pdf_only_with_clean_names(client, factory, services, worker):
    account = await factory.account()
    inbox = await widget_inbox(services, account)
    visitor = Visitor(client, inbox)
    await visitor.start()
    ok = await visitor.post(
        "/attachments",
        data={"client_id": "file-000001", "content": "my receipt"},
        files={"file": ("../../re\u200bceipt<script>.png", PNG, "image/png")},
    )
    assert ok.status_code == 202, ok.text
    fake = await visitor.post(
        "/attachments",
        data={"client_id": "file-000002"},
        files={"file": ("invoice.pdf", b"MZ\x90\x00 not a pdf", "application/pdf")},
    )
    assert fake.status_code == 415
    script = await visitor.post(
        "/attachments",
        data={"client_id": "file-000003"},
        files={"file": ("x.html", b"<script>", "text/html")},
    )
    assert script.status_code == 415
    await worker.drain()
    [message] = await visitor.messages()
    [file] = message["attachments"]
    assert file["filename"] == "receipt_script_.png"
    download = await client.get(file["url"].removeprefix("http://testserver"))
    assert download.content == PNG
    assert download.headers["x-content-type-options"] == "nosniff"


async def test_too_large_upload_is_refused(client, factory, services):
    services.settings = services.settings.model_copy(update={"widget_max_upload_bytes": 100})
    account = await factory.account()
    inbox = await widget_inbox(services, account)
    visitor = Visitor(client, inbox)
    await visitor.start()
    big = await visitor.post(
        "/attachments",
        data={"client_id": "file-000009"},
        files={"file": ("big.png", PNG + b"\x00" * 200, "image/png")},
    )
    assert big.status_code == 413


async def test_hmac_identify_links_to_the_existing_contact(client, factory, services, worker):
    account = await factory.account()
    api = await factory.api_inbox(account)
    known = await factory.receive(account, api, external_id="u-42", name="Ana Ruiz")
    inbox = await widget_inbox(services, account)
    visitor = Visitor(client, inbox)
    await visitor.start()
    response = await visitor.post(
        "/identify",
        json={"user_id": "u-42", "email": "ana@example.com", "user_hash": user_hash("u-42")},
    )
    assert response.status_code == 200, response.text
    assert response.json()["identified"]
    events_before = await _count(services, Event)
    again = await visitor.post(
        "/identify", json={"user_id": "u-42", "user_hash": user_hash("u-42")}
    )
    assert again.status_code == 200
    assert await _count(services, Event) == events_before  # page loads add nothing
    await visitor.say("It's me again", "again-00001")
    await worker.drain()
    async with services.read_session() as session:
        message = await session.scalar(select(Message).where(Message.content == "It's me again"))
        conversation = await session.get(Conversation, message.conversation_id)
    assert conversation.contact_id == known.conversation.contact_id


@pytest.mark.parametrize(
    "proof",
    [
        {"user_id": "u-42"},
        {"user_id": "u-42", "user_hash": ""},
        {"user_id": "u-42", "user_hash": "   "},
        {"user_id": "u-42", "user_hash": user_hash("u-43")},
        {"user_id": "u-42", "user_hash": user_hash("u-42", "some-other-secret-0123456789")},
        {"token": "not.a.jwt"},
    ],
)
async def test_missing_blank_or_wrong_proof_is_401_and_changes_nothing(
    client, factory, services, proof
):
    account = await factory.account()
    api = await factory.api_inbox(account)
    await factory.receive(account, api, external_id="u-42")
    inbox = await widget_inbox(services, account)
    visitor = Visitor(client, inbox)
    await visitor.start()
    before = await _count(services, Identity)
    response = await visitor.post("/identify", json=proof)
    assert response.status_code == 401
    assert await _count(services, Identity) == before
    async with services.read_session() as session:
        visit = await session.scalar(select(VisitorSession))
    assert visit.verified_as is None and visit.conversation_id is None


async def test_offline_email_is_a_claim_the_reply_box_can_use(client, factory, services, worker):
    """The chat continues by email: any inbox whose channel addresses email can now reach them."""
    account = await factory.account()
    inbox = await widget_inbox(services, account)
    visitor = Visitor(client, inbox)
    await visitor.start()
    await visitor.say("Are you open tomorrow?", "offline-0001")
    saved = await visitor.post("/details", json={"email": "Visitor@Example.com"})
    assert saved.status_code == 200
    await worker.drain()
    policies = {a.kind: a.policy for a in ADAPTERS}
    email_kinds = [k for k, p in policies.items() if p.identity_kind == IdentityKind.email]
    if not email_kinds:  # the email channel lands from its own branch; stand in for it meanwhile
        policies["email"] = ChannelPolicy(identity_kind=IdentityKind.email, threading=True)
        email_kinds = ["email"]
    async with services.session() as session:
        mail = await create_inbox(
            session,
            account_id=account.id,
            name="Support mail",
            channel=email_kinds[0],
            config={},
            box=services.box,
        )
        await events.commit(session)
        conversation = await session.scalar(select(Conversation))
        identity = await session.scalar(select(Identity).where(Identity.kind == "email"))
        routes = await reply_routes(session, conversation=conversation, policies=policies)
    assert identity.value == "visitor@example.com" and identity.verification == "unverified"
    [route] = [r for r in routes if r.inbox.id == mail.id]
    assert route.recipient == "visitor@example.com" and route.check.allowed


async def test_message_rate_limit_per_visitor(client, factory, services):
    services.settings = services.settings.model_copy(
        update={"widget_message_rate_limit": "3/minute"}
    )
    account = await factory.account()
    inbox = await widget_inbox(services, account)
    visitor = Visitor(client, inbox)
    await visitor.start()
    codes = [(await visitor.say(f"m{i}", f"rate-limit-{i:03}")).status_code for i in range(5)]
    assert codes == [202, 202, 202, 429, 429]


async def test_identify_attempts_are_rate_limited(client, factory, services):
    services.settings = services.settings.model_copy(
        update={"widget_identify_rate_limit": "2/minute"}
    )
    account = await factory.account()
    inbox = await widget_inbox(services, account)
    visitor = Visitor(client, inbox)
    await visitor.start()
    codes = [
        (await visitor.post("/identify", json={"user_id": "u", "user_hash": "0" * 64})).status_code
        for _ in range(3)
    ]
    assert codes == [401, 401, 429]
