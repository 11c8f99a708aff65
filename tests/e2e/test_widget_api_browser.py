"""The website widget in a real browser, beyond the chat itself: the JavaScript API a site calls
(open, close, toggle, on), each inbox's own look, keyboard and screen-reader use, the agent's
name and picture on a reply, and `javascript:` links that never become clickable."""

from __future__ import annotations

import json

import httpx
import pytest
from playwright.async_api import Page, Route, expect
from sqlalchemy import select

from rapport.domain import events
from rapport.domain.agents.actions import create_api_token
from rapport.domain.agents.models import User
from rapport.domain.visitors.models import VisitorSession
from tests.support.browser import png, screenshot
from tests.support.live import eventually
from tests.support.webchat import agent_reply, configure_widget, widget_inbox, widget_on_site

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.parametrize("backend", ["sqlite"])]
LIVE = 15_000  # ms: generous for a loaded machine, the conditions themselves are exact
READY = "window.Rapport && window.Rapport.version === 1"
LISTEN = """() => {
    window.seen = [];
    Rapport
        .on("open", () => seen.push("open"))
        .on("close", () => seen.push("close"))
        .on("message", (m) => seen.push(`message from ${m.sender.name}: ${m.content}`));
}"""


def _socket_frames(page: Page) -> list[str]:
    """What the widget's live socket receives, as the browser saw it."""
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: frames.append(str(frame))))
    return frames


async def _say(page: Page, frames: list[str], text: str) -> None:
    """The visitor writes the first message, and the widget goes live for that conversation."""
    await page.locator("textarea#rp-text").fill(text)
    await page.keyboard.press("Enter")
    mine = page.locator("ol[role=log] li.mine", has_text=text)
    await expect(mine).to_contain_text("Sent", timeout=LIVE)

    async def live() -> bool:
        return any(json.loads(frame).get("kind") == "live" for frame in frames)

    await eventually(live, within=LIVE / 1000)


async def _conversation_id(services) -> int:
    async with services.read_session() as session:
        conversation_id = await session.scalar(select(VisitorSession.conversation_id))
    assert conversation_id is not None
    return int(conversation_id)


async def test_the_site_opens_closes_and_toggles_the_chat_and_hears_its_events(
    db_url, tmp_path, services, factory, chromium
):
    account = await factory.account(name="Northwind")
    agent = await factory.user(account, name="Ana Ruiz")
    inbox = await widget_inbox(services, account, name="Northwind Help")
    async with widget_on_site(db_url, tmp_path, services, inbox, chromium) as (site, page):
        frames = _socket_frames(page)
        await page.goto(site)
        await page.wait_for_function(READY)
        await page.evaluate(LISTEN)
        panel = page.get_by_role("dialog", name="Northwind Help")
        launcher = page.locator("button.launcher")

        assert await page.evaluate("() => { Rapport.open(); Rapport.open(); return seen; }") == [
            "open"
        ]
        await expect(panel).to_be_visible()
        await expect(launcher).to_have_attribute("aria-expanded", "true")
        await expect(page.locator("textarea#rp-text")).to_be_focused()

        assert await page.evaluate("() => { Rapport.close(); Rapport.close(); return seen; }") == [
            "open",
            "close",
        ]
        await expect(panel).to_be_hidden()
        await expect(launcher).to_have_attribute("aria-expanded", "false")

        assert await page.evaluate("() => { Rapport.toggle(); return seen.at(-1); }") == "open"
        await expect(panel).to_be_visible()
        assert await page.evaluate("() => { Rapport.toggle(); return seen.at(-1); }") == "close"
        await expect(panel).to_be_hidden()

        # The visitor clicks the launcher: the site hears that too.
        await launcher.click()
        await expect(panel).to_be_visible()
        await _say(page, frames, "Do you ship to the Canary Islands?")
        await agent_reply(
            services,
            await _conversation_id(services),
            agent,
            inbox,
            "Yes, in 3 to 5 working days.",
        )
        await page.wait_for_function("seen.some((s) => s.startsWith('message'))", timeout=LIVE)
        assert await page.evaluate("seen") == [
            "open",
            "close",
            "open",
            "close",
            "open",
            "message from Ana Ruiz: Yes, in 3 to 5 working days.",
        ]


