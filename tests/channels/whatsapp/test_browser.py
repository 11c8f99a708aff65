"""An agent answers a WhatsApp conversation driven through the fake Graph API, in Chromium."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from playwright.async_api import expect

from rapport.domain.agents.models import Role
from rapport.web.app import create_app
from rapport.workers.relay import Worker
from tests.support.browser import chromium_browser, screenshot
from tests.support.factory import PASSWORD
from tests.support.live import eventually, free_port, serve
from tests.support.meta import PHONE_NUMBER_ID, fake_meta_server, make_inbox, whatsapp_config


@pytest.mark.browser
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_agent_answers_a_whatsapp_customer(settings, services, factory, chromium):
    port = free_port()
    settings.public_url = f"http://localhost:{port}"
    account = await factory.account(name="Acme")
    agent = await factory.user(account, role=Role.admin, name="Marta")
    stop = asyncio.Event()
    worker_task = asyncio.create_task(Worker(services, idle_poll_seconds=0.1).run(stop))
    async with fake_meta_server() as fake:
        inbox = await make_inbox(
            services, account, "whatsapp", whatsapp_config(fake.base_url), "WhatsApp Ventas"
        )
        app = create_app(settings, services=services)
        app.state.services = services
        async with serve(app, port=port) as base, httpx.AsyncClient() as http:
            hook_url = f"{base}/hooks/whatsapp/{inbox.id}"
            first = fake.whatsapp_text(
                phone_number_id=PHONE_NUMBER_ID,
                wa_id="34612345678",
                name="Lucía Martínez",
                text="¡Hola! ¿Me podéis cambiar la talla del pedido 4521? 🙏",
            )
            assert (await fake.deliver(http, hook_url, first)).status_code == 200
            async with chromium_browser(chromium) as browser:
                page = await browser.new_page(
                    base_url=f"http://localhost:{port}", viewport={"width": 1280, "height": 800}
                )
                await page.goto("/login")
                await page.fill("input[name=email]", agent.email)
                await page.fill("input[name=password]", PASSWORD)
                await page.click("button[type=submit]")
                await page.goto("/conversations?scope=all")
                item = page.locator("#conv-items li").first
                await expect(item).to_contain_text("Lucía Martínez")
                await item.locator("a").first.click()
                timeline = page.locator("#timeline")
                await expect(timeline).to_contain_text("cambiar la talla")
                await page.fill("#reply-text", "¡Claro, Lucía! ¿Qué talla necesitas? 👟")
                await page.click("#composer button[type=submit]")

                async def sent_once() -> bool:
                    return len(fake.sent) == 1

                await eventually(sent_once)
                sent = fake.sent[0]
                assert sent.text == "¡Claro, Lucía! ¿Qué talla necesitas? 👟"
                assert sent.to == "34612345678"
                outgoing = page.locator("#timeline li.outgoing").last
                await expect(outgoing).to_contain_text("Sent")
                for hook in fake.whatsapp_statuses(sent, "delivered", "read"):
                    assert (await fake.deliver(http, hook_url, hook)).status_code == 200
                await expect(outgoing.locator(".delivery")).to_have_text("Read")
                second = fake.whatsapp_text(
                    phone_number_id=PHONE_NUMBER_ID,
                    wa_id="34612345678",
                    text="La 39, gracias 😊",
                    context={"from": "15550001234", "id": sent.id},
                )
                await fake.deliver(http, hook_url, second)
                await expect(timeline).to_contain_text("La 39, gracias")
                await page.evaluate("Promise.all(document.getAnimations().map(a => a.finished))")
                await screenshot(page, "whatsapp-conversation.png")
    stop.set()
    await worker_task
