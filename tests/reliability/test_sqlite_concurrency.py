"""SQLite under concurrent writers: the embedded default keeps every write and shows no error.

One `rapport serve --with-worker` on SQLite (the way a small team runs Rapport) takes a burst of
webhooks over many connections while agents post replies and the worker stores messages and
records sends, all writing at once. No "database is locked" may reach anyone (no 5xx, nothing
in the log) and nothing may be lost. db/engine.py explains the settings that make it hold.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select

from rapport.domain.conversations.models import DeliveryStatus, Direction, Message
from rapport.services import build_services
from rapport.web.sandbox.common import SignedCall
from tests.conftest import make_settings
from tests.support.factory import Factory, login, signed_api_call
from tests.support.integration import FakeIntegration
from tests.support.live import eventually, free_port, serve
from tests.support.processes import RapportProcess, running, settings_env, wait_healthy
from tests.support.senders import deliver_until_acked

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

WEBHOOKS = 400
CONNECTIONS = 16
CUSTOMERS = 10
REPLIES = 80
AGENTS_AT_ONCE = 8


@pytest.fixture
def backend():
    return "sqlite"


async def test_concurrent_webhooks_and_replies_on_sqlite_lose_nothing(db_url, tmp_path):
    settings = make_settings(db_url, tmp_path)
    services = build_services(settings, with_hub=False)
    factory = Factory(services)
    integration = FakeIntegration()
    async with serve(integration.app()) as fake_base:
        account = await factory.account()
        inbox = await factory.api_inbox(account, outbound_url=f"{fake_base}/replies")
        user = await factory.user(account)
        conversations = [
            (await factory.receive(account, inbox, external_id=f"customer-{n}")).conversation.id
            for n in range(CUSTOMERS)
        ]
        await services.stop()

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        calls = {}
        for n in range(WEBHOOKS):
            raw, headers = signed_api_call(
                {"id": f"m-{n}", "contact": {"id": f"customer-{n % 20}"}, "content": f"hi {n}"}
            )
            calls[f"m-{n}"] = SignedCall(f"{base}/hooks/api/{inbox.id}", raw, headers)

        env = settings_env(settings, worker_concurrency="8")
        web = RapportProcess(
            ["serve", "--with-worker", "--port", str(port)], env, tmp_path / "web.log"
        )
        with running(web):
            web.start()
            await wait_healthy(base)

            async def agents_reply() -> list[int]:
                async with httpx.AsyncClient(base_url=base, timeout=30) as agent:
                    csrf = await login(agent, user)
                    gate = asyncio.Semaphore(AGENTS_AT_ONCE)

                    async def one(n: int) -> int:
                        async with gate:
                            response = await agent.post(
                                f"/conversations/{conversations[n % CUSTOMERS]}/messages",
                                data={"content": f"reply {n}", "inbox_id": str(inbox.id)},
                                headers={"X-CSRF-Token": csrf},
                            )
                            return response.status_code

                    return await asyncio.gather(*(one(n) for n in range(REPLIES)))

            sending, replies = await asyncio.gather(
                deliver_until_acked(calls, connections=CONNECTIONS, within=120), agents_reply()
            )

            # Nobody saw an error: every webhook was acknowledged the first time, every reply
            # was accepted.
            assert dict(sending.failures) == {}
            assert sending.attempts == WEBHOOKS
            assert replies == [200] * REPLIES

            checker = build_services(settings, with_hub=False)

            async def everything_done():
                async with checker.read_session() as session:
                    rows = (
                        await session.execute(
                            select(Message.direction, Message.status, Message.content).where(
                                Message.inbox_id == inbox.id
                            )
                        )
                    ).all()
                incoming = [r.content for r in rows if r.direction == Direction.incoming]
                sent = [r.content for r in rows if r.status == DeliveryStatus.sent]
                if len(incoming) >= WEBHOOKS + CUSTOMERS and len(sent) >= REPLIES:
                    return incoming, sent
                return None

            incoming, sent = await eventually(everything_done, within=90)
            await checker.stop()

    hooks = sorted(c for c in incoming if c.startswith("hi "))
    assert hooks == sorted(f"hi {n}" for n in range(WEBHOOKS)), "a message was lost or doubled"
    assert sorted(sent) == sorted(f"reply {n}" for n in range(REPLIES))
    assert sorted(integration.accepted.values()) == [1] * REPLIES
    log = (tmp_path / "web.log").read_text()
    assert "database is locked" not in log
    assert "Exception in ASGI application" not in log
