"""In a real browser: the API reference renders under the app's CSP, and an admin reads the
webhook delivery log and retries a failed delivery."""

import pytest

from rapport.domain import events
from rapport.domain.agents.models import Role
from rapport.domain.webhooks.actions import create_subscription
from rapport.web.app import create_app
from tests.conftest import make_settings
from tests.support.browser import chromium_browser, screenshot, sign_in
from tests.support.factory import PASSWORD
from tests.support.live import WebhookReceiver, serve

pytestmark = pytest.mark.browser


@pytest.fixture
def backend():
    return "sqlite"


@pytest.fixture
def settings(db_url, tmp_path):
    return make_settings(db_url, tmp_path, webhook_max_attempts=1)


async def test_api_docs_and_the_delivery_log(settings, services, factory, worker, chromium):
    account = await factory.account("Acme Support")
    admin = await factory.user(account, role=Role.admin, email="admin@acme.example")
    inbox = await factory.api_inbox(account, name="Shop")
    receiver = WebhookReceiver(answers=[(500, {})])
    app = create_app(settings, services=services)
    async with (
        serve(receiver.app()) as hooks,
        serve(app) as base,
        chromium_browser(chromium) as chrome,
    ):
        async with services.session() as session:
            subscription, _secret = await create_subscription(
                session,
                actor=admin,
                url=f"{hooks}/hook",
                event_types=["message.created"],
                description="CRM sync",
                box=services.box,
            )
            await events.commit(session)
        await factory.receive(account, inbox, text="Where is my order?")
        await worker.drain()

        page = await chrome.new_page(viewport={"width": 1280, "height": 900})
        blocked = []
        page.on(
            "console",
            lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
        )
        await page.goto(f"{base}/api/docs")
        await page.locator(".opblock-summary-path", has_text="/api/v1/contacts/lookup").wait_for()
        await screenshot(page, "api-docs.png")
        assert blocked == []

        await sign_in(page, base, admin.email, PASSWORD)
        await page.goto(f"{base}/settings/webhooks/{subscription.id}")
        row = page.locator("#deliveries tbody tr").first
        await row.locator("text=Failed").wait_for()
        await row.locator("text=the receiver answered 500").wait_for()
        await screenshot(page, "webhook-deliveries.png")
        await row.locator("button", has_text="Retry").click()
        await page.wait_for_url(f"{base}/settings/webhooks/{subscription.id}")
        await worker.drain()
        await page.reload()
        await page.locator("#deliveries tbody tr").first.locator("text=Succeeded").wait_for()
    assert len(receiver.calls) == 2
