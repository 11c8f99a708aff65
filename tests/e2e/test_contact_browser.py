"""The customer 360 page in a real browser: identities with their verification, one timeline
across channels with a channel switch and a custom event, and "Load older" through htmx."""

import pytest
from playwright.async_api import expect

from rapport.domain import events
from rapport.domain.contacts import actions as contact_actions
from rapport.domain.contacts.models import Contact
from rapport.domain.contacts.queries import attribute_definitions
from rapport.domain.conversations import actions
from rapport.domain.conversations.models import Conversation, Status
from rapport.web.app import create_app
from tests.support.browser import chromium_browser, screenshot, sign_in
from tests.support.customers import cross_channel_history, phone_claim
from tests.support.factory import PASSWORD
from tests.support.live import serve

pytestmark = pytest.mark.browser

LATER = [
    "The parcel still says 'in transit'.",
    "Could you send it to my office instead?",
    "Calle Mayor 12, 3º, Madrid.",
    "Thanks! Will it arrive before Friday?",
]


@pytest.fixture
def backend():
    return "sqlite"


async def _profile(services, account, contact_id):
    async with services.session() as session:
        for label, kind, options in [
            ("Plan", "list", "Free\nPro\nEnterprise"),
            ("Lifetime value", "number", ""),
            ("Customer since", "date", ""),
        ]:
            await contact_actions.define_attribute(
                session, account_id=account.id, label=label, kind=kind, options=options
            )
        contact = await session.get(Contact, contact_id)
        await contact_actions.set_attributes(
            session,
            contact=contact,
            definitions=await attribute_definitions(session, account_id=account.id),
            values={"plan": "Pro", "lifetime_value": "1280", "customer_since": "2024-05-02"},
        )
        for name, colour in [("VIP", "red"), ("Returns", "blue")]:
            label = await contact_actions.create_label(
                session, account_id=account.id, name=name, color=colour
            )
            await contact_actions.add_label(session, contact=contact, label=label)
        await events.commit(session)


async def _more_history(services, factory, account, agent, history):
    """Enough later messages and notes that the oldest part needs 'Load older'."""
    for n in range(16):
        await factory.receive(account, history.sms, text=LATER[n % 4], claims=phone_claim())
        async with services.session() as session:
            conversation = await session.get(Conversation, history.conversation.id)
            await actions.send_reply(
                session,
                conversation=conversation,
                author=agent,
                reply=actions.Reply(content=f"Courier ticket updated ({n + 1}).", private=True),
            )
            await events.commit(session)


