"""Outbound webhooks end to end: event -> delivery row + outbox job -> signed POST -> log."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from rapport.db.outbox import OutboxJob
from rapport.domain import events
from rapport.domain.agents.models import Role
from rapport.domain.webhooks import actions
from rapport.domain.webhooks.models import DeliveryStatus, WebhookDelivery
from rapport.lib import signatures
from rapport.lib.clock import utcnow
from rapport.services import build_services
from rapport.workers.relay import Worker
from tests.conftest import make_settings
from tests.support.api import api_headers
from tests.support.live import WebhookReceiver, eventually, serve

BASE_DELAY = 0.3


@pytest.fixture
def settings(db_url, tmp_path):
    return make_settings(
        db_url, tmp_path, webhook_retry_base_seconds=BASE_DELAY, webhook_max_attempts=3
    )


async def _subscribe(client, headers, url, types=("message.created",)):
    response = await client.post(
        "/api/v1/webhooks", headers=headers, json={"url": url, "event_types": list(types)}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _deliveries(services):
    async with services.read_session() as session:
        return list(await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


async def _jobs(services):
    async with services.read_session() as session:
        return await session.scalar(
            select(func.count()).select_from(OutboxJob).where(OutboxJob.kind == "webhook.deliver")
        )


@pytest.fixture
async def setup(client, services, factory):
    account = await factory.account()
    admin = await factory.user(account, role=Role.admin)
    inbox = await factory.api_inbox(account)
    return account, inbox, await api_headers(services, admin)


async def test_a_matching_event_is_posted_signed_with_a_delivery_id(
    client, services, factory, worker, setup
):
    account, inbox, headers = setup
    receiver = WebhookReceiver()
    async with serve(receiver.app()) as base:
        subscription = await _subscribe(client, headers, f"{base}/hook")
        assert subscription["secret"].startswith("whsec_")
        await factory.receive(account, inbox, text="Where is my order?")
        await worker.drain()
    [call] = receiver.calls  # contact.created and conversation.created were not chosen
    signatures.verify(
        [subscription["secret"]],
        call.body,
        timestamp=call.headers["x-rapport-timestamp"],
        signature=call.headers["x-rapport-signature"],
    )
    body = json.loads(call.body)
    assert body["type"] == "message.created" == call.headers["x-rapport-event"]
    assert body["id"] == call.headers["x-rapport-delivery"]
    assert body["account_id"] == account.id and body["data"]["direction"] == "incoming"
    with pytest.raises(signatures.SignatureError):
        signatures.verify(
            ["whsec_someone-else"],
            call.body,
            timestamp=call.headers["x-rapport-timestamp"],
            signature=call.headers["x-rapport-signature"],
        )
    log = await client.get(f"/api/v1/webhooks/{subscription['id']}/deliveries", headers=headers)
    [entry] = log.json()
    assert entry["status"] == "succeeded" and entry["attempts"] == 1
    assert entry["response_code"] == 200 and entry["duration_ms"] is not None
    assert entry["delivery_id"] == body["id"]
    assert await _jobs(services) == 0


async def test_a_500_is_retried_with_backoff_under_the_same_delivery_id(
    client, services, factory, worker, setup
):
    account, inbox, headers = setup
    receiver = WebhookReceiver(answers=[(500, {})])
    async with serve(receiver.app()) as base:
        await _subscribe(client, headers, f"{base}/hook")
        await factory.receive(account, inbox)
        assert await worker.run_once() == 1  # one attempt only (drain could reach the retry)
        [delivery] = await _deliveries(services)
        assert delivery.status == "pending" and delivery.attempts == 1
        assert delivery.response_code == 500 and "500" in delivery.last_error
        # Backoff: the next attempt is scheduled at least the base delay after this one.
        wait = delivery.next_attempt_at - delivery.last_attempt_at
        assert wait >= timedelta(seconds=BASE_DELAY)
        async with services.read_session() as session:
            job = await session.scalar(select(OutboxJob).where(OutboxJob.kind == "webhook.deliver"))
        assert job.available_at >= delivery.last_attempt_at + timedelta(seconds=BASE_DELAY)

        async def delivered():
            await worker.run_once()
            [row] = await _deliveries(services)
            return row.status == "succeeded" and row

        row = await eventually(delivered)
    assert row.attempts == 2 and row.response_code == 200 and row.last_error is None
    first, second = receiver.calls
    assert first.headers["x-rapport-delivery"] == second.headers["x-rapport-delivery"]
    assert first.body == second.body
    assert await _jobs(services) == 0


async def test_it_gives_up_after_the_last_attempt_and_a_person_can_retry(
    client, services, factory, worker, setup
):
    account, inbox, headers = setup
    receiver = WebhookReceiver(answers=[(503, {})] * 3)
    async with serve(receiver.app()) as base:
        subscription = await _subscribe(client, headers, f"{base}/hook")
        await factory.receive(account, inbox)

        async def given_up():
            await worker.run_once()
            [row] = await _deliveries(services)
            return row.status == "failed" and row

        row = await eventually(given_up)
        assert row.attempts == 3 and row.response_code == 503
        assert len(receiver.calls) == 3 and await _jobs(services) == 0

        retried = await client.post(f"/api/v1/webhooks/deliveries/{row.id}/retry", headers=headers)
        assert retried.status_code == 200 and retried.json()["status"] == "pending"
        again = await client.post(f"/api/v1/webhooks/deliveries/{row.id}/retry", headers=headers)
        assert again.status_code == 409
        await worker.drain()
    [row] = await _deliveries(services)
    assert row.status == "succeeded" and row.attempts == 4
    assert len({c.headers["x-rapport-delivery"] for c in receiver.calls}) == 1
    log = await client.get(f"/api/v1/webhooks/{subscription['id']}/deliveries", headers=headers)
    assert log.json()[0]["status"] == "succeeded"


async def test_paused_and_deleted_subscriptions_stop_deliveries(
    client, services, factory, worker, setup
):
    account, inbox, headers = setup
    receiver = WebhookReceiver()
    async with serve(receiver.app()) as base:
        subscription = await _subscribe(client, headers, f"{base}/hook")
        url = f"/api/v1/webhooks/{subscription['id']}"
        await factory.receive(account, inbox)  # queued while active ...
        await client.patch(url, headers=headers, json={"active": False})  # ... paused before sent
        await worker.drain()
        [row] = await _deliveries(services)
        assert row.status == "failed" and "paused" in row.last_error
        await factory.receive(account, inbox)  # nothing is queued for a paused subscription
        assert len(await _deliveries(services)) == 1
        await client.patch(url, headers=headers, json={"active": True})
        await factory.receive(account, inbox)
        assert (await client.delete(url, headers=headers)).status_code == 204
        await worker.drain()
    assert receiver.calls == [] and await _deliveries(services) == []
    assert await _jobs(services) == 0


async def test_private_targets_are_refused_when_not_allowed(db_url, tmp_path, factory):
    strict = build_services(
        make_settings(db_url, tmp_path, http_allow_private=False), with_hub=False
    )
    await strict.start()
    try:
        account = await factory.account()
        admin = await factory.user(account, role=Role.admin)
        inbox = await factory.api_inbox(account)
        receiver = WebhookReceiver()
        async with serve(receiver.app()) as base:
            from rapport.domain.webhooks.actions import create_subscription

            async with strict.session() as session:
                await create_subscription(
                    session,
                    actor=admin,
                    url=f"{base}/hook",
                    event_types=["message.created"],
                    box=strict.box,
                )
                await events.commit(session)
            await factory.receive(account, inbox)
            await Worker(strict, worker_id="strict").drain()
        assert receiver.calls == []
        [row] = await _deliveries(strict)
        assert row.status == "failed" and row.attempts == 1
        assert "refused target" in row.last_error and "non-public" in row.last_error
    finally:
        await strict.stop()


async def test_old_finished_deliveries_are_pruned_at_most_hourly(
    client, services, factory, worker, setup, monkeypatch
):
    account, inbox, headers = setup
    receiver = WebhookReceiver()

    async def ids():
        return [row.id for row in await _deliveries(services)]

    async with serve(receiver.app()) as base:
        await _subscribe(client, headers, f"{base}/hook")
        await factory.receive(account, inbox)
        await factory.receive(account, inbox)
        await worker.drain()  # the first finishes prune (nothing is old yet)
        old, retrying = await ids()
        async with services.session() as session:  # age both past the retention period
            await session.execute(
                update(WebhookDelivery).values(created_at=utcnow() - timedelta(days=31))
            )
            # One is still being tried: pending deliveries are never pruned.
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == retrying)
                .values(status=DeliveryStatus.pending)
            )
            await events.commit(session)
        await factory.receive(account, inbox)
        await worker.drain()
        recent = await ids()
        assert old in recent  # pruned less than an hour ago: this finish deleted nothing
        monkeypatch.setattr(actions, "PRUNE_EVERY_SECONDS", 0.0)  # an hour later
        await factory.receive(account, inbox)
        await worker.drain()
    left = await ids()
    assert old not in left
    assert left == [retrying, recent[-1], left[-1]] and left[-1] > recent[-1]


async def test_a_subscription_hears_only_its_own_account(client, services, factory, worker, setup):
    account, inbox, headers = setup
    globex = await factory.account("Globex")
    globex_inbox = await factory.api_inbox(globex)
    receiver = WebhookReceiver()
    async with serve(receiver.app()) as base:
        await _subscribe(client, headers, f"{base}/hook", types=["message.created"])
        await factory.receive(globex, globex_inbox, text="Globex secret plans")
        await factory.receive(account, inbox, text="ours")
        await worker.drain()
    [call] = receiver.calls
    assert json.loads(call.body)["account_id"] == account.id
    assert b"Globex" not in call.body