async def test_calls_a_site_makes_before_the_script_loads_are_queued_and_run(
    db_url, tmp_path, services, factory, chromium
):
    account = await factory.account(name="Northwind")
    inbox = await widget_inbox(services, account, name="Northwind Help")
    early = """<script>
      window.heard = [];
      (window.Rapport = window.Rapport || {q: []}).q.push(
        ["on", "ready", () => heard.push("ready")], ["on", "open", () => heard.push("open")], ["open"]
      );
    </script>"""
    async with widget_on_site(db_url, tmp_path, services, inbox, chromium, extra=early) as (
        site,
        page,
    ):
        await page.goto(site)
        await expect(page.get_by_role("dialog", name="Northwind Help")).to_be_visible(timeout=LIVE)
        await page.wait_for_function("heard.includes('ready')", timeout=LIVE)
        assert await page.evaluate("heard") == ["open", "ready"]
        assert await page.evaluate("window.Rapport.version") == 1


async def test_each_inbox_has_its_own_greeting_picture_side_and_colour(
    db_url, tmp_path, services, factory, chromium
):
    account = await factory.account(name="Northwind")
    greeting = "Hola! Sizes, orders or repairs: ask us anything."
    inbox = await widget_inbox(
        services, account, name="Northwind Help", colour="#fbbf24", greeting=greeting
    )
    team = {"/team.png": ("image/png", png(48, 48))}
    async with widget_on_site(
        db_url,
        tmp_path,
        services,
        inbox,
        chromium,
        files=team,
        viewport={"width": 1280, "height": 800},
    ) as (site, page):
        await configure_widget(services, inbox, avatar_url=f"{site}/team.png", position="left")
        await page.goto(site)
        launcher = page.locator("button.launcher")
        # A light colour gets dark text and icons, so they stay readable.
        await expect(launcher).to_have_css("background-color", "rgb(251, 191, 36)", timeout=LIVE)
        await expect(launcher).to_have_css("color", "rgb(29, 36, 51)")
        await expect(launcher).to_have_css("left", "20px")
        box = await launcher.bounding_box()
        assert box is not None and box["x"] + box["width"] < 100  # bottom left, not right

        await launcher.click()
        panel = page.locator("section.panel")
        await expect(panel).to_be_visible()
        panel_box = await panel.bounding_box()
        assert panel_box is not None and panel_box["x"] < 100
        await expect(panel.locator("header")).to_have_css("background-color", "rgb(251, 191, 36)")
        await expect(page.locator("header h2")).to_have_text("Northwind Help")
        await expect(page.locator("ol[role=log] li.greet")).to_have_text(greeting)
        picture = page.locator("header img.avatar")
        await expect(picture).to_have_attribute("src", f"{site}/team.png")
        await expect(picture).to_have_js_property("naturalWidth", 48)  # loaded, not broken
        await screenshot(page, "widget-left-custom-look.png")


async def test_keyboard_and_screen_reader_users_can_chat(
    db_url, tmp_path, services, factory, chromium
):
    account = await factory.account(name="Northwind")
    inbox = await widget_inbox(services, account, name="Northwind Help")
    async with widget_on_site(db_url, tmp_path, services, inbox, chromium) as (site, page):
        await page.goto(site)
        await page.wait_for_function(READY)
        launcher = page.get_by_role("button", name="Open chat")
        await expect(launcher).to_have_attribute("aria-expanded", "false")
        # Tab from the top of the page, past the site's own links, reaches the launcher.
        for _ in range(12):
            await page.keyboard.press("Tab")
            if await launcher.evaluate("(b) => b.getRootNode().activeElement === b"):
                break
        await expect(launcher).to_be_focused()

        await page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog", name="Northwind Help")
        await expect(dialog).to_be_visible()
        await expect(launcher).to_have_attribute("aria-expanded", "true")
        log = page.get_by_role("log")
        await expect(log).to_have_attribute("aria-live", "polite")
        await expect(log).to_have_attribute("aria-labelledby", "rp-title")
        text = page.get_by_role("textbox", name="Write a message…")
        await expect(text).to_be_focused()

        await page.keyboard.type("Hello from the keyboard")
        await page.keyboard.press("Tab")
        send = page.get_by_role("button", name="Send")
        await expect(send).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(log.locator("li.mine", has_text="Hello from the keyboard")).to_contain_text(
            "Sent", timeout=LIVE
        )
        await page.keyboard.press("Shift+Tab")
        await expect(text).to_be_focused()
        await page.keyboard.press("Shift+Tab")
        await expect(
            page.get_by_role("button", name="Attach a file (image or PDF)")
        ).to_be_focused()

        # Escape closes the chat and gives focus back to the launcher.
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
        await expect(launcher).to_be_focused()
        await expect(launcher).to_have_attribute("aria-expanded", "false")

        # Space opens it again; the close button works from the keyboard too.
        await page.keyboard.press("Space")
        await expect(dialog).to_be_visible()
        await expect(text).to_be_focused()
        await page.get_by_role("button", name="Close chat").focus()
        await page.keyboard.press("Enter")
        await expect(dialog).to_be_hidden()
        await expect(launcher).to_be_focused()


