"""Choosing the reply channel in Chromium: WhatsApp's closed 24-hour window asks for a template
(listed from the fake Graph API, variables filled in, previewed), a later SMS from the same phone
shows up as a channel switch without a reload, and the agent moves to SMS with the keyboard and
watches the characters, encoding and segment count as they type."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import httpx
import pytest
from playwright.async_api import expect
from sqlalchemy import select

from rapport.domain import events
from rapport.domain.accounts.models import Account, JoinPolicy
from rapport.domain.agents.models import Role
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import Conversation, Message
from rapport.domain.inboxes.actions import create_inbox
from rapport.domain.ports import IdentityClaim
from rapport.web.app import create_app
from rapport.web.sandbox.providers.meta import SANDBOX_TEMPLATES
from rapport.web.sandbox.providers.twilio import message_params, new_sid, signed
from rapport.workers.relay import Worker
from tests.support.browser import chromium_browser, screenshot
from tests.support.channels import channel_inbox
from tests.support.factory import PASSWORD
from tests.support.fakes import (
    BUSINESS_NUMBER,
    TWILIO_SID,
    TWILIO_TOKEN,
    running_twilio,
    sms_config,
)
from tests.support.live import eventually, free_port, serve
from tests.support.meta import PHONE_NUMBER_ID, fake_meta_server, make_inbox, whatsapp_config

PHONE = "+34612345678"


async def _age_everything(services, hours):
    """Time travel: the customer wrote `hours` ago, so WhatsApp's window has closed."""
    async with services.session() as session:
        for message in await session.scalars(select(Message)):
            message.created_at -= timedelta(hours=hours)
        for conversation in await session.scalars(select(Conversation)):
            conversation.last_incoming_at -= timedelta(hours=hours)
            conversation.last_activity_at -= timedelta(hours=hours)
        await events.commit(session)


@pytest.mark.browser
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_choosing_the_reply_channel(settings, services, factory, chromium):
    port = free_port()
    settings.public_url = f"http://localhost:{port}"
    account = await factory.account(name="Acme", default_region="ES")
    agent = await factory.user(account, role=Role.admin, name="Marta")
    stop = asyncio.Event()
    worker_task = asyncio.create_task(Worker(services, idle_poll_seconds=0.1).run(stop))
    app = create_app(settings, services=services)
    app.state.services = services
    async with (
        httpx.AsyncClient() as http,
        fake_meta_server() as meta,
        running_twilio(http) as twilio,
        serve(app, port=port) as base,
    ):
        meta.templates = [dict(t) for t in SANDBOX_TEMPLATES]
        whatsapp = await make_inbox(
            services, account, "whatsapp", whatsapp_config(meta.base_url), "WhatsApp Ventas"
        )
        sms = await channel_inbox(services, account, "sms", sms_config(twilio), name="SMS")
        hook_url = f"{base}/hooks/whatsapp/{whatsapp.id}"
        first = meta.whatsapp_text(
            phone_number_id=PHONE_NUMBER_ID,
            wa_id=PHONE.lstrip("+"),
            name="Lucía Martínez",
            text="Hola, ¿dónde está mi pedido A-1042?",
        )
        assert (await meta.deliver(http, hook_url, first)).status_code == 200
        await eventually(lambda: _count(services))
        await _age_everything(services, 30)

        async with chromium_browser(chromium) as browser:
            page = await browser.new_page(
                base_url=f"http://localhost:{port}", viewport={"width": 1280, "height": 860}
            )
            await page.goto("/login")
            await page.fill("input[name=email]", agent.email)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.goto("/conversations?scope=all")
            await page.locator("#conv-items li a").first.click()
            timeline = page.locator("#timeline")
            await expect(timeline).to_contain_text("mi pedido A-1042")
            await page.wait_for_selector("#live-status.live")

            # WhatsApp is the default (her last message) but its window is closed: template only.
            route = page.locator("#reply-route")
            selected = route.locator("option:checked")
            await expect(selected).to_contain_text("WhatsApp · WhatsApp Ventas")
            await expect(page.locator("#route-hint")).to_contain_text("reply window is closed")
            await expect(page.locator("#reply-text")).to_be_disabled()
            picker = page.locator(".template-picker:visible")
            await expect(picker.locator(".template-select")).to_have_value("order_update")
            send = page.locator("#reply-send")
            await expect(send).to_be_disabled()  # variables still empty
            variables = picker.locator("input[name=template_vars]")
            await expect(variables).to_have_count(2)
            await variables.nth(0).fill("Lucía")
            await variables.nth(1).fill("A-1042")
            await expect(picker.locator(".preview-text")).to_have_text(
                "Hi Lucía, your order A-1042 is on its way."
            )
            await expect(send).to_be_enabled()
            await screenshot(page, "reply-whatsapp-template.png")
            await send.click()
            await eventually(_sent(meta.sent, 1))
            assert meta.sent[0].body["template"]["name"] == "order_update"
            await expect(timeline.locator("li.outgoing").last).to_contain_text(
                "Hi Lucía, your order A-1042 is on its way."
            )

            # She answers by SMS from the same phone: the switch is drawn live, no reload.
            text = message_params(
                account_sid=TWILIO_SID,
                sid=new_sid("SM"),
                sender=PHONE,
                to=BUSINESS_NUMBER,
                body="Gracias, mejor escríbeme por SMS",
            )
            call = signed(f"{base}/hooks/sms/{sms.id}", TWILIO_TOKEN, text)
            assert (await call.deliver(http)).status_code == 200
            await expect(timeline).to_contain_text("Moved from WhatsApp to SMS")
            await expect(timeline).to_contain_text("mejor escríbeme por SMS")
            order = await timeline.locator("> li").all_inner_texts()
            switch_at = next(i for i, t in enumerate(order) if "Moved from WhatsApp to SMS" in t)
            assert "mejor escríbeme" in order[switch_at + 1]  # the switch, then the message
            assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1

            # Her last message came by SMS: the reply box now defaults to it. The agent looks
            # at WhatsApp again with the keyboard, and comes back to SMS.
            await expect(route.locator("option:checked")).to_contain_text("SMS · SMS")
            await page.wait_for_selector("#composer[data-ready='1']")  # no eval: the CSP forbids it
            await page.evaluate("document.activeElement && document.activeElement.blur()")
            await page.keyboard.press("c")
            await expect(route.locator("option:checked")).to_contain_text("WhatsApp · WhatsApp")
            await expect(page.locator(".template-picker:visible")).to_have_count(1)
            await page.keyboard.press("c")
            await expect(route.locator("option:checked")).to_contain_text("SMS · SMS")
            await expect(page.locator(".template-picker:visible")).to_have_count(0)
            counter = page.locator("#reply-counter")
            await page.fill("#reply-text", "Su pedido llega mañana a las 10:00. " * 5)
            await expect(counter).to_have_text("180 characters · GSM-7 · 2 SMS")
            await page.fill("#reply-text", "Hola Lucía, tu pedido llega mañana 📦")
            await expect(counter).to_have_text("36 characters · UCS-2 · 1 SMS")
            await screenshot(page, "reply-sms-segments.png")
            await page.keyboard.press("Control+Enter")
            await eventually(_sent(twilio.creates, 1))
            assert twilio.creates[0]["To"] == PHONE
            assert twilio.creates[0]["Body"] == "Hola Lucía, tu pedido llega mañana 📦"
            await expect(timeline.locator("li.outgoing").last).to_contain_text("Sent")
            await screenshot(page, "reply-channel-timeline.png")
    stop.set()
    await worker_task


