"""The sandbox: a customer's message reaches Rapport signed, the agent's reply reaches the
customer through the fake provider with its delivery status; demo and development only. The page
also carries the account's chat widget, so the newcomer can be a website visitor."""

import httpx
import pytest
from sqlalchemy import select

from rapport.domain import events
from rapport.domain.agents.models import Role
from rapport.domain.contacts.models import Identity
from rapport.domain.conversations.models import Conversation, Message
from rapport.services import build_services
from rapport.web.app import create_app
from rapport.web.sandbox.catalog import seed_sandbox_inboxes
from rapport.workers.relay import worker_in_background
from tests.conftest import make_settings
from tests.support.factory import Factory, login
from tests.support.live import eventually, free_port, serve
from tests.support.webchat import widget_inbox

CUSTOMER = "+34610000000"


@pytest.fixture
def backend():
    return "sqlite"


@pytest.fixture
def settings(db_url, tmp_path):
    return make_settings(db_url, tmp_path, env="development")


async def sandbox_account(services, factory):
    account = await factory.account("Acme Support", default_region="ES")
    admin = await factory.user(account, role=Role.admin, name="Alex Admin")
    async with services.session() as session:
        inboxes = await seed_sandbox_inboxes(
            session,
            account_id=account.id,
            box=services.box,
            public_url=services.settings.public_url,
        )
        await events.commit(session)
    return account, admin, {inbox.channel: inbox for inbox in inboxes}


@pytest.fixture
async def live(db_url, tmp_path):
    """Rapport in development mode on a real port, worker included (the sandbox's setting)."""
    port = free_port()
    settings = make_settings(
        db_url, tmp_path, env="development", public_url=f"http://127.0.0.1:{port}"
    )
    services = build_services(settings, with_hub=True)
    await services.start()
    app = create_app(settings, services=services, background=[worker_in_background])
    async with serve(app, port=port) as base:
        yield base, services
    await services.stop()


async def test_a_conversation_played_in_the_sandbox(live):
    base, services = live
    _account, admin, inboxes = await sandbox_account(services, Factory(services))
    async with httpx.AsyncClient(base_url=base) as browser:
        csrf = await login(browser, admin)
        page = await browser.get("/sandbox")
        assert page.status_code == 200
        for name in ("SMS", "Phone line", "Telegram bot", "WhatsApp", "Messenger", "Instagram"):
            assert name in page.text
        sms = inboxes["sms"]
        sent = await browser.post(
            "/sandbox/send",
            data={
                "inbox_id": sms.id,
                "customer": CUSTOMER,
                "name": "María García",
                "text": "¿Seguís abiertos? 😊",
            },
            headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
        )
        assert sent.status_code == 200 and "¿Seguís abiertos? 😊" in sent.text

        async def conversation():
            async with services.read_session() as session:
                return await session.scalar(select(Conversation))

        found = await eventually(conversation)
        answer = await browser.post(
            f"/conversations/{found.id}/messages",
            data={"content": "¡Sí, hasta las 20 h!", "inbox_id": str(sms.id)},
            headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
        )
        assert answer.status_code == 200

        async def delivered_in_the_sandbox():
            thread = await browser.get(f"/sandbox/thread?inbox={sms.id}&customer=%2B34610000000")
            return "¡Sí, hasta las 20 h!" in thread.text and "Delivered" in thread.text

        await eventually(delivered_in_the_sandbox)

        async def delivered_in_rapport():
            async with services.read_session() as session:
                reply = await session.scalar(select(Message).where(Message.direction == "outgoing"))
                return reply.status == "delivered"

        await eventually(delivered_in_rapport)


async def test_calls_and_telegram_in_the_sandbox(live):
    base, services = live
    _account, admin, inboxes = await sandbox_account(services, Factory(services))
    async with httpx.AsyncClient(base_url=base) as browser:
        csrf = await login(browser, admin)
        headers = {"X-CSRF-Token": csrf, "HX-Request": "true"}
        call = await browser.post(
            "/sandbox/send",
            data={"inbox_id": inboxes["voice"].id, "customer": CUSTOMER, "call_seconds": "95"},
            headers=headers,
        )
        assert call.status_code == 200 and "95 s" in call.text
        telegram = await browser.post(
            "/sandbox/send",
            data={
                "inbox_id": inboxes["telegram"].id,
                "customer": "5550001",
                "name": "Lucía Núñez",
                "text": "Hola",
            },
            headers=headers,
        )
        assert telegram.status_code == 200

        async def both_arrived():
            async with services.read_session() as session:
                rows = (await session.scalars(select(Message).order_by(Message.id))).all()
            return sorted(m.channel for m in rows) == ["telegram", "voice"]

        await eventually(both_arrived)


