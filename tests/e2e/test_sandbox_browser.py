"""The sandbox in a real browser: a customer the agent already knows texts by SMS and then
calls, from the sandbox; the agent sees one conversation, answers on SMS, and the reply
reaches the customer's phone delivered."""

import pytest

from rapport.domain import events
from rapport.domain.agents.models import Role
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.ports import IdentityClaim
from rapport.services import build_services
from rapport.web.app import create_app
from rapport.web.sandbox.catalog import seed_sandbox_inboxes
from rapport.workers.relay import worker_in_background
from tests.conftest import make_settings
from tests.support.browser import chromium_browser, screenshot, sign_in
from tests.support.factory import PASSWORD, Factory
from tests.support.live import free_port, serve

pytestmark = pytest.mark.browser

PHONE = "+34610000000"


@pytest.fixture
def backend():
    return "sqlite"


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


async def test_an_sms_conversation_played_in_the_sandbox(db_url, tmp_path, chromium):
    port = free_port()
    base = f"http://localhost:{port}"
    settings = make_settings(db_url, tmp_path, env="development", public_url=base)
    services = build_services(settings, with_hub=True)
    await services.start()
    app = create_app(settings, services=services, background=[worker_in_background])
    async with serve(app, port=port):
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
            await inbox.click("text=All")
            await inbox.click(".conv-item >> text=María García")
            await inbox.wait_for_selector("#timeline >> text=charged twice")
            await inbox.wait_for_selector("#timeline >> text=os llegó la foto")
            await inbox.wait_for_selector("#live-status.live")
            await inbox.wait_for_selector("#timeline .call-record >> text=Answered")
            voice = inbox.locator(f"#reply-route option[value='{inboxes['voice'].id}']")
            assert await voice.is_disabled()  # a call cannot carry a written reply
            await inbox.select_option("#reply-route", str(inboxes["sms"].id))
            route = await inbox.locator("#reply-route option:checked").inner_text()
            assert "+34610000000" in route
            await inbox.fill("#reply-text", "¡Hola María! Sí, la tenemos: el reembolso sale hoy.")
            await inbox.keyboard.press("Control+Enter")
            await inbox.wait_for_selector("#timeline .msg.outgoing >> text=Delivered")

            await phone.wait_for_selector(".bubble-row.business >> text=el reembolso sale hoy")
            await phone.wait_for_selector(".bubble-row.business .phone-status >> text=Delivered")
            await screenshot(phone, "sandbox.png")
            await screenshot(inbox, "sandbox-inbox.png")
            await customer_side.close()
            await agent_side.close()
    await services.stop()
