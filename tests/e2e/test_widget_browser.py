"""The website widget in a real browser, on a customer's page served from another port, with an
agent working the inbox in a second page: live both ways, typing, a file, a server restart, and
identity proven by HMAC (a bad hash refused)."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import func, select

from rapport.domain.agents.models import User
from rapport.domain.contacts.models import Identity
from rapport.domain.conversations.models import Conversation, Message
from rapport.domain.visitors.models import VisitorSession
from tests.support.browser import chromium_browser, png, screenshot
from tests.support.factory import PASSWORD
from tests.support.live import eventually
from tests.support.server import RapportServer, shop_page, website
from tests.support.webchat import agent_reply, allow_origin, user_hash, widget_inbox

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.parametrize("backend", ["sqlite"])]
IDENTIFY = """(hash) => Rapport.identify({user_id: "cust-7", user_hash: hash, name: "María"})
    .then(() => 200, (e) => e.status)"""
LIVE = 20_000  # ms: generous for a loaded CI machine, the conditions themselves are exact


async def sign_in(page: Page, url: str, user: User) -> None:
    await page.goto(f"{url}/login")
    await page.fill("input[name=email]", user.email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{url}/conversations*")
    await page.goto(f"{url}/conversations?scope=all")
    await expect(page.locator("#live-status.live")).to_have_count(1, timeout=LIVE)


async def test_chat_live_both_ways_with_typing_a_file_and_a_restart(
    db_url, tmp_path, services, factory, chromium
):
    account = await factory.account(name="Northwind")
    agent = await factory.user(account, name="Ana Ruiz")
    server = RapportServer(db_url, tmp_path)
    inbox = await widget_inbox(
        services,
        account,
        name="Northwind Help",
        colour="#1f3b2d",
        greeting="Hi! Questions about sizes, orders or repairs? We're here.",
    )
    await asyncio.to_thread(server.start)
    try:
        with website(shop_page(server.url, inbox.public_token)) as site:
            await allow_origin(services, inbox, site)
            async with chromium_browser(chromium) as browser:
                visitor = await (
                    await browser.new_context(viewport={"width": 1280, "height": 800})
                ).new_page()
                desk = await (
                    await browser.new_context(viewport={"width": 1440, "height": 900})
                ).new_page()
                notes: list[str] = []
                desk.on("console", lambda m: notes.append(f"console {m.type}: {m.text}"))
                desk.on("requestfailed", lambda r: notes.append(f"failed {r.url}"))
                desk.on(
                    "websocket",
                    lambda ws: ws.on("framereceived", lambda f: notes.append(f"ws {str(f)[:160]}")),
                )
                await sign_in(desk, server.url, agent)
                await visitor.goto(site)
                await _conversation(visitor, desk)
                await _typing_both_ways(visitor, desk)
                await _file(visitor, desk, tmp_path)
                await visitor.locator("textarea#rp-text").press_sequentially(
                    "Great, thank", delay=20
                )
                await expect(desk.locator("#typing-indicator")).to_be_visible(timeout=LIVE)
                await screenshot(visitor, "widget-open.png")
                await screenshot(desk, "widget-agent-inbox.png")
                try:
                    await _restart(visitor, desk, server, services, agent, inbox)
                except Exception:
                    await visitor.screenshot(path=str(tmp_path / "visitor-failed.png"))
                    await desk.screenshot(path=str(tmp_path / "desk-failed.png"))
                    print(server.log.read_text()[-4000:])
                    print("\n".join(notes[-60:]))
                    raise
    finally:
        await asyncio.to_thread(server.stop)


async def _conversation(visitor: Page, desk: Page) -> None:
    await visitor.locator("button.launcher").click()
    await expect(visitor.locator("section.panel")).to_be_visible()
    await expect(visitor.locator("header p")).to_contain_text("We usually reply", timeout=LIVE)
    await expect(visitor.locator("textarea#rp-text")).to_be_focused()
    await visitor.locator("textarea#rp-text").fill("Hello! Is the Field Jacket back in size M?")
    await visitor.keyboard.press("Enter")
    # The agent sees it arrive live, without reloading.
    item = desk.locator(".conv-item", has_text="Is the Field Jacket back")
    await expect(item).to_be_visible(timeout=LIVE)
    await item.click()
    await expect(desk.locator("#timeline")).to_contain_text(
        "Is the Field Jacket back", timeout=LIVE
    )
    await desk.locator("#reply-text").fill(
        "Hi! Yes, size M came back this morning. Shall I reserve one?"
    )
    await desk.locator("#composer button[type=submit]").click()
    reply = visitor.locator("ol[role=log] li.theirs", has_text="size M came back")
    await expect(reply).to_be_visible(timeout=LIVE)
    await expect(reply).to_contain_text("Ana Ruiz")
    # The visitor saw it with the chat open: the agent's message turns to Read.
    outgoing = desk.locator("#timeline li.outgoing", has_text="size M came back")
    await expect(outgoing.locator(".delivery")).to_have_text("Read", timeout=LIVE)


async def _typing_both_ways(visitor: Page, desk: Page) -> None:
    await desk.locator("#reply-text").press_sequentially("Let me che", delay=30)
    await expect(visitor.locator(".typing")).to_have_text("Ana Ruiz is typing…", timeout=LIVE)
    await desk.locator("#reply-text").fill("")
    await visitor.locator("textarea#rp-text").press_sequentially("Yes please", delay=30)
    await expect(desk.locator("#typing-indicator")).to_have_text(
        "The customer is typing…", timeout=LIVE
    )
    await visitor.keyboard.press("Enter")
    await expect(desk.locator("#timeline")).to_contain_text("Yes please", timeout=LIVE)
    await desk.locator("#reply-text").fill(
        "Done: one Field Jacket in M is reserved for you until Friday. https://example.com/orders/4821"
    )
    await desk.keyboard.press("Control+Enter")
    link = visitor.locator("ol[role=log] a[href='https://example.com/orders/4821']")
    await expect(link).to_have_attribute("rel", "noopener noreferrer nofollow", timeout=LIVE)


async def _file(visitor: Page, desk: Page, tmp_path) -> None:
    photo = tmp_path / "jacket-tear.png"
    photo.write_bytes(png())
    await visitor.locator("input[type=file]").set_input_files(str(photo))
    await expect(desk.locator("#timeline img[alt='jacket-tear.png']")).to_be_visible(timeout=LIVE)
    await expect(visitor.locator("ol[role=log] img[alt='jacket-tear.png']")).to_be_visible(
        timeout=LIVE
    )
    await visitor.locator("textarea#rp-text").fill(
        "Also, can you repair this small tear on my old one?"
    )
    await visitor.keyboard.press("Enter")
    await expect(desk.locator("#timeline")).to_contain_text("small tear", timeout=LIVE)
    await desk.locator("#reply-text").fill(
        "Of course! Bring it to any store, repairs are free for life."
    )
    await desk.keyboard.press("Control+Enter")
    await expect(visitor.locator("ol[role=log]")).to_contain_text("free for life", timeout=LIVE)


async def _restart(
    visitor: Page, desk: Page, server: RapportServer, services, agent, inbox
) -> None:
    await asyncio.to_thread(server.stop)
    await visitor.locator("textarea#rp-text").fill("Are you still there?")
    await visitor.keyboard.press("Enter")
    await expect(visitor.locator("li.mine", has_text="Are you still there?")).to_contain_text(
        "Sending"
    )
    async with services.read_session() as session:
        conversation_id = await session.scalar(select(VisitorSession.conversation_id))
    # Committed while every browser was disconnected: the replay must bring it.
    await agent_reply(
        services, conversation_id, agent, inbox, "Yes, still here: we were restarting, sorry!"
    )
    await asyncio.to_thread(server.start)
    await expect(visitor.locator("ol[role=log]")).to_contain_text(
        "we were restarting", timeout=45_000
    )
    await expect(desk.locator("#timeline")).to_contain_text("Are you still there?", timeout=45_000)
    await expect(visitor.locator("li.mine", has_text="Are you still there?")).to_contain_text(
        "Sent", timeout=LIVE
    )
    # Nothing lost, nothing twice, on either side, and again after a reload of the visitor's page.
    for text in ("Field Jacket back", "Yes please", "Are you still there?", "we were restarting"):
        await expect(visitor.locator("ol[role=log] li", has_text=text)).to_have_count(1)
        await expect(desk.locator("#timeline li.msg", has_text=text)).to_have_count(1)
    await visitor.reload()
    await visitor.locator("button.launcher").click()
    await expect(visitor.locator("ol[role=log] li", has_text="we were restarting")).to_have_count(
        1, timeout=LIVE
    )
    await expect(visitor.locator("ol[role=log] li:not(.greet)")).to_have_count(9)
    async with services.read_session() as session:
        total = await session.scalar(select(func.count()).select_from(Message))
    assert total == 9


async def test_hmac_identify_links_the_contact_and_a_bad_hash_changes_nothing(
    db_url, tmp_path, services, factory, chromium
):
    account = await factory.account(name="Northwind")
    api = await factory.api_inbox(account)
    known = await factory.receive(
        account, api, external_id="cust-7", name="María García", text="Order 4821?"
    )
    inbox = await widget_inbox(services, account, name="Northwind Help", colour="#1f3b2d")
    server = RapportServer(db_url, tmp_path)
    await asyncio.to_thread(server.start)
    try:
        with website(shop_page(server.url, inbox.public_token)) as site:
            await allow_origin(services, inbox, site)
            async with chromium_browser(chromium) as browser:
                page = await (
                    await browser.new_context(
                        locale="es-ES",
                        viewport={"width": 390, "height": 844},
                        is_mobile=True,
                        has_touch=True,
                    )
                ).new_page()
                await page.goto(site)
                await page.wait_for_function("window.Rapport && window.Rapport.version === 1")
                # The widget opens its visitor session on load; compare from that point on.
                await page.locator("button.launcher").wait_for()
                await eventually(lambda: _has_visit(services))
                before = await _snapshot(services)
                status = await page.evaluate(
                    IDENTIFY,
                    user_hash("cust-8"),
                )
                assert status == 401
                blank = await page.evaluate(IDENTIFY, "")
                assert blank == 401
                assert await _snapshot(services) == before
                ok = await page.evaluate(
                    IDENTIFY,
                    user_hash("cust-7"),
                )
                assert ok == 200
                await page.locator("button.launcher").click()
                # Linked to the existing contact: her open conversation is already here.
                await expect(page.locator("ol[role=log]")).to_contain_text(
                    "Order 4821?", timeout=LIVE
                )
                # Nobody is online: the widget says so in Spanish and asks for an email.
                await expect(page.locator(".banner")).to_contain_text(
                    "Déjanos tu email", timeout=LIVE
                )
                await page.locator("textarea#rp-text").fill("¿Me avisáis cuando llegue?")
                await page.keyboard.press("Enter")
                await expect(page.locator("li.mine", has_text="llegue")).to_contain_text(
                    "Enviado", timeout=LIVE
                )
                await screenshot(page, "widget-phone-es.png")
                await page.locator(".banner input[type=email]").fill("maria@example.com")
                await page.locator(".banner button").click()
                await expect(page.locator(".banner")).to_contain_text(
                    "maria@example.com", timeout=LIVE
                )
    finally:
        await asyncio.to_thread(server.stop)
    async with services.read_session() as session:
        conversation = await session.scalar(
            select(Conversation)
            .join(Message)
            .where(Message.content == "¿Me avisáis cuando llegue?")
        )
        emails = list(await session.scalars(select(Identity.value).where(Identity.kind == "email")))
    assert conversation.id == known.conversation.id
    assert emails == ["maria@example.com"]


async def _has_visit(services) -> bool:
    async with services.read_session() as session:
        return bool(await session.scalar(select(func.count()).select_from(VisitorSession)))


async def _snapshot(services):
    async with services.read_session() as session:
        identities = list(
            await session.execute(
                select(Identity.contact_id, Identity.kind, Identity.value).order_by(Identity.id)
            )
        )
        visits = list(
            await session.execute(
                select(
                    VisitorSession.visitor_id,
                    VisitorSession.verified_as,
                    VisitorSession.conversation_id,
                )
            )
        )
    return identities, visits


async def test_a_site_that_forbids_inline_styles_still_shows_the_styled_widget(
    db_url, tmp_path, services, factory, chromium
):
    account = await factory.account(name="Northwind")
    inbox = await widget_inbox(services, account, name="Northwind Help", colour="#1f3b2d")
    server = RapportServer(db_url, tmp_path)
    await asyncio.to_thread(server.start)
    page_html = (
        "<!doctype html><html><head><title>Strict shop</title></head><body><h1>Shop</h1>"
        f'<script src="{server.url}/widget.js" data-inbox="{inbox.public_token}" async></script>'
        "</body></html>"
    )
    ws_url = server.url.replace("http://", "ws://")
    policy = (
        f"default-src 'none'; script-src {server.url}; connect-src {server.url} {ws_url}; "
        f"img-src {server.url} data:; style-src 'none'"
    )
    try:
        with website(page_html, headers={"Content-Security-Policy": policy}) as site:
            await allow_origin(services, inbox, site)
            async with chromium_browser(chromium) as browser:
                page = await browser.new_page()
                violations: list[str] = []
                page.on(
                    "console",
                    lambda msg: (
                        violations.append(msg.text)
                        if "Content Security Policy" in msg.text
                        else None
                    ),
                )
                await page.goto(site)
                await page.wait_for_function("window.Rapport && window.Rapport.version === 1")
                launcher = page.locator("button.launcher")
                await expect(launcher).to_be_visible(timeout=LIVE)
                # Styled: the inbox colour, fixed in the corner, round (not a bare button).
                await expect(launcher).to_have_css("position", "fixed")
                await expect(launcher).to_have_css("background-color", "rgb(31, 59, 45)")
                await launcher.click()
                await expect(page.locator("textarea#rp-text")).to_be_visible(timeout=LIVE)
                assert violations == []
    finally:
        await asyncio.to_thread(server.stop)
