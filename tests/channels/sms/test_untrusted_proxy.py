"""Forwarded headers from anyone but a trusted proxy cannot change the URL that is checked."""

import pytest
from sqlalchemy import func, select

from rapport.domain.inboxes.models import InboundEvent
from tests.channels.sms.test_proxy import inbox_for, sms


@pytest.fixture
def backend():
    return "sqlite"  # the check happens before any row is written: one database is enough


async def test_forwarded_headers_from_an_untrusted_client_are_ignored(client, services, factory):
    inbox = await inbox_for(services, factory)
    call = sms(f"https://rapport.example.com/hooks/sms/{inbox.id}")
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "rapport.example.com"}
    response = await client.post(
        f"/hooks/sms/{inbox.id}", content=call.body, headers={**call.headers, **forwarded}
    )
    assert response.status_code == 403
    async with services.read_session() as session:
        assert await session.scalar(select(func.count()).select_from(InboundEvent)) == 0