async def _count(services):
    async with services.read_session() as session:
        return await session.scalar(select(Message.id))


@pytest.mark.browser
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_split_and_merge_with_the_keyboard(settings, services, factory, chromium):
    account = await factory.account(name="Acme", default_region="ES")
    async with services.session() as session:
        (await session.get(Account, account.id)).join_policy = JoinPolicy.never
        await events.commit(session)
    sms = await _bare_inbox(services, account, "sms", "SMS")
    backend = await _bare_inbox(services, account, "api", "Website backend")
    agent = await factory.user(account, role=Role.admin, name="Marta")
    phone = (IdentityClaim(IdentityKind.phone, PHONE, Verification.provider),)
    first = await factory.receive(account, sms, claims=phone, name="Lucía", text="Order A-1042?")
    await factory.receive(account, sms, claims=phone, text="Also: change my address please")
    other = await factory.receive(
        account,
        backend,
        claims=(*phone, IdentityClaim(IdentityKind.external, "lucia-7", Verification.verified)),
        text="Invoice question from the website",
    )
    port = free_port()
    app = create_app(settings, services=services)
    app.state.services = services
    async with serve(app, port=port), chromium_browser(chromium) as browser:
        page = await browser.new_page(
            base_url=f"http://localhost:{port}", viewport={"width": 1280, "height": 860}
        )
        await page.goto("/login")
        await page.fill("input[name=email]", agent.email)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.goto(f"/conversations/{first.conversation.id}?scope=all")
        timeline = page.locator("#timeline")
        await expect(timeline).to_contain_text("change my address")

        # s: select messages; arrows move, Space picks, Enter moves them out.
        await page.keyboard.press("s")
        await expect(page.locator("#split-bar")).to_be_visible()
        await page.keyboard.press("ArrowDown")
        await page.keyboard.press("Space")
        await expect(page.locator("#split-count")).to_have_text("1 selected")
        await screenshot(page, "split-select.png")
        await page.keyboard.press("Enter")
        await page.wait_for_url(re.compile(rf"/conversations/(?!{first.conversation.id}\b)\d+"))
        await expect(page.locator("#timeline")).to_contain_text("split this conversation off from")
        await expect(page.locator("#timeline")).to_contain_text("change my address")
        await expect(page.locator("#timeline")).not_to_contain_text("Order A-1042?")

        # m: merge the website conversation into this one, from the dialog.
        await page.goto(f"/conversations/{other.conversation.id}?scope=all")
        await expect(page.locator("#timeline")).to_contain_text("Invoice question")
        await page.keyboard.press("m")
        dialog = page.locator("#merge-dialog")
        await expect(dialog).to_be_visible()
        await page.select_option("#merge-target", str(first.conversation.id))
        await screenshot(page, "merge-dialog.png")
        await page.keyboard.press("Tab")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"**/conversations/{first.conversation.id}")
        await expect(page.locator("#timeline")).to_contain_text(
            f"Marta merged conversation #{other.conversation.id} into this one (1 message)"
        )
        await expect(page.locator("#timeline")).to_contain_text("Invoice question")
        await screenshot(page, "merged-conversation.png")


async def _bare_inbox(services, account, channel, name):
    async with services.session() as session:
        inbox = await create_inbox(
            session,
            account_id=account.id,
            name=name,
            channel=channel,
            config={},
            box=services.box,
        )
        await events.commit(session)
        return inbox


def _sent(recorded, count):
    """A check for `eventually`: the fake provider has recorded `count` sends."""

    async def check():
        return len(recorded) == count

    return check