async def test_the_contact_page_shows_one_history_across_channels(
    settings, services, factory, chromium
):
    app = create_app(settings, services=services)
    async with serve(app) as base:
        account = await factory.account("Acme Support", default_region="ES")
        agent = await factory.user(account, name="Ana Ruiz", email="ana@example.com")
        history = await cross_channel_history(services, factory, account, agent)
        await _profile(services, account, history.contact_id)
        await _more_history(services, factory, account, agent, history)

        async with chromium_browser(chromium) as chrome:
            page = await chrome.new_page(viewport={"width": 1440, "height": 1000})
            await sign_in(page, base, agent.email, PASSWORD)
            await page.goto(f"{base}/contacts/{history.contact_id}")

            phone = page.locator("#identities .identity[data-kind=phone]")
            await expect(phone).to_contain_text("from the channel")
            await expect(page.locator(".label-chip", has_text="VIP")).to_be_visible()
            await expect(page.locator("select[name='attr.plan']")).to_have_value("Pro")
            timeline = page.locator("#contact-timeline")
            await expect(timeline.locator(".tl-item").first).to_contain_text("Courier ticket")
            await expect(timeline).not_to_contain_text("Moved from API to SMS")
            await screenshot(page, "contact.png")

            await page.click("text=Load older")
            switch = timeline.locator(".tl-conversation-channel_switched")
            await expect(switch).to_contain_text("Moved from API to SMS")
            custom = timeline.locator(".tl-contact-custom_event")
            await expect(custom).to_contain_text("order.placed")
            await expect(custom).to_contain_text("A-1001")
            await expect(timeline.locator(".tl-item").last).to_contain_text("Where is my order?")
            await expect(page.locator("text=Load older")).to_have_count(0)
            # Newest first, and the older page came after the first without repeats.
            ids = [
                int(i)
                for i in await timeline.locator(".tl-item").evaluate_all(
                    "items => items.map(i => i.dataset.eventId)"
                )
            ]
            assert ids == sorted(ids, reverse=True) and len(ids) == len(set(ids))
            assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1
            await switch.scroll_into_view_if_needed()
            await screenshot(page, "contact-timeline.png")

            # A segment of customers like her: the comparisons follow the chosen field.
            await page.goto(f"{base}/segments/new")
            await page.fill("input[name=name]", "Pro customers with a phone")
            await page.select_option("#cond-field-1", "attribute:plan")
            await page.select_option("#cond-op-1", "equals")
            await page.fill("#cond-value-1", "Pro")
            await page.select_option("#cond-field-2", "identity:phone")
            await expect(page.locator("#cond-op-2")).to_have_value("has")
            await page.click("text=Save segment")
            await expect(page.locator(".segment-count").first).to_have_text("1 contact")
            await expect(page.locator("table")).to_contain_text("Lucía")
            await screenshot(page, "segment.png")


async def test_the_inbox_panel_shows_earlier_conversations_and_follows_an_assignment(
    settings, services, factory, chromium
):
    app = create_app(settings, services=services)
    async with serve(app) as base:
        account = await factory.account("Acme Support", default_region="ES")
        agent = await factory.user(account, name="Ana Ruiz", email="ana@example.com")
        lead = await factory.user(account, name="Bruno Díaz")
        history = await cross_channel_history(services, factory, account, agent)
        async with services.session() as session:
            first = await session.get(Conversation, history.conversation.id)
            await actions.change_status(
                session, conversation=first, actor=agent, status=Status.resolved
            )
            await events.commit(session)
        later = await factory.receive(
            account, history.sms, text="Hi again, the parcel never came.", claims=phone_claim()
        )
        assert later.conversation.id != history.conversation.id

        async with chromium_browser(chromium) as chrome:
            page = await chrome.new_page(viewport={"width": 1440, "height": 900})
            await sign_in(page, base, agent.email, PASSWORD)
            await page.goto(f"{base}/conversations/{later.conversation.id}")
            await page.wait_for_selector("#live-status.live")
            panel = page.locator("#contact-panel")
            earlier = panel.locator("#panel-earlier")
            await expect(earlier).to_contain_text("Where is my order?")
            await expect(earlier).to_contain_text("SMS")
            await expect(panel).not_to_contain_text("VIP")

            # Meanwhile the contact gets a label, and the lead assigns the conversation to Ana:
            # the panel comes back with the label, the earlier conversations still there.
            async with services.session() as session:
                contact = await session.get(Contact, history.contact_id)
                vip = await contact_actions.create_label(
                    session, account_id=account.id, name="VIP", color="red"
                )
                await contact_actions.add_label(session, contact=contact, label=vip)
                conversation = await session.get(Conversation, later.conversation.id)
                await actions.assign_conversation(
                    session,
                    conversation=conversation,
                    actor=lead,
                    assignee_id=agent.id,
                    team_id=None,
                )
                await events.commit(session)
            await expect(page.locator("#assignee")).to_have_value(str(agent.id))
            await expect(panel.locator(".label-chip")).to_have_text("VIP")
            await expect(earlier).to_contain_text("Where is my order?")
            assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1
            # The list followed too (it is now in "Mine").
            await page.wait_for_selector(
                f".conv-item[data-conversation-id='{later.conversation.id}']"
            )
            await screenshot(page, "conversation-history-panel.png")
