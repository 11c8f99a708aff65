"""The sandbox in a real browser, as a newcomer uses it.

- A customer the agent already knows texts by SMS and then calls; the agent sees one
  conversation, answers on SMS, and the reply reaches the customer's phone delivered.
- A customer writes on WhatsApp; the agent answers; the reply shows on the customer's phone
  with read ticks, and the inbox shows it read.
- On the demo data: a website visitor chats in the widget and gives a phone number, then writes
  on WhatsApp from that number: one contact, one conversation, answered on either channel.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import func, select

from rapport.cli.demo_data import DEMO_PASSWORD, seed_demo
from rapport.domain import events
from rapport.domain.agents.models import Role
from rapport.domain.contacts.models import Contact, Identity, IdentityKind, Verification
from rapport.domain.conversations.models import Conversation
from rapport.domain.inboxes.models import Inbox
from rapport.domain.ports import IdentityClaim
from rapport.services import Services, build_services
from rapport.web.app import create_app
from rapport.web.sandbox.catalog import seed_sandbox_inboxes
from rapport.workers.relay import worker_in_background
from tests.conftest import make_settings
from tests.support.browser import chromium_browser, screenshot, sign_in
from tests.support.factory import PASSWORD, Factory
from tests.support.live import free_port, serve

pytestmark = pytest.mark.browser

PHONE = "+34610000000"
LIVE = 20_000  # ms: generous for a loaded machine; the conditions themselves are exact


@pytest.fixture
def backend():
    return "sqlite"


@asynccontextmanager
async def sandbox_server(db_url: str, tmp_path: Any) -> AsyncIterator[tuple[str, Services]]:
    """Rapport in development mode (the sandbox on) on a real port, worker included."""
    port = free_port()
    base = f"http://localhost:{port}"
    settings = make_settings(db_url, tmp_path, env="development", public_url=base)
    services = build_services(settings, with_hub=True)
    await services.start()
    app = create_app(settings, services=services, background=[worker_in_background])
    try:
        async with serve(app, port=port):
            yield base, services
    finally:
        await services.stop()


async def _demo_like_account(services):
    factory = Factory(services)
    account = await factory.account("Acme Support", default_region="ES")
    admin = await factory.user(
        account, role=Role.admin, name="Alex Admin", email="alex@example.com"
    )
    agent = await factory.user(account, name="Ana Ruiz", email="ana@example.com")
    website = await factory.api_inbox(account, name="Website backend")
    await factory.receive(
        account,
        website,
        name="María García",
        text="Hi, I was charged twice for my March invoice. Can you check?",
        claims=(
            IdentityClaim(IdentityKind.external, "cust-1000", Verification.verified),
            IdentityClaim(IdentityKind.phone, PHONE, Verification.verified),
        ),
    )
    async with services.session() as session:
        inboxes = await seed_sandbox_inboxes(
            session,
            account_id=account.id,
            box=services.box,
            public_url=services.settings.public_url,
        )
        await events.commit(session)
    return admin, agent, {inbox.channel: inbox for inbox in inboxes}


async def _open_conversation(inbox: Page, name: str) -> None:
    await inbox.click("text=All")
    await inbox.click(f".conv-item >> text={name}")
    await inbox.wait_for_selector("#live-status.live")


async def _choose_inbox(inbox: Page, inbox_id: int) -> None:
    """Pick the reply route on that inbox (a route is `inbox id:identity id`)."""
    option = inbox.locator(f"#reply-route option[data-inbox-id='{inbox_id}']").first
    await inbox.select_option("#reply-route", await option.get_attribute("value"))


async def _answer(inbox: Page, route_id: int, text: str) -> None:
    await _choose_inbox(inbox, route_id)
    await inbox.fill("#reply-text", text)
    await inbox.keyboard.press("Control+Enter")


async def test_an_sms_conversation_played_in_the_sandbox(db_url, tmp_path, chromium):
    async with sandbox_server(db_url, tmp_path) as (base, services):
        admin, agent, inboxes = await _demo_like_account(services)
        async with chromium_browser(chromium) as chrome:
            customer_side = await chrome.new_context(viewport={"width": 1280, "height": 820})
            agent_side = await chrome.new_context(viewport={"width": 1440, "height": 900})
            phone = await customer_side.new_page()
            inbox = await agent_side.new_page()

            await sign_in(phone, base, admin.email, PASSWORD)
            await phone.click("nav.rail >> text=Sandbox")
            await phone.click(f"a[href='/sandbox?inbox={inboxes['sms'].id}']")
            await phone.wait_for_selector(".sandbox-list a.active >> text=María García")
            await phone.fill("#sandbox-text", "Hola, ¿os llegó la foto del recibo? 🧾")
            await phone.press("#sandbox-text", "Enter")
            await phone.wait_for_selector(".bubble-row.customer >> text=os llegó la foto")
            assert await phone.input_value("#sandbox-text") == ""
            # Then she rings the same business from the same phone.
            await phone.click(f"a[href='/sandbox?inbox={inboxes['voice'].id}']")
            await phone.wait_for_selector(".sandbox-list a.active >> text=María García")
            await phone.click("text=Call, answered (1:35)")
            await phone.wait_for_selector(".bubble-row.customer >> text=95 s")
            await phone.click(f"a[href='/sandbox?inbox={inboxes['sms'].id}']")

            await sign_in(inbox, base, agent.email, PASSWORD)
            await _open_conversation(inbox, "María García")
            await inbox.wait_for_selector("#timeline >> text=charged twice")
            await inbox.wait_for_selector("#timeline >> text=os llegó la foto")
            await inbox.wait_for_selector("#timeline .call-record >> text=Answered")
            voice = inbox.locator(f"#reply-route option[data-inbox-id='{inboxes['voice'].id}']")
            assert await voice.is_disabled()  # a call cannot carry a written reply
            await _choose_inbox(inbox, inboxes["sms"].id)
            route = await inbox.locator("#reply-route option:checked").inner_text()
            assert "+34610000000" in route
            await _answer(
                inbox, inboxes["sms"].id, "¡Hola María! Sí, la tenemos: el reembolso sale hoy."
            )
            await inbox.wait_for_selector("#timeline .msg.outgoing >> text=Delivered")

            await phone.wait_for_selector(".bubble-row.business >> text=el reembolso sale hoy")
            await phone.wait_for_selector(".bubble-row.business .phone-status >> text=Delivered")
            await screenshot(phone, "sandbox.png")
            await screenshot(inbox, "sandbox-inbox.png")


async def test_a_whatsapp_conversation_played_in_the_sandbox(db_url, tmp_path, chromium):
    async with sandbox_server(db_url, tmp_path) as (base, services):
        admin, agent, inboxes = await _demo_like_account(services)
        whatsapp = inboxes["whatsapp"]
        async with chromium_browser(chromium) as chrome:
            customer_side = await chrome.new_context(viewport={"width": 1280, "height": 900})
            agent_side = await chrome.new_context(viewport={"width": 1440, "height": 900})
            phone = await customer_side.new_page()
            inbox = await agent_side.new_page()

            await sign_in(phone, base, admin.email, PASSWORD)
            await phone.goto(f"{base}/sandbox?inbox={whatsapp.id}")
            await phone.wait_for_selector(".sandbox-list a.active >> text=María García")
            await phone.fill("#sandbox-text", "Hola, os escribo por WhatsApp: ¿hay novedades? 🙏")
            await phone.press("#sandbox-text", "Enter")
            await phone.wait_for_selector(".bubble-row.customer >> text=por WhatsApp")

            await sign_in(inbox, base, agent.email, PASSWORD)
            await _open_conversation(inbox, "María García")
            # The number she already gave is the same contact: her open conversation goes on.
            await inbox.wait_for_selector("#timeline >> text=charged twice")
            await inbox.wait_for_selector("#timeline >> text=por WhatsApp")
            await inbox.wait_for_selector("#timeline >> text=Moved from API to WhatsApp")
            chosen = await inbox.locator("#reply-route option:checked").inner_text()
            assert "WhatsApp" in chosen  # the channel she last wrote on
            await _answer(inbox, whatsapp.id, "¡Sí! El reembolso ya está hecho: 2 a 3 días. 💶")
            outgoing = inbox.locator("#timeline li.outgoing").last
            await expect(outgoing.locator(".delivery")).to_have_text("Read", timeout=LIVE)

            reply = phone.locator(".bubble-row.business", has_text="El reembolso ya está hecho")
            await expect(reply.locator(".phone-status")).to_contain_text("Read", timeout=LIVE)
            await expect(reply.locator(".phone-status .ticks")).to_have_text("✓✓")
            await screenshot(phone, "sandbox-whatsapp.png")
            await screenshot(inbox, "sandbox-whatsapp-inbox.png")


async def _visitor_chats(sandbox: Page, desk: Page, name: str, phone: str) -> None:
    """On the sandbox page (a website with the chat): open it, give a name and a number."""
    await sandbox.locator("button.launcher").click()
    await expect(sandbox.locator("section.panel")).to_be_visible()
    availability = sandbox.locator("section.panel header p")
    await expect(availability).to_contain_text("We usually reply", timeout=LIVE)
    await sandbox.locator("form.prechat input[name=name]").fill(name)
    await sandbox.locator("form.prechat input[name=phone]").fill(phone)
    await sandbox.locator("form.prechat button[type=submit]").click()
    await sandbox.locator("textarea#rp-text").fill("Hi! Do you deliver to Lisbon?")
    await sandbox.keyboard.press("Enter")
    item = desk.locator(".conv-item", has_text=name)
    await expect(item).to_be_visible(timeout=LIVE)
    await item.click()
    await expect(desk.locator("#timeline")).to_contain_text("deliver to Lisbon", timeout=LIVE)
    await expect(desk.locator(".contact-panel .identities")).to_contain_text("unverified")
    await desk.fill("#reply-text", "We do: two to three days. Anything else?")
    await desk.keyboard.press("Control+Enter")
    reply = sandbox.locator("li.theirs .bubble", has_text="two to three days")
    await expect(reply).to_be_visible(timeout=LIVE)


async def test_a_website_visitor_carries_on_by_whatsapp_in_one_conversation(
    db_url, tmp_path, chromium
):
    async with sandbox_server(db_url, tmp_path) as (base, services):
        assert await seed_demo(services.settings)  # the demo data, exactly as `rapport demo`
        async with services.read_session() as session:
            whatsapp = await session.scalar(select(Inbox).where(Inbox.channel == "whatsapp"))
        async with chromium_browser(chromium) as chrome:
            newcomer = await (
                await chrome.new_context(viewport={"width": 1440, "height": 900})
            ).new_page()
            desk = await (
                await chrome.new_context(viewport={"width": 1440, "height": 900})
            ).new_page()
            await sign_in(desk, base, "ana@rapport.demo", DEMO_PASSWORD)
            await desk.goto(f"{base}/conversations?scope=all")
            await expect(desk.locator("#live-status.live")).to_have_count(1, timeout=LIVE)
            await sign_in(newcomer, base, "admin@rapport.demo", DEMO_PASSWORD)
            await newcomer.goto(f"{base}/sandbox")
            await _visitor_chats(newcomer, desk, "Sam Rivera", "+34 699 000 333")

            # The newcomer picks WhatsApp: the number the visitor gave is offered first.
            await newcomer.click(f"a[href='/sandbox?inbox={whatsapp.id}']")
            await expect(newcomer.locator(".sandbox-list a.active").last).to_contain_text(
                "+34699000333"
            )
            await newcomer.fill("#sandbox-text", "Sam again, from WhatsApp: can I pay on delivery?")
            await newcomer.press("#sandbox-text", "Enter")
            timeline = desk.locator("#timeline")
            await expect(timeline).to_contain_text("pay on delivery", timeout=LIVE)
            await desk.reload()  # the channel switch is drawn with the timeline
            await expect(desk.locator("#live-status.live")).to_have_count(1, timeout=LIVE)
            await expect(timeline).to_contain_text("Moved from Chat to WhatsApp")
            await expect(timeline).to_contain_text("deliver to Lisbon")
            await expect(desk.locator(".conv-item", has_text="Sam Rivera")).to_have_count(1)
            identities = desk.locator(".contact-panel .identities")
            await expect(identities).to_contain_text("from the channel", timeout=LIVE)
            chosen = await desk.locator("#reply-route option:checked").inner_text()
            assert "WhatsApp" in chosen
            await desk.fill("#reply-text", "Yes, cash or card at the door 👍")
            await desk.keyboard.press("Control+Enter")
            outgoing = desk.locator("#timeline li.outgoing").last
            await expect(outgoing.locator(".delivery")).to_have_text("Read", timeout=LIVE)
            reply = newcomer.locator(".bubble-row.business", has_text="cash or card")
            await expect(reply.locator(".phone-status")).to_contain_text("Read", timeout=LIVE)
            # The website chat shows what went through the website only: the visitor typed that
            # phone without proof, so what happens on WhatsApp stays on WhatsApp.
            await newcomer.locator("button.launcher").click()
            await expect(newcomer.locator("li.mine .bubble").first).to_be_visible(timeout=LIVE)
            await expect(
                newcomer.locator("li.theirs .bubble", has_text="cash or card")
            ).to_have_count(0)
            await screenshot(newcomer, "sandbox-widget-whatsapp.png")
            await screenshot(desk, "sandbox-one-conversation.png")

        async with services.read_session() as session:
            holder = await session.scalar(
                select(Identity).where(Identity.kind == "phone", Identity.value == "+34699000333")
            )
            kinds = set(
                await session.scalars(
                    select(Identity.kind).where(Identity.contact_id == holder.contact_id)
                )
            )
            conversations = await session.scalar(
                select(func.count())
                .select_from(Conversation)
                .where(Conversation.contact_id == holder.contact_id)
            )
            contact = await session.get(Contact, holder.contact_id)
        assert kinds == {"webchat", "phone"} and holder.verification == "provider"
        assert conversations == 1 and contact.name == "Sam Rivera"
