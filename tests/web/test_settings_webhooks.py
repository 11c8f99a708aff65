"""The webhooks settings page: create (secret shown once), the delivery log, retry by hand."""

import re

import pytest
from sqlalchemy import select

from rapport.domain.agents.models import Role
from rapport.domain.webhooks.models import WebhookSubscription
from tests.conftest import make_settings
from tests.support.factory import login
from tests.support.live import WebhookReceiver, serve


@pytest.fixture
def settings(db_url, tmp_path):
    return make_settings(db_url, tmp_path, webhook_max_attempts=1)


async def test_create_see_the_log_and_retry_a_failed_delivery(client, services, factory, worker):
    account = await factory.account()
    admin = await factory.user(account, role=Role.admin)
    inbox = await factory.api_inbox(account)
    csrf = await login(client, admin)
    receiver = WebhookReceiver(answers=[(500, {})])
    async with serve(receiver.app()) as base:
        refused = await client.post(
            "/settings/webhooks",
            data={"csrf_token": csrf, "url": f"{base}/hook", "description": "CRM"},
        )
        assert refused.status_code == 422 and "choose at least one event type" in refused.text
        created = await client.post(
            "/settings/webhooks",
            data={
                "csrf_token": csrf,
                "url": f"{base}/hook",
                "description": "CRM",
                "event_types": ["message.created", "conversation.created"],
            },
        )
        assert created.status_code == 200
        secret = re.search(r"whsec_[A-Za-z0-9_-]+", created.text).group(0)
        async with services.read_session() as session:
            subscription = await session.scalar(select(WebhookSubscription))
        page_url = f"/settings/webhooks/{subscription.id}"
        assert secret not in (await client.get(page_url)).text  # shown once only
        listing = await client.get("/settings/webhooks")
        assert f"{base}/hook" in listing.text and "CRM" in listing.text

        await factory.receive(account, inbox, text="hello")
        await worker.drain()
        page = await client.get(page_url)
        rows = re.findall(r'<tr data-delivery="[^"]+">.*?</tr>', page.text, re.S)
        assert len(rows) == 2
        failed = [r for r in rows if "status-failed" in r]
        assert len(failed) == 1 and "500" in failed[0] and "the receiver answered 500" in failed[0]
        assert " ms" in failed[0]
        retry = re.search(r'action="(/settings/webhooks/deliveries/\d+/retry)"', failed[0]).group(1)
        response = await client.post(retry, data={"csrf_token": csrf})
        assert response.status_code == 303
        await worker.drain()
        page = await client.get(page_url)
        assert "status-failed" not in page.text and page.text.count("status-succeeded") == 2
    assert len({c.headers["x-rapport-delivery"] for c in receiver.calls}) == 2
    assert len(receiver.calls) == 3

    rotated = await client.post(f"{page_url}/rotate", data={"csrf_token": csrf})
    new_secret = re.search(r"whsec_[A-Za-z0-9_-]+", rotated.text).group(0)
    assert new_secret != secret
    paused = await client.post(
        page_url,
        data={"csrf_token": csrf, "url": f"{base}/hook", "event_types": ["contact.created"]},
    )
    assert paused.status_code == 303
    async with services.read_session() as session:
        subscription = await session.scalar(select(WebhookSubscription))
    assert subscription.active is False and subscription.event_types == ["contact.created"]
    gone = await client.post(f"{page_url}/delete", data={"csrf_token": csrf})
    assert gone.status_code == 303
    assert (await client.get(page_url)).status_code == 404


async def test_agents_do_not_see_webhook_settings(client, factory):
    account = await factory.account()
    agent = await factory.user(account)
    await login(client, agent)
    assert (await client.get("/settings/webhooks")).status_code == 404
