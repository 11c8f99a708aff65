"""The API channel end to end: signed webhook in, worker, message; agent reply out, signed."""

import json

import pytest
from sqlalchemy import func, select

from rapport.channels.api import ApiChannel
from rapport.db.outbox import OutboxJob
from rapport.domain import events
from rapport.domain.agents.models import User
from rapport.domain.conversations import actions
from rapport.domain.conversations.models import Attachment, Conversation, DeliveryStatus, Message
from rapport.domain.events import Event
from rapport.domain.inboxes.actions import reprocess_inbound
from rapport.domain.inboxes.models import InboundEvent
from rapport.lib import signatures
from tests.support.factory import signed_api_call
from tests.support.live import WebhookReceiver, serve

BODY = {"id": "m-1", "contact": {"id": "user-42", "name": "Ana"}, "content": "Hello!"}


async def _count(services, model, *where):
    async with services.read_session() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def test_a_signed_message_is_acknowledged_then_processed_once(
    client, services, factory, worker
):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    body, headers = signed_api_call(BODY)
    for _ in range(3):  # providers redeliver
        response = await client.post(f"/hooks/api/{inbox.id}", content=body, headers=headers)
        assert response.status_code == 200
    assert await _count(services, InboundEvent) == 1
    assert await _count(services, Message) == 0  # nothing but the raw payload before the worker
    await worker.drain()
    async with services.read_session() as session:
        message = await session.scalar(select(Message))
        assert message.content == "Hello!" and message.provider_id == "m-1"
    assert await _count(services, OutboxJob) == 0


@pytest.mark.parametrize(
    "mangle",
    [
        lambda h: {**h, signatures.SIGNATURE_HEADER: "sha256=" + "0" * 64},
        lambda h: {k: v for k, v in h.items() if k != signatures.SIGNATURE_HEADER},
        lambda h: {**h, signatures.SIGNATURE_HEADER: ""},
        lambda h: {**h, signatures.TIMESTAMP_HEADER: "1000000"},
    ],
    ids=["wrong", "missing", "blank", "stale"],
)
async def test_unsigned_calls_change_nothing(client, services, factory, mangle):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    body, headers = signed_api_call(BODY)
    response = await client.post(f"/hooks/api/{inbox.id}", content=body, headers=mangle(headers))
    assert response.status_code == 401
    assert await _count(services, InboundEvent) == 0
    assert await _count(services, OutboxJob) == 0
    assert await _count(services, Event) == 0


async def test_another_tenants_secret_does_not_open_this_inbox(client, services, factory):
    mine, theirs = await factory.account("Mine"), await factory.account("Theirs")
    my_inbox = await factory.api_inbox(mine, secret="m" * 32)
    await factory.api_inbox(theirs, secret="t" * 32)
    body, headers = signed_api_call(BODY, secret="t" * 32)
    response = await client.post(f"/hooks/api/{my_inbox.id}", content=body, headers=headers)
    assert response.status_code == 401
    assert await _count(services, InboundEvent) == 0