@pytest.mark.parametrize(
    ("channel", "customer", "identity"),
    [
        ("whatsapp", "+34 699 000 111", ("phone", "+34699000111")),
        ("messenger", "7310000000000001", ("messenger", "7310000000000001")),
        ("instagram", "1790000000000001", ("instagram", "1790000000000001")),
    ],
)
async def test_meta_conversations_played_in_the_sandbox(live, channel, customer, identity):
    """Signed as Meta signs, answered through the fake Graph API, read receipts sent back."""
    base, services = live
    _account, admin, inboxes = await sandbox_account(services, Factory(services))
    inbox = inboxes[channel]
    async with httpx.AsyncClient(base_url=base) as browser:
        csrf = await login(browser, admin)
        headers = {"X-CSRF-Token": csrf, "HX-Request": "true"}
        sent = await browser.post(
            "/sandbox/send",
            data={
                "inbox_id": inbox.id,
                "customer": customer,
                "name": "Nuria Campos",
                "text": "¿Tenéis la talla M? 👕",
            },
            headers=headers,
        )
        assert sent.status_code == 200 and "¿Tenéis la talla M? 👕" in sent.text

        async def received():
            async with services.read_session() as session:
                message = await session.scalar(select(Message).where(Message.inbox_id == inbox.id))
                found = await session.scalar(
                    select(Identity).where(
                        Identity.kind == identity[0], Identity.value == identity[1]
                    )
                )
                return message and found and (message, found)

        message, found = await eventually(received)
        assert message.content == "¿Tenéis la talla M? 👕" and found.verification == "provider"
        answer = await browser.post(
            f"/conversations/{message.conversation_id}/messages",
            data={"content": "¡Sí! Te la guardamos.", "inbox_id": str(inbox.id)},
            headers=headers,
        )
        assert answer.status_code == 200

        async def read_on_the_phone():
            thread = await browser.get(
                "/sandbox/thread", params={"inbox": inbox.id, "customer": customer}
            )
            return "Te la guardamos" in thread.text and "Read" in thread.text

        await eventually(read_on_the_phone)

        async def read_in_rapport():
            async with services.read_session() as session:
                reply = await session.scalar(select(Message).where(Message.direction == "outgoing"))
                return reply.status == "read"

        await eventually(read_in_rapport)


async def test_a_whatsapp_customer_who_never_wrote_must_give_a_number(client, services, factory):
    _account, admin, inboxes = await sandbox_account(services, factory)
    csrf = await login(client, admin)
    response = await client.post(
        "/sandbox/send",
        data={"inbox_id": inboxes["whatsapp"].id, "customer": "Nuria", "text": "hola"},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 422
    async with services.read_session() as session:
        assert await session.scalar(select(Message)) is None
    page = await client.get("/sandbox", params={"inbox": inboxes["whatsapp"].id, "customer": "N"})
    assert page.status_code == 200  # the page still shows, with an empty phone


async def test_the_page_carries_the_accounts_chat_widget(client, services, factory):
    account, admin, _inboxes = await sandbox_account(services, factory)
    await login(client, admin)
    plain = await client.get("/sandbox")
    assert "/widget.js" not in plain.text
    assert "'unsafe-inline'" not in plain.headers["content-security-policy"]
    await widget_inbox(services, account, name="Elsewhere", allowed_origins=["https://x.example"])
    website = await widget_inbox(services, account, name="Website chat")
    page = await client.get("/sandbox")
    assert f'<script src="/widget.js" data-inbox="{website.public_token}" async>' in page.text
    assert "Try omnichannel in two minutes" in page.text
    # The widget styles its Shadow DOM with a <style> element; scripts stay our own.
    policy = page.headers["content-security-policy"]
    assert "style-src 'self' 'unsafe-inline'" in policy and "script-src 'self';" in policy


async def test_the_sandbox_only_knows_this_accounts_inboxes(client, services, factory):
    other = await factory.account("Globex")
    async with services.session() as session:
        [theirs, *_] = await seed_sandbox_inboxes(
            session, account_id=other.id, box=services.box, public_url=services.settings.public_url
        )
        await events.commit(session)
    mine = await factory.account("Acme")
    user = await factory.user(mine)
    csrf = await login(client, user)
    response = await client.post(
        "/sandbox/send",
        data={"inbox_id": theirs.id, "customer": CUSTOMER, "text": "hi"},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 404
    thread = await client.get(f"/sandbox/thread?inbox={theirs.id}&customer=x")
    assert thread.status_code == 404
    async with services.read_session() as session:
        assert await session.scalar(select(Message)) is None


@pytest.mark.parametrize("env", ["test", "production"])
async def test_there_is_no_sandbox_outside_demo_and_development(db_url, tmp_path, env):
    secret = {"secret_key": "x" * 40} if env == "production" else {}
    settings = make_settings(db_url, tmp_path, env=env, **secret)
    running = build_services(settings, with_hub=False)
    app = create_app(settings, services=running)
    paths = {getattr(route, "path", "") for route in app.routes}
    assert not any(path.startswith("/sandbox") for path in paths)
    assert app.state.sandbox is None
    await running.http.aclose()
    await running.db.dispose()