async def test_an_agent_reply_shows_name_and_picture_and_no_javascript_link(
    db_url, tmp_path, services, factory, chromium
):
    account = await factory.account(name="Northwind")
    agent = await factory.user(account, name="Ana Ruiz")
    inbox = await widget_inbox(services, account, name="Northwind Help")
    pictures = {"/staff/ana.png": ("image/png", png(40, 40))}
    async with widget_on_site(db_url, tmp_path, services, inbox, chromium, files=pictures) as (
        site,
        page,
    ):
        async with services.session() as session:
            user = await session.get(User, agent.id)
            assert user is not None
            user.avatar_url = f"{site}/staff/ana.png"
            await events.commit(session)
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        frames = _socket_frames(page)
        await page.goto(site)
        await page.locator("button.launcher").click()
        await _say(page, frames, "Can you send me the returns link?")
        await agent_reply(
            services,
            await _conversation_id(services),
            agent,
            inbox,
            "Please don't paste javascript:alert(document.domain) or "
            '<a href="javascript:alert(2)">this</a> or JaVaScRiPt:alert(3) anywhere. '
            "Returns are here: https://example.com/returns",
        )
        reply = page.locator("ol[role=log] li.theirs", has_text="Returns are here")
        await expect(reply).to_be_visible(timeout=LIVE)
        await expect(reply.locator(".meta")).to_contain_text("Ana Ruiz")
        picture = reply.locator("img.avatar")
        await expect(picture).to_have_attribute("src", f"{site}/staff/ana.png")
        await expect(picture).to_have_js_property("naturalWidth", 40)

        # Shown as the text it is; the one real web address is the only link.
        await expect(reply.locator(".bubble")).to_contain_text(
            'javascript:alert(document.domain) or <a href="javascript:alert(2)">this</a>'
        )
        await expect(reply.locator("a")).to_have_count(1)
        await expect(reply.locator("a")).to_have_attribute("href", "https://example.com/returns")
        hrefs = await page.locator("ol[role=log] a").evaluate_all("(as) => as.map((a) => a.href)")
        assert hrefs and all(h.startswith("https://") for h in hrefs)
        await reply.locator(".bubble").click(position={"x": 20, "y": 10})
        assert dialogs == []
        await screenshot(page, "widget-agent-name-picture.png")


async def test_a_reply_sent_before_the_live_socket_opens_still_arrives(
    db_url, tmp_path, services, factory, chromium
):
    """The first message creates the conversation and only then does the widget open its socket;
    an answer in between (a quick agent, an integration's automatic reply) must not be lost."""
    account = await factory.account(name="Northwind")
    agent = await factory.user(account, name="Ana Ruiz")
    async with services.session() as session:
        _row, api_token = await create_api_token(
            session, user=await session.get(User, agent.id), name="auto-reply"
        )
        await events.commit(session)
    inbox = await widget_inbox(services, account, name="Northwind Help")
    async with widget_on_site(db_url, tmp_path, services, inbox, chromium) as (site, page):
        await page.goto(site)
        await page.wait_for_function(READY)
        rapport = await page.evaluate(
            "new URL(document.querySelector('script[data-inbox]').src).origin"
        )

        answered: list[int] = []

        async def answer_in_between(route: Route) -> None:
            if route.request.method != "POST" or answered:  # the widget may safely send twice
                await route.fallback()
                return
            stored = await route.fetch()
            conversation_id = (await stored.json())["conversation_id"]
            # Through Rapport's own API, so the server's hub knows of it at once.
            async with httpx.AsyncClient(base_url=rapport) as http:
                sent = await http.post(
                    f"/api/v1/conversations/{conversation_id}/messages",
                    json={"content": "Hi! Ana here, go ahead."},
                    headers={"Authorization": f"Bearer {api_token}"},
                )
                assert sent.status_code == 201, sent.text
            answered.append(sent.json()["id"])
            await route.fulfill(response=stored)

        await page.route("**/widget/api/*/messages", answer_in_between)
        await page.locator("button.launcher").click()
        await page.locator("textarea#rp-text").fill("Hello?")
        await page.keyboard.press("Enter")
        await expect(page.locator("ol[role=log] li.theirs", has_text="Ana here")).to_be_visible(
            timeout=LIVE
        )
        assert len(answered) == 1
