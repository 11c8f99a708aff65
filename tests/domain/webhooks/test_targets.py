"""The fan-out reads an account's subscriptions only when this process cannot know them, and
a subscription changed anywhere (another process included) counts from the next commit."""

import pytest
from sqlalchemy import func, select

from rapport.domain import events
from rapport.domain.agents.models import Role
from rapport.domain.webhooks import targets
from rapport.domain.webhooks.actions import create_subscription, fan_out, update_subscription
from rapport.domain.webhooks.models import WebhookDelivery, WebhookSubscription
from rapport.services import build_services
from tests.support.statements import sql_sent


@pytest.fixture
async def other(settings):
    """Another process on the same database (its own engine, pool and memory)."""
    running = build_services(settings, with_hub=False)
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def setup(factory):
    account = await factory.account()
    admin = await factory.user(account, role=Role.admin)
    inbox = await factory.api_inbox(account)
    return account, admin, inbox


async def _subscribe(services, admin, **changes):
    async with services.session() as session:
        subscription, _secret = await create_subscription(
            session,
            actor=admin,
            url="https://receiver.example/hook",
            event_types=["message.created"],
            box=services.box,
            **changes,
        )
        await events.commit(session)
        return subscription.id


async def _set_active(services, admin, subscription_id, active):
    async with services.session() as session:
        subscription = await session.get(WebhookSubscription, subscription_id)
        await update_subscription(session, subscription=subscription, actor=admin, active=active)
        await events.commit(session)


async def _deliveries(services):
    async with services.read_session() as session:
        return await session.scalar(select(func.count()).select_from(WebhookDelivery))


async def test_commits_after_this_process_own_read_nothing(services, factory, setup):
    account, _admin, inbox = setup
    await factory.receive(account, inbox)  # the account's subscriptions are now known here
    with sql_sent(services) as sent:
        for n in range(3):
            await factory.receive(account, inbox, text=f"#{n}")
    assert not [s for s in sent if "FROM webhook_subscriptions" in s]


async def test_a_subscription_made_in_another_process_counts_from_the_next_commit(
    services, other, factory, setup
):
    account, admin, inbox = setup
    await factory.receive(account, inbox)
    assert await _deliveries(services) == 0
    subscription_id = await _subscribe(other, admin)  # the web process, say
    await factory.receive(account, inbox)  # the worker, which knew "no subscriptions"
    assert await _deliveries(services) == 1
    await _set_active(other, admin, subscription_id, False)
    await factory.receive(account, inbox)
    assert await _deliveries(services) == 1
    await _set_active(other, admin, subscription_id, True)
    await factory.receive(account, inbox)
    assert await _deliveries(services) == 2


async def test_a_change_in_this_process_counts_from_the_next_commit(services, factory, setup):
    account, admin, inbox = setup
    await factory.receive(account, inbox)
    subscription_id = await _subscribe(services, admin)
    await factory.receive(account, inbox)
    assert await _deliveries(services) == 1
    await _set_active(services, admin, subscription_id, False)
    await factory.receive(account, inbox)
    assert await _deliveries(services) == 1


async def test_a_fan_out_rolled_back_is_not_remembered(services, other, factory, setup):
    account, admin, inbox = setup
    await factory.receive(account, inbox)
    # A transaction numbers its events and fans them out ("no subscriptions"), then rolls
    # back: its numbers go back to the counter.
    async with services.session() as session:
        events.record(session, account_id=account.id, event=events.ContactCreated(contact_id=1))
        published = await events._write_events(session, session.info.pop(events.PENDING_KEY))
        await fan_out(session, published)
        await events.rollback(session)
    # Another process commits under those very numbers, creating a subscription...
    await _subscribe(other, admin)
    # ...so the next commit here must not take the rolled-back numbers as known.
    await factory.receive(account, inbox)
    assert await _deliveries(services) == 1


async def test_a_change_made_behind_the_applications_back_counts_once_memory_expires(
    services, factory, setup, monkeypatch
):
    account, admin, inbox = setup
    await factory.receive(account, inbox)
    async with services.db.sessions() as session:  # SQL by hand: no event recorded
        session.add(
            WebhookSubscription(
                account_id=account.id,
                url="https://receiver.example/hook",
                secret_encrypted=services.box.encrypt_json({"secret": "whsec_x"}),
                event_types=["message.created"],
                created_by_user_id=admin.id,
            )
        )
        await session.commit()
    monkeypatch.setattr(targets, "MAX_AGE_SECONDS", 0.0)
    await factory.receive(account, inbox)
    assert await _deliveries(services) == 1
