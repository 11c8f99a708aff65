"""An agent's morning in a real browser: sign in, open a conversation, a customer's message
arrives live through the API channel, the agent replies, the integration receives it signed."""

import asyncio
import json

import httpx
import pytest
from playwright.async_api import expect

from rapport.lib import signatures
from rapport.web.app import create_app
from rapport.workers.relay import worker_in_background
from tests.support.browser import chromium_browser, screenshot, sign_in
from tests.support.factory import API_SECRET, PASSWORD, signed_api_call
from tests.support.live import WebhookReceiver, eventually, serve

pytestmark = pytest.mark.browser


@pytest.fixture
def backend():
    return "sqlite"


async def _customer_says(base, inbox, n, text):
    raw, headers = signed_api_call(
        {
            "id": f"m-{n}",
            "contact": {"id": "user-7", "name": "Lucía Fernández", "email": "lucia@example.com"},
            "content": text,
        }
    )
    async with httpx.AsyncClient() as http:
        assert (
            await http.post(f"{base}/hooks/api/{inbox.id}", content=raw, headers=headers)
        ).status_code == 200


async def test_live_inbox_reply_round_trip(settings, services, factory, chromium):
    receiver = WebhookReceiver()
    app = create_app(settings, services=services, background=[worker_in_background])
    async with serve(receiver.app()) as integration, serve(app) as base:
        account = await factory.account("Acme Support")
        inbox = await factory.api_inbox(
            account, name="Website backend", outbound_url=f"{integration}/hook"
        )
        agent = await factory.user(account, name="Ana Ruiz", email="ana@example.com")
        await factory.team(account, "Billing", [agent])
        await _customer_says(base, inbox, 1, "Hi! I was charged twice for my March invoice.")
        for n, name in enumerate(["James Whitfield", "Sofía Navarro", "Kenji Watanabe"], start=10):
            await factory.receive(
                account,
                inbox,
                external_id=f"other-{n}",
                name=name,
                text="Can I add a second admin to our account?",
            )

        async with chromium_browser(chromium) as chrome:
            page = await chrome.new_page(viewport={"width": 1440, "height": 900})
            await sign_in(page, base, agent.email, PASSWORD)
            await page.click("text=All")
            await page.click("text=Lucía Fernández")
            await page.wait_for_selector("#timeline >> text=charged twice")
            await page.wait_for_selector("#live-status.live")

            # The customer writes again; it appears without a reload.
            await _customer_says(base, inbox, 2, "It's invoice INV-2041, paid by card.")
            await page.wait_for_selector("#timeline >> text=INV-2041")
            assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1

            await page.fill("#reply-text", "Thanks Lucía, I've refunded the duplicate charge.")
            await page.keyboard.press("Control+Enter")
            await page.wait_for_selector("#timeline >> text=refunded the duplicate")
            await page.wait_for_selector("#timeline .msg.outgoing >> text=Sent")
            await page.click("[data-shortcut=a]")
            await expect(page.locator("#assignee")).to_have_value(str(agent.id))
            await page.wait_for_selector(".conv-item.selected >> text=You:")  # the list followed
            await screenshot(page, "conversation.png")
            await page.goto(f"{base}/conversations?scope=all")
            await page.wait_for_selector(".conv-item")
            await screenshot(page, "inbox.png")

    async def delivered():
        return receiver.calls

    [call] = await eventually(delivered)
    signatures.verify(
        [API_SECRET],
        call.body,
        timestamp=call.headers["x-rapport-timestamp"],
        signature=call.headers["x-rapport-signature"],
    )
    assert json.loads(call.body)["content"] == "Thanks Lucía, I've refunded the duplicate charge."
    assert json.loads(call.body)["contact"] == {"id": "user-7"}


async def test_a_draft_survives_a_customer_message_arriving(settings, services, factory, chromium):
    """The reply box is drawn again when the customer writes (the default channel may change),
    but not over what the agent started typing while the new box was on its way."""
    receiver = WebhookReceiver()
    app = create_app(settings, services=services, background=[worker_in_background])
    async with serve(receiver.app()) as integration, serve(app) as base:
        account = await factory.account()
        inbox = await factory.api_inbox(account, outbound_url=f"{integration}/hook")
        agent = await factory.user(account)
        await _customer_says(base, inbox, 1, "Hi! I was charged twice for my March invoice.")

        async with chromium_browser(chromium) as chrome:
            page = await chrome.new_page()
            await sign_in(page, base, agent.email, PASSWORD)
            await page.click("text=All")
            await page.click("text=Lucía Fernández")
            await page.wait_for_selector("#live-status.live")
            await page.wait_for_selector("#composer[data-ready='1']")

            on_its_way, release = asyncio.Event(), asyncio.Event()

            async def hold(route):
                on_its_way.set()
                await release.wait()
                await route.continue_()

            await page.route("**/conversations/*/composer", hold)
            await _customer_says(base, inbox, 2, "It's invoice INV-2041, paid by card.")
            await asyncio.wait_for(on_its_way.wait(), 30)
            await page.fill("#reply-text", "Looking into it now.")
            async with page.expect_response("**/conversations/*/composer"):
                release.set()
            await expect(page.locator("#reply-text")).to_have_value("Looking into it now.")
            await page.keyboard.press("Control+Enter")
            await page.wait_for_selector("#timeline .msg.outgoing >> text=Looking into it now.")


async def test_the_inbox_in_spanish(settings, services, factory, chromium):
    app = create_app(settings, services=services)
    async with serve(app) as base:
        account = await factory.account()
        agent = await factory.user(account, locale="es")
        async with chromium_browser(chromium) as chrome:
            page = await chrome.new_page()
            await sign_in(page, base, agent.email, PASSWORD)
            assert await page.locator(".scope").all_inner_texts() == [
                "Mías 0",
                "Sin asignar 0",
                "Todas 0",
            ]
