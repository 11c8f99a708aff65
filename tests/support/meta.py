"""Helpers for the Meta channels' tests: fixtures, inboxes, the fake Graph API on a real port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select, update

import rapport.channels
from rapport.channels.registry import adapter_for
from rapport.db.outbox import OutboxJob
from rapport.domain import events
from rapport.domain.accounts.models import Account
from rapport.domain.agents.models import User
from rapport.domain.conversations import actions
from rapport.domain.conversations.models import Attachment, Conversation, Message
from rapport.domain.inboxes.actions import create_inbox
from rapport.domain.inboxes.models import Inbox
from rapport.lib.clock import utcnow
from rapport.services import Services
from rapport.web.sandbox.providers.meta import FakeMeta
from rapport.workers.relay import Worker
from tests.support.live import serve

CHANNELS_DIR = Path(rapport.channels.__file__).parent
APP_SECRET = "meta-app-secret-0123456789"
ACCESS_TOKEN = "meta-access-token-0123456789"
VERIFY_TOKEN = "verify-token-0123"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
PAGE_ID = "1077303632349447"
IG_ID = "17841405309211844"


def fixture(channel: str, name: str) -> bytes:
    return (CHANNELS_DIR / channel / "fixtures" / f"{name}.json").read_bytes()


def fixture_names(channel: str) -> list[str]:
    return sorted(p.stem for p in (CHANNELS_DIR / channel / "fixtures").glob("*.json"))


@asynccontextmanager
async def fake_meta_server() -> AsyncIterator[FakeMeta]:
    """The fake Graph API on its own port; `fake.base_url` is its address."""
    fake = FakeMeta(app_secret=APP_SECRET, access_token=ACCESS_TOKEN)
    app = FastAPI()
    app.include_router(fake.router)
    async with serve(app) as url:
        fake.base_url = url
        try:
            yield fake
        finally:
            fake.release()


def whatsapp_config(api_base_url: str = "https://graph.facebook.com") -> dict[str, Any]:
    return {
        "phone_number_id": PHONE_NUMBER_ID,
        "business_account_id": WABA_ID,
        "access_token": ACCESS_TOKEN,
        "app_secret": APP_SECRET,
        "previous_app_secret": "",
        "verify_token": VERIFY_TOKEN,
        "api_base_url": api_base_url,
    }


def messaging_config(
    channel: str, api_base_url: str = "https://graph.facebook.com", app_id: str = ""
) -> dict[str, Any]:
    account = {"page_id": PAGE_ID} if channel == "messenger" else {"instagram_account_id": IG_ID}
    return {
        **account,
        "access_token": ACCESS_TOKEN,
        "app_secret": APP_SECRET,
        "previous_app_secret": "",
        "verify_token": VERIFY_TOKEN,
        "app_id": app_id,
        "api_base_url": api_base_url,
    }


async def make_inbox(
    services: Services, account: Account, channel: str, config: dict[str, Any], name: str = ""
) -> Inbox:
    async with services.session() as session:
        inbox = await create_inbox(
            session,
            account_id=account.id,
            name=name or channel.title(),
            channel=channel,
            config=config,
            box=services.box,
        )
        await events.commit(session)
        return inbox


async def make_jobs_due(services: Services) -> None:
    """Time travel for backoff: every waiting job becomes due now."""
    async with services.session() as session:
        await session.execute(
            update(OutboxJob).where(OutboxJob.dead_at.is_(None)).values(available_at=utcnow())
        )
        await events.commit(session)


async def run_jobs(services: Services, worker: Worker, *, due: bool = True) -> None:
    """Run every job, retries included (time travels over their backoff)."""
    for _ in range(20):
        if due:
            await make_jobs_due(services)
        if await worker.drain() == 0:
            return


async def messages_of(services: Services, inbox: Inbox) -> list[Message]:
    async with services.read_session() as session:
        rows = await session.scalars(
            select(Message).where(Message.inbox_id == inbox.id).order_by(Message.id)
        )
        return list(rows)


async def attachments_of(services: Services, message: Message) -> list[Attachment]:
    async with services.read_session() as session:
        rows = await session.scalars(select(Attachment).where(Attachment.message_id == message.id))
        return list(rows)


async def reply(
    services: Services,
    user: User,
    conversation_id: int,
    inbox: Inbox,
    text: str,
    *,
    template: dict[str, Any] | None = None,
) -> Message:
    """An agent's reply through the real action, as the reply box sends it."""
    async with services.session() as session:
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None
        message = await actions.send_reply(
            session,
            conversation=conversation,
            author=user,
            reply=actions.Reply(
                content=text,
                inbox=await session.merge(inbox),
                policy=adapter_for(inbox.channel).policy,
                template=template,
            ),
        )
        await events.commit(session)
        return message
