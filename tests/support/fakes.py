"""The sandbox's fake providers, run on a random loopback port for tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx

from rapport.web.sandbox.common import SignedCall
from rapport.web.sandbox.providers.telegram import FakeTelegram
from rapport.web.sandbox.providers.twilio import FakeTwilio
from tests.support.channels import provider_app
from tests.support.live import serve

TWILIO_SID = "AC1f2e3d4c5b6a79880716253443526170"
TWILIO_TOKEN = "primary-token-0123456789"
BUSINESS_NUMBER = "+14155550100"


def to_rapport(client: httpx.AsyncClient):
    """Deliver signed calls to Rapport through this client (the ASGI test client or a live one)."""

    async def deliver(call: SignedCall) -> httpx.Response:
        return await call.deliver(client)

    return deliver


@contextlib.asynccontextmanager
async def running_twilio(client: httpx.AsyncClient, **kwargs) -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio(accounts={TWILIO_SID: TWILIO_TOKEN}, deliver=to_rapport(client), **kwargs)
    async with serve(provider_app(fake.router)) as base:
        fake.base_url = base
        yield fake


def sms_config(fake: FakeTwilio, **overrides) -> dict:
    return {
        "account_sid": TWILIO_SID,
        "auth_token": TWILIO_TOKEN,
        "from_number": BUSINESS_NUMBER,
        "api_base_url": fake.base_url,
        **overrides,
    }


def voice_config(fake: FakeTwilio, **overrides) -> dict:
    return {
        "account_sid": TWILIO_SID,
        "auth_token": TWILIO_TOKEN,
        "phone_number": BUSINESS_NUMBER,
        "api_base_url": fake.base_url,
        **overrides,
    }


BOT_TOKEN = "123456789:AAE-test-bot-token_0123456789abcdef"
WEBHOOK_SECRET = "test-webhook-secret_0123456789"


@contextlib.asynccontextmanager
async def running_telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram(tokens=[BOT_TOKEN])
    async with serve(provider_app(fake.router)) as base:
        fake.base_url = base
        yield fake


def telegram_config(fake: FakeTelegram, **overrides) -> dict:
    return {
        "bot_token": BOT_TOKEN,
        "webhook_secret": WEBHOOK_SECRET,
        "api_base_url": fake.base_url,
        **overrides,
    }
