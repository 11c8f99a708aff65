"""Helpers for website widget tests: a widget inbox, and a visitor talking to the public API."""

from __future__ import annotations

from typing import Any

import httpx

from rapport.domain import events
from rapport.domain.accounts.models import Account
from rapport.domain.inboxes.actions import create_inbox
from rapport.domain.inboxes.models import Inbox
from rapport.lib.crypto import hmac_sha256_hex
from rapport.services import Services

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