async def test_unknown_inbox_or_channel_is_404(client, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    body, headers = signed_api_call(BODY)
    assert (
        await client.post("/hooks/api/999999", content=body, headers=headers)
    ).status_code == 404
    wrong = await client.post(f"/hooks/nope/{inbox.id}", content=body, headers=headers)
    assert wrong.status_code == 404


async def test_a_verified_call_without_an_id_is_refused_with_the_reason(client, services, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    body, headers = signed_api_call({"contact": {"id": "x"}, "content": "hi"})
    response = await client.post(f"/hooks/api/{inbox.id}", content=body, headers=headers)
    assert response.status_code == 422 and '"id"' in response.text
    assert await _count(services, InboundEvent) == 0


async def test_a_payload_that_cannot_be_parsed_is_kept_flagged_and_can_be_reprocessed(
    client, services, factory, worker
):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    body, headers = signed_api_call({"id": "m-9", "contact": {"id": "u"}})  # no content
    assert (
        await client.post(f"/hooks/api/{inbox.id}", content=body, headers=headers)
    ).status_code == 200
    await worker.drain()
    async with services.read_session() as session:
        stored = await session.scalar(select(InboundEvent))
        assert stored.status == "failed" and "content" in stored.error
        assert await session.scalar(select(Event.type)) == "inbound.failed"
    # After a fix, an admin processes it again: it is queued once more, nothing was lost.
    async with services.session() as session:
        await reprocess_inbound(session, account_id=account.id, inbound_id=stored.id)
        await events.commit(session)
    assert await _count(services, OutboxJob) == 1


async def test_attachments_are_fetched_after_verification_and_stored(
    client, services, factory, worker
):
    receiver = WebhookReceiver()
    async with serve(receiver.app()) as base:
        account = await factory.account()
        inbox = await factory.api_inbox(account)
        body, headers = signed_api_call(
            {
                "id": "m-2",
                "contact": {"id": "u1"},
                "attachments": [
                    {
                        "url": f"{base}/files/r.pdf",
                        "filename": "../../r\u200b.pdf",
                        "content_type": "application/pdf",
                    }
                ],
            }
        )
        await client.post(f"/hooks/api/{inbox.id}", content=body, headers=headers)
        await worker.drain()
    async with services.read_session() as session:
        attachment = await session.scalar(select(Attachment))
    assert attachment.filename == "r.pdf"  # path and zero-width characters removed
    assert await services.files.read(attachment.storage_key) == b"%PDF-1.4 fake receipt"


async def _reply(services, factory, outbound_url, text="On its way"):
    account = await factory.account()
    inbox = await factory.api_inbox(account, outbound_url=outbound_url)
    agent = await factory.user(account)
    received = await factory.receive(account, inbox, external_id="user-42")
    async with services.session() as session:
        conversation = await session.get(Conversation, received.conversation.id)
        message = await actions.send_reply(
            session,
            conversation=conversation,
            author=agent,
            reply=actions.Reply(content=text, inbox=inbox, policy=ApiChannel.policy),
        )
        await events.commit(session)
    return message


async def test_a_reply_is_posted_signed_and_marked_sent(services, factory, worker):
    receiver = WebhookReceiver()
    async with serve(receiver.app()) as base:
        message = await _reply(services, factory, f"{base}/hook")
        await worker.drain()
    [call] = receiver.calls
    signatures.verify(
        ["api-inbox-secret-0123456789abcdef"],
        call.body,
        timestamp=call.headers["x-rapport-timestamp"],
        signature=call.headers["x-rapport-signature"],
    )
    assert json.loads(call.body)["content"] == "On its way"
    assert json.loads(call.body)["contact"] == {"id": "user-42"}
    async with services.read_session() as session:
        sent = await session.get(Message, message.id)
    assert sent.status == DeliveryStatus.sent and sent.provider_id == "ext-1"


async def test_a_429_then_success_sends_once_with_the_same_key(services, factory, worker):
    receiver = WebhookReceiver(answers=[(429, {"Retry-After": "0"})])
    async with serve(receiver.app()) as base:
        message = await _reply(services, factory, f"{base}/hook")
        await worker.drain()
        async with services.session() as session:  # the backoff elapses
            job = await session.scalar(select(OutboxJob))
            job.available_at = job.created_at
            await events.commit(session)
        await worker.drain()
    assert [c.headers["x-rapport-delivery"] for c in receiver.calls] == [
        f"rapport-msg-{message.id}"
    ] * 2
    async with services.read_session() as session:
        assert (await session.get(Message, message.id)).status == DeliveryStatus.sent


async def test_a_refused_send_becomes_a_dead_letter_the_agent_can_retry(services, factory, worker):
    receiver = WebhookReceiver(answers=[(400, {})])
    async with serve(receiver.app()) as base:
        message = await _reply(services, factory, f"{base}/hook")
        await worker.drain()
        async with services.read_session() as session:
            failed = await session.get(Message, message.id)
            assert failed.status == DeliveryStatus.failed and "400" in failed.error
            agent = await session.get(User, failed.sender_user_id)
        async with services.session() as session:
            await actions.retry_delivery(
                session, message=await session.get(Message, message.id), actor=agent
            )
            await events.commit(session)
        await worker.drain()
    async with services.read_session() as session:
        assert (await session.get(Message, message.id)).status == DeliveryStatus.sent


async def _set_secret(services, inbox_id, secret):
    """Change the inbox's secret through the domain action, as the settings page does."""
    from rapport.domain.inboxes.actions import update_inbox
    from rapport.domain.inboxes.models import Inbox

    async with services.session() as session:
        row = await session.get(Inbox, inbox_id)
        await update_inbox(
            session,
            inbox=row,
            name=row.name,
            config={"secret": secret, "previous_secret": ""},
            box=services.box,
            team_id=None,
            is_active=True,
        )
        await events.commit(session)


async def test_a_rotated_secret_takes_effect_on_the_next_call(client, services, factory):
    """The hook keeps decrypted configs in memory: a changed inbox must never use a stale one."""
    account = await factory.account()
    inbox = await factory.api_inbox(account, secret="old-secret-0123456789abcdef")
    body, headers = signed_api_call(BODY, secret="old-secret-0123456789abcdef")
    response = await client.post(f"/hooks/api/{inbox.id}", content=body, headers=headers)
    assert response.status_code == 200
    await _set_secret(services, inbox.id, "new-secret-0123456789abcdef")
    second = {**BODY, "id": "m-2"}
    body, headers = signed_api_call(second, secret="old-secret-0123456789abcdef")
    response = await client.post(f"/hooks/api/{inbox.id}", content=body, headers=headers)
    assert response.status_code in (401, 403)
    body, headers = signed_api_call(second, secret="new-secret-0123456789abcdef")
    response = await client.post(f"/hooks/api/{inbox.id}", content=body, headers=headers)
    assert response.status_code == 200
    assert await _count(services, InboundEvent) == 2


async def test_a_remembered_inbox_costs_the_call_no_lookup(client, services, factory):
    from tests.support.statements import sql_sent

    account = await factory.account()
    inbox = await factory.api_inbox(account)
    body, headers = signed_api_call(BODY)
    assert (await client.post(f"/hooks/api/{inbox.id}", content=body, headers=headers)).is_success
    body, headers = signed_api_call({**BODY, "id": "m-2"})
    with sql_sent(services) as sent:
        response = await client.post(f"/hooks/api/{inbox.id}", content=body, headers=headers)
    assert response.status_code == 200
    assert not [s for s in sent if s.startswith("SELECT inboxes")], sent
    assert await _count(services, InboundEvent) == 2


async def test_a_redelivery_checks_the_remembered_inbox_without_loading_it(
    client, services, factory, backend
):
    from tests.support.statements import sql_sent

    account = await factory.account()
    inbox = await factory.api_inbox(account)
    body, headers = signed_api_call(BODY)
    assert (await client.post(f"/hooks/api/{inbox.id}", content=body, headers=headers)).is_success
    with sql_sent(services) as sent:
        response = await client.post(f"/hooks/api/{inbox.id}", content=body, headers=headers)
    assert response.status_code == 200
    # Not stored (a redelivery), and the inbox is not loaded: whether it is still as read is
    # part of the insert's own statement on PostgreSQL, one small statement after it on SQLite.
    reads = [s for s in sent if s.startswith("SELECT inboxes")]
    if backend == "postgres":
        assert len(sent) == 1 and not reads, sent
    else:
        assert len(reads) == 1 and reads[0].startswith("SELECT inboxes.id FROM inboxes WHERE"), sent
    assert await _count(services, InboundEvent) == 1


async def test_an_inbox_deactivated_elsewhere_stops_taking_calls_at_once(client, services, factory):
    """Another process changed the row: this one's remembered copy must not be trusted."""
    from sqlalchemy import update

    from rapport.domain.inboxes.models import Inbox

    account = await factory.account()
    inbox = await factory.api_inbox(account)
    body, headers = signed_api_call(BODY)
    assert (await client.post(f"/hooks/api/{inbox.id}", content=body, headers=headers)).is_success
    async with services.session() as session:  # behind this process's back
        await session.execute(update(Inbox).where(Inbox.id == inbox.id).values(is_active=False))
        await session.commit()
    body, headers = signed_api_call({**BODY, "id": "m-2"})
    response = await client.post(f"/hooks/api/{inbox.id}", content=body, headers=headers)
    assert response.status_code == 404
    assert await _count(services, InboundEvent) == 1


async def test_a_copy_of_the_inbox_older_than_its_settings_stores_nothing(services, factory):
    from rapport.domain.inboxes.actions import store_inbound

    account = await factory.account()
    inbox = await factory.api_inbox(account)  # the copy, as a process remembers it
    await _set_secret(services, inbox.id, "new-secret-0123456789abcdef")
    for if_unchanged, stored in ((True, False), (False, True)):
        async with services.session() as session:
            result = await store_inbound(
                session,
                inbox=inbox,
                dedupe_key=f"k-{if_unchanged}",
                body=b"{}",
                content_type="application/json",
                if_unchanged=if_unchanged,
            )
            await events.commit(session)
        assert result is stored
    assert await _count(services, InboundEvent) == 1
    assert await _count(services, OutboxJob) == 1
