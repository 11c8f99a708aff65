"""Helpers for website widget tests: a widget inbox, its settings changed later, an agent's reply,
and a visitor talking to the public API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page

from rapport.channels.registry import adapter_for
from rapport.domain import events
from rapport.domain.accounts.models import Account
from rapport.domain.agents.models import User
from rapport.domain.conversations import actions
from rapport.domain.conversations.models import Conversation, Message
from rapport.domain.inboxes.actions import create_inbox, update_inbox
from rapport.domain.inboxes.models import Inbox
from rapport.domain.inboxes.queries import inbox_config
from rapport.lib.crypto import hmac_sha256_hex
from rapport.services import Services
from tests.support.browser import chromium_browser
from tests.support.server import RapportServer, shop_page, website

IDENTITY_SECRET = "widget-identity-secret-0123456789abcdef"
SITE = "http://shop.example.test"


async def widget_inbox(
    services: Services, account: Account, *, name: str = "Website", **config: Any
) -> Inbox:
    values: dict[str, Any] = {"identity_secret": IDENTITY_SECRET, "jwt_key": IDENTITY_SECRET}
    values.update(config)
    async with services.session() as session:
        inbox = await create_inbox(
            session,
            account_id=account.id,
            name=name,
            channel="webchat",
            config=values,
            box=services.box,
        )
        await events.commit(session)
        return inbox


async def configure_widget(services: Services, inbox: Inbox, **changes: Any) -> None:
    """Change some of a widget inbox's settings, as an admin saving the form would."""
    async with services.session() as session:
        row = await session.get(Inbox, inbox.id)
        assert row is not None
        config = inbox_config(row, services.box)
        config.update(changes)
        await update_inbox(
            session,
            inbox=row,
            name=row.name,
            config=config,
            box=services.box,
            team_id=None,
            is_active=True,
        )
        await events.commit(session)


async def allow_origin(services: Services, inbox: Inbox, site: str) -> None:
    """Only the test's customer site may embed the widget (the origin is known once it runs)."""
    await configure_widget(services, inbox, allowed_origins=[site])


async def agent_reply(
    services: Services, conversation_id: int, agent: User, inbox: Inbox, text: str
) -> Message:
    """The agent answers in the widget conversation (as the inbox's composer does)."""
    async with services.session() as session:
        conversation = await session.get(Conversation, conversation_id)
        author = await session.get(User, agent.id)
        box = await session.get(Inbox, inbox.id)
        assert conversation is not None and author is not None and box is not None
        message = await actions.send_reply(
            session,
            conversation=conversation,
            author=author,
            reply=actions.Reply(content=text, inbox=box, policy=adapter_for("webchat").policy),
        )
        await events.commit(session)
        return message


def user_hash(value: str, secret: str = IDENTITY_SECRET) -> str:
    return hmac_sha256_hex(secret, value)


class Visitor:
    """A browser on the customer's site using the widget's public API."""

    def __init__(self, client: httpx.AsyncClient, inbox: Inbox, origin: str = SITE) -> None:
        self.client = client
        self.base = f"/widget/api/{inbox.public_token}"
        self.origin = origin
        self.token = ""

    def headers(self) -> dict[str, str]:
        headers = {"Origin": self.origin}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def start(self) -> dict[str, Any]:
        response = await self.client.post(
            f"{self.base}/session", json={"token": self.token or None}, headers=self.headers()
        )
        assert response.status_code == 200, response.text
        body = response.json()
        self.token = body["token"]
        return dict(body)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.post(self.base + path, headers=self.headers(), **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(self.base + path, headers=self.headers(), **kwargs)

    async def say(self, text: str, client_id: str) -> httpx.Response:
        return await self.post("/messages", json={"client_id": client_id, "content": text})

    async def messages(self) -> list[dict[str, Any]]:
        response = await self.get("/messages")
        assert response.status_code == 200, response.text
        return list(response.json()["messages"])


@asynccontextmanager
async def widget_on_site(
    db_url: str,
    tmp_path: Path,
    services: Services,
    inbox: Inbox,
    chromium: str,
    *,
    files: dict[str, tuple[str, bytes]] | None = None,
    extra: str = "",
    **context: Any,
) -> AsyncIterator[tuple[str, Page]]:
    """A running Rapport, the customer's shop page embedding `inbox` on another port (the only
    origin allowed), and a fresh browser page for a visitor: yields (site URL, page). The page
    has not loaded the site yet, so a test can still change the inbox's settings first. `extra`
    is markup the site puts before the widget's tag."""
    server = RapportServer(db_url, tmp_path)
    await asyncio.to_thread(server.start)
    try:
        with website(shop_page(server.url, inbox.public_token, extra=extra), files=files) as site:
            await allow_origin(services, inbox, site)
            async with chromium_browser(chromium) as browser:
                page = await (await browser.new_context(**context)).new_page()
                try:
                    yield site, page
                except Exception:
                    print(server.log.read_text()[-3000:])
                    raise
    finally:
        await asyncio.to_thread(server.stop)
