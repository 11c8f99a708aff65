"""An agent reviews a suggested merge in a real browser, merges, and undoes it."""

import pytest

from rapport.domain import events
from rapport.domain.contacts.actions import update_contact
from rapport.domain.contacts.models import Contact, IdentityKind, Verification
from rapport.domain.ports import IdentityClaim
from rapport.web.app import create_app
from tests.support.browser import chromium_browser, screenshot, sign_in
from tests.support.factory import PASSWORD
from tests.support.live import serve

pytestmark = pytest.mark.browser


@pytest.fixture
def backend():
    return "sqlite"


async def test_review_a_suggestion_merge_and_unmerge(settings, services, factory, chromium):
    account = await factory.account("Acme Support")
    inbox = await factory.api_inbox(account, name="Shop")
    agent = await factory.user(account, name="Ana Ruiz", email="ana@example.com")
    by_phone = await factory.receive(
        account,
        inbox,
        name="Lucía Fernández",
        text="Hi, my parcel never arrived",
        claims=(IdentityClaim(IdentityKind.phone, "+34612345678", Verification.provider),),
    )
    by_mail = await factory.receive(
        account,
        inbox,
        name="Lucia Fernandez",
        text="Writing again about order 77",
        claims=(
            IdentityClaim(IdentityKind.email, "lucia@hotelsol.example", Verification.verified),
        ),
    )
    for received in (by_phone, by_mail):
        async with services.session() as session:
            contact = await session.get(Contact, received.conversation.contact_id)
            await update_contact(session, contact=contact, company="Hotel Sol")
            await events.commit(session)
    keep, lose = by_phone.conversation.contact_id, by_mail.conversation.contact_id

    app = create_app(settings, services=services)
    async with serve(app) as base, chromium_browser(chromium) as chrome:
        page = await chrome.new_page(viewport={"width": 1280, "height": 860})
        await sign_in(page, base, agent.email, PASSWORD)
        await page.goto(f"{base}/contacts")
        await page.click("text=Suggested merges")
        pair = page.locator(".merge-pair")
        await pair.locator("text=Similar name").wait_for()
        await pair.locator("text=lucia@hotelsol.example").wait_for()
        await screenshot(page, "suggested-merges.png")

        await pair.locator(f"form:has(input[value='{keep}']) button").click()
        await page.wait_for_url(f"{base}/contacts/{keep}")
        await page.locator(".identities >> text=lucia@hotelsol.example").wait_for()
        await page.locator("#merge-panel >> text=Merged into this contact").wait_for()
        await screenshot(page, "merged-contact.png")

        # The merged contact's old address leads to the survivor.
        await page.goto(f"{base}/contacts/{lose}")
        await page.wait_for_url(f"{base}/contacts/{keep}")

        await page.click("#merge-panel >> text=Unmerge")
        await page.wait_for_url(f"{base}/contacts/{lose}")
        await page.locator(".identities >> text=lucia@hotelsol.example").wait_for()
        await page.goto(f"{base}/contacts/{keep}")
        assert await page.locator(".identities >> text=lucia@hotelsol.example").count() == 0
