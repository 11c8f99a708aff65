"""The fake providers the sandbox offers, one line each, and how the app runs them.

A fake provider module (web/sandbox/providers/<name>.py) exposes a class of the FakeProvider
shape (web/sandbox/common.py); adding it to FAKE_PROVIDERS is all the sandbox needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.channels.registry import adapter_for
from rapport.domain.inboxes.actions import create_inbox
from rapport.domain.inboxes.models import Inbox
from rapport.lib.crypto import SecretBox
from rapport.settings import Environment, Settings
from rapport.web.sandbox.common import Deliver, FakeProvider, SignedCall
from rapport.web.sandbox.providers.meta import FakeMeta
from rapport.web.sandbox.providers.telegram import FakeTelegram
from rapport.web.sandbox.providers.twilio import FakeTwilio

FAKE_PROVIDERS: tuple[type[FakeProvider], ...] = (
    FakeTwilio,
    FakeTelegram,
    FakeMeta,
)

SANDBOX_ENVIRONMENTS = (Environment.demo, Environment.development)
PROVIDER_PREFIX = "/sandbox/provider"  # outside CSRF: providers' APIs carry no session


def provider_base_url(public_url: str, name: str) -> str:
    return f"{public_url}{PROVIDER_PREFIX}/{name}"


def in_process(app: FastAPI) -> Deliver:
    """Hand a signed webhook to this very app, through its whole middleware stack.

    The call never touches the network (so it needs no outbound allowance), yet Rapport sees it
    exactly as the provider would send it: the URL, the headers, the raw body.
    """

    async def deliver(call: SignedCall) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
            return await call.deliver(client)

    return deliver


@dataclass
class Sandbox:
    providers: list[FakeProvider]
    deliver: Deliver

    def provider(self, name: str) -> FakeProvider | None:
        return next((p for p in self.providers if p.name == name), None)


async def _nowhere(call: SignedCall) -> None:
    return None


async def seed_sandbox_inboxes(
    session: AsyncSession, *, account_id: int, box: SecretBox, public_url: str
) -> list[Inbox]:
    """Inboxes connected to every fake provider, served by the app at public_url (the demo)."""
    created = []
    for cls in FAKE_PROVIDERS:
        fake = cls()
        fake.attach(provider_base_url(public_url, fake.name), _nowhere)
        for spec in fake.sandbox_inboxes():
            config = adapter_for(spec.channel).validate_config(spec.config)
            inbox = await create_inbox(
                session,
                account_id=account_id,
                name=spec.name,
                channel=spec.channel,
                config=config,
                box=box,
            )
            created.append(inbox)
    return created


def install_sandbox(app: FastAPI, settings: Settings) -> Sandbox | None:
    """Serve the fake providers on this app (demo and development only)."""
    if settings.env not in SANDBOX_ENVIRONMENTS:
        return None
    deliver = in_process(app)
    providers: list[FakeProvider] = [cls() for cls in FAKE_PROVIDERS]
    for provider in providers:
        provider.attach(provider_base_url(settings.public_url, provider.name), deliver)
        app.include_router(provider.router, prefix=f"{PROVIDER_PREFIX}/{provider.name}")
    return Sandbox(providers, deliver)
