"""The chat-then-email story in a real browser: one conversation, the agent's email reply, the
customer's answer with its quoted history folded away until the agent asks for it."""

import pytest

from rapport.channels.email import EmailChannel
from rapport.channels.email.inbound import dedupe_key
from rapport.domain import events
from rapport.domain.agents.models import User
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations import actions
from rapport.domain.conversations.models import Conversation
from rapport.domain.inboxes.actions import store_inbound
from rapport.domain.inboxes.models import Inbox
from rapport.domain.ports import IdentityClaim
from rapport.web.app import create_app
from tests.support.browser import chromium_browser, screenshot, sign_in
from tests.support.factory import PASSWORD
from tests.support.live import serve
from tests.support.mail import email_inbox, smtp_receiver

pytestmark = pytest.mark.browser


@pytest.fixture
def backend():
    return "sqlite"


ANSWER = """From: =?utf-8?q?Luc=C3=ADa_Fern=C3=A1ndez?= <lucia@example.com>
To: {reply_to}
Subject: Re: Acme Support
Date: Mon, 17 Nov 2025 10:00:00 +0000
Message-ID: <answer-1@example.com>
In-Reply-To: <{ours}>
References: <{ours}>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

¡Perfecto, gracias! Ya veo la devolución en mi cuenta.

Saludos,
Lucía

El lun, 17 nov 2025 a las 9:40, Acme Support (<support@support.example.com>) escribió:
> Hola Lucía, hemos devuelto el cargo duplicado de la factura INV-2041.
> Lo verás en tu cuenta en 3-5 días.
"""


async def test_chat_then_email_in_one_conversation(settings, services, factory, worker, chromium):
    account = await factory.account("Acme Support")
    chat = await factory.api_inbox(account, name="Website chat")
    agent = await factory.user(account, name="Ana Ruiz", email="ana@example.com")
    started = await factory.receive(
        account,
        chat,
        name="Lucía Fernández",
        text="No one is online? Please answer me by email: I was charged twice for INV-2041.",
        claims=(
            IdentityClaim(IdentityKind.external, "user-7", Verification.verified),
            IdentityClaim(IdentityKind.email, "lucia@example.com", Verification.unverified),
        ),
    )
    async with smtp_receiver() as receiver:
        mail = await email_inbox(factory, account, from_name="Acme Support", **receiver.config)
        async with services.session() as session:
            conversation = await session.get(Conversation, started.conversation.id)
            await actions.send_reply(
                session,
                conversation=conversation,
                author=await session.get(User, agent.id),
                reply=actions.Reply(
                    content="Hola Lucía, hemos devuelto el cargo duplicado de la factura "
                    "INV-2041.\nLo verás en tu cuenta en 3-5 días.",
                    inbox=await session.get(Inbox, mail.id),
                    policy=EmailChannel.policy,
                ),
            )
            await events.commit(session)
        await worker.drain()
        sent = receiver.received[0][1]
    raw = ANSWER.format(
        reply_to=sent["Reply-To"].addresses[0].addr_spec, ours=sent["Message-ID"].strip("<>")
    ).encode()
    async with services.session() as session:
        await store_inbound(
            session,
            inbox=mail,
            dedupe_key=dedupe_key(raw),
            body=raw,
            content_type="message/rfc822",
        )
        await events.commit(session)
    await worker.drain()

    app = create_app(settings, services=services)
    async with serve(app) as base, chromium_browser(chromium) as chrome:
        page = await chrome.new_page(viewport={"width": 1280, "height": 860})
        await sign_in(page, base, agent.email, PASSWORD)
        await page.goto(f"{base}/conversations/{started.conversation.id}")
        await page.wait_for_selector("#timeline >> text=Ya veo la devolución")
        assert not await page.locator("#timeline >> text=3-5 días").last.is_visible()
        await page.click("#timeline >> text=Show the full email")
        await page.wait_for_selector("#timeline .full-email[open]")
        assert await page.locator("#timeline .full-email[open] >> text=3-5 días").is_visible()
        await screenshot(page, "email-conversation.png")
