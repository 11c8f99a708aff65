"""Replies out over SMTP and answers back in: threading, chat then email, forgeries, bounces."""

from email.utils import make_msgid

import pytest
from sqlalchemy import func, select, update

from rapport.channels.email import EmailChannel
from rapport.db.outbox import OutboxJob
from rapport.domain import events
from rapport.domain.agents.models import User
from rapport.domain.contacts.models import Identity, IdentityKind, Verification
from rapport.domain.conversations import actions
from rapport.domain.conversations.actions import StoredFile
from rapport.domain.conversations.models import (
    Conversation,
    DeliveryStatus,
    Direction,
    Message,
)
from rapport.domain.inboxes.models import Inbox
from rapport.domain.ports import IdentityClaim
from rapport.lib.clock import utcnow
from tests.conftest import make_settings
from tests.support.factory import login
from tests.support.live import free_port
from tests.support.mail import (
    SUPPORT_ADDRESS,
    email_inbox,
    fixture,
    listening,
    send_mail,
    smtp_receiver,
)


@pytest.fixture
def settings(db_url, tmp_path):
    return make_settings(db_url, tmp_path, smtp_listen_port=free_port(), intake_refresh_seconds=0.2)


@pytest.fixture
async def receiver():
    async with smtp_receiver() as running:
        yield running


async def _reply(client, csrf, conversation_id, inbox_id, text):
    response = await client.post(
        f"/conversations/{conversation_id}/messages",
        data={"content": text, "private": "false", "inbox_id": inbox_id},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 200, response.text
    return response


def _customer_mail(*, sender, to, subject, body, in_reply_to=None, references=(), extra=""):
    lines = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        "Date: Mon, 17 Nov 2025 10:00:00 +0000",
        f"Message-ID: {make_msgid(domain='customer.example')}",
    ]
    if in_reply_to:
        lines.append(f"In-Reply-To: <{in_reply_to}>")
    if references:
        lines.append("References: " + " ".join(f"<{r}>" for r in references))
    if extra:
        lines.append(extra)
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "", body]
    return "\n".join(lines).encode()


async def _messages(services, conversation_id=None):
    async with services.read_session() as session:
        query = select(Message).order_by(Message.id)
        if conversation_id is not None:
            query = query.where(Message.conversation_id == conversation_id)
        return list(await session.scalars(query))


async def _deliver_in(settings, raw, recipient):
    await send_mail(
        settings.smtp_listen_port, raw, sender="mx@customer.example", recipients=[recipient]
    )


async def test_chat_then_email_ends_in_one_conversation(
    client, services, factory, worker, receiver, settings
):
    account = await factory.account()
    chat = await factory.api_inbox(account, name="Website")
    mail = await email_inbox(
        factory, account, from_name="Acme Support", signature=["Acme"], **receiver.config
    )
    agent = await factory.user(account, name="Bob Agent")
    # The customer chats first and leaves an email address: only a claim, typed by them.
    started = await factory.receive(
        account,
        chat,
        text="No agent online? Email me the invoice please.",
        claims=(
            IdentityClaim(IdentityKind.external, "visitor-7", Verification.verified),
            IdentityClaim(IdentityKind.email, "Carla@Customer.example", Verification.unverified),
        ),
    )
    conversation_id = started.conversation.id
    csrf = await login(client, agent)
    page = await client.get(f"/conversations/{conversation_id}")
    assert "carla@customer.example" in page.text  # the email route is offered, to that address
    await _reply(client, csrf, conversation_id, mail.id, "Here is your invoice.")
    await worker.drain()
    assert len(receiver.received) == 1
    envelope, first = receiver.received[0]
    assert envelope.mail_from == SUPPORT_ADDRESS and envelope.rcpt_tos == ["carla@customer.example"]
    assert str(first["From"]) == "Acme Support <support@support.example.com>"
    assert first["Subject"] == "Acme Support"
    assert first.get_content_type() == "multipart/alternative"
    reply_to = first["Reply-To"].addresses[0].addr_spec
    assert reply_to.startswith(f"support+{conversation_id}.")
    first_id = first["Message-ID"].strip("<>")
    outgoing = (await _messages(services, conversation_id))[-1]
    assert outgoing.provider_id == first_id and outgoing.status == DeliveryStatus.sent

    # The customer answers from their mail client: threaded by In-Reply-To.
    answer = _customer_mail(
        sender="Carla <carla@customer.example>",
        to=reply_to,
        subject="Re: Acme Support",
        body="Thanks, got it!\n\nOn Mon, Nov 17, 2025 Acme Support wrote:\n> Here is your invoice.",
        in_reply_to=first_id,
        references=[first_id],
    )
    async with listening(services, settings.smtp_listen_port):
        await _deliver_in(settings, answer, reply_to)
    await worker.drain()
    messages = await _messages(services)
    assert [m.conversation_id for m in messages] == [conversation_id] * 3
    assert messages[-1].content == "Thanks, got it!"
    async with services.read_session() as session:
        assert await session.scalar(select(func.count()).select_from(Conversation)) == 1
        conversation = await session.get(Conversation, conversation_id)
        assert conversation.channel == "email" and conversation.inbox_id == mail.id
        kinds = set(
            await session.scalars(
                select(Identity.kind).where(Identity.contact_id == conversation.contact_id)
            )
        )
    assert kinds == {"external", "email"}

    # The agent's next reply threads under the customer's mail in their client.
    await _reply(client, csrf, conversation_id, mail.id, "You're welcome.")
    await worker.drain()
    _envelope, second = receiver.received[1]
    answer_id = messages[-1].provider_id
    assert second["In-Reply-To"] == f"<{answer_id}>"
    assert second["References"] == f"<{first_id}> <{answer_id}>"
    assert second["Subject"] == "Re: Acme Support"


async def _email_conversation(services, factory, worker, receiver, settings):
    """A customer writes in by email and an agent replies; returns what the tests need."""
    account = await factory.account()
    inbox = await email_inbox(factory, account, **receiver.config)
    agent = await factory.user(account)
    async with listening(services, settings.smtp_listen_port):
        await _deliver_in(settings, fixture("plain_utf8.eml"), SUPPORT_ADDRESS)
    await worker.drain()
    conversation_id = (await _messages(services))[0].conversation_id
    return account, inbox, agent, conversation_id


async def test_a_forged_reply_never_joins_someone_elses_conversation(
    client, services, factory, worker, receiver, settings
):
    _account, inbox, agent, victim = await _email_conversation(
        services, factory, worker, receiver, settings
    )
    csrf = await login(client, agent)
    await _reply(client, csrf, victim, inbox.id, "We are on it, Ana.")
    await worker.drain()
    sent = receiver.received[0][1]
    ours = sent["Message-ID"].strip("<>")
    good_token = sent["Reply-To"].addresses[0].addr_spec.split("+")[1].split("@")[0]
    forged_token = f"{victim}.{'0' * 20}"
    forged = _customer_mail(
        sender="Mallory <mallory@attacker.example>",
        to=f"support+{forged_token}@support.example.com",
        subject="Re: My order #1042 has not arrived",
        body="Please send the refund to my account instead.",
        in_reply_to=ours,  # a Message-ID learnt from a forwarded copy
        references=["CAF1042-ana@mail.customer.example", ours],
    )
    # A colleague the customer forwarded our mail to answers through the signed address.
    colleague = _customer_mail(
        sender="Luis <luis@customer.example>",
        to=f"support+{good_token}@support.example.com",
        subject="Re: My order #1042 has not arrived",
        body="I am Ana's colleague: the lamp can go to reception.",
    )
    # The same forgery with Ana's own address as From, but no authentication at our MX.
    spoofed = _customer_mail(
        sender="Ana <ana.garcia@customer.example>",
        to=SUPPORT_ADDRESS,
        subject="Re: My order #1042 has not arrived",
        body="New bank details for my refund: ...",
        in_reply_to=ours,
    )
    async with listening(services, settings.smtp_listen_port):
        await _deliver_in(settings, forged, f"support+{forged_token}@support.example.com")
        await _deliver_in(settings, colleague, f"support+{good_token}@support.example.com")
        await _deliver_in(settings, spoofed, SUPPORT_ADDRESS)
    await worker.drain()
    by_content = {m.content: m for m in await _messages(services)}
    assert by_content["Please send the refund to my account instead."].conversation_id != victim
    assert by_content["New bank details for my refund: ..."].conversation_id != victim
    assert by_content["I am Ana's colleague: the lamp can go to reception."].conversation_id == (
        victim
    )
    assert all(
        m.direction == Direction.incoming
        for m in by_content.values()
        if m.content.startswith(("Please send", "I am Ana"))
    )


async def test_a_bounce_marks_the_reply_not_delivered_with_the_reason(
    client, services, factory, worker, receiver, settings
):
    _account, inbox, agent, conversation_id = await _email_conversation(
        services, factory, worker, receiver, settings
    )
    csrf = await login(client, agent)
    await _reply(client, csrf, conversation_id, inbox.id, "Your lamp ships today.")
    await worker.drain()
    ours = receiver.received[0][1]["Message-ID"].strip("<>")
    bounce = fixture("dsn_bounce.eml").replace(
        b"rapport-msg-7.0123456789@support.example.com", ours.encode()
    )
    async with listening(services, settings.smtp_listen_port):
        await _deliver_in(settings, bounce, SUPPORT_ADDRESS)
    await worker.drain()
    messages = await _messages(services, conversation_id)
    assert len(messages) == 2  # the bounce is a status, not a customer message
    assert messages[-1].status == DeliveryStatus.failed
    assert "User unknown" in messages[-1].error
    page = await client.get(f"/conversations/{conversation_id}")
    assert "Not delivered" in page.text and "Recipient address rejected" in page.text


async def test_an_auto_reply_is_kept_flagged_and_answers_nothing(
    client, services, factory, worker, receiver, settings
):
    _account, inbox, agent, conversation_id = await _email_conversation(
        services, factory, worker, receiver, settings
    )
    csrf = await login(client, agent)
    await _reply(client, csrf, conversation_id, inbox.id, "Could you confirm the address?")
    await worker.drain()
    ours = receiver.received[0][1]["Message-ID"].strip("<>")
    # Ana's own server answers for her (authenticated like her first mail was).
    vacation = (
        b"Authentication-Results: mx.support.example.com; dmarc=pass header.from=customer.example\n"
        + fixture("vacation_autoreply.eml")
        .replace(b"From: Tom Baker <tom@baker.example>", b"From: Ana <ana.garcia@customer.example>")
        .replace(b"rapport-msg-8.abcdef0123@support.example.com", ours.encode())
    )
    async with listening(services, settings.smtp_listen_port):
        await _deliver_in(settings, vacation, SUPPORT_ADDRESS)
    await worker.drain()
    messages = await _messages(services, conversation_id)
    assert messages[-1].payload["auto_reply"] is True
    assert len(receiver.received) == 1  # nothing went out in answer
    page = await client.get(f"/conversations/{conversation_id}")
    assert "Automatic reply" in page.text


async def test_our_own_mail_coming_back_is_not_a_customer_message(
    client, services, factory, worker, receiver, settings
):
    _account, inbox, agent, conversation_id = await _email_conversation(
        services, factory, worker, receiver, settings
    )
    csrf = await login(client, agent)
    await _reply(client, csrf, conversation_id, inbox.id, "Copy me")
    await worker.drain()
    looped = bytes(receiver.received[0][1])
    async with listening(services, settings.smtp_listen_port):
        await _deliver_in(settings, looped, SUPPORT_ADDRESS)
    await worker.drain()
    assert [m.direction for m in await _messages(services)] == ["incoming", "outgoing"]


async def _due_now(services):
    async with services.session() as session:
        await session.execute(update(OutboxJob).values(available_at=utcnow()))
        await session.commit()


async def test_transient_smtp_errors_retry_and_permanent_ones_show(
    client, services, factory, worker, receiver, settings
):
    _account, inbox, agent, conversation_id = await _email_conversation(
        services, factory, worker, receiver, settings
    )
    csrf = await login(client, agent)
    receiver.answers = ["451 4.3.0 Mailbox busy, try later"]
    await _reply(client, csrf, conversation_id, inbox.id, "First try fails")
    await worker.drain()
    message = (await _messages(services, conversation_id))[-1]
    assert message.status == DeliveryStatus.sending and "451" in message.error
    await _due_now(services)
    await worker.drain()
    message = (await _messages(services, conversation_id))[-1]
    assert message.status == DeliveryStatus.sent and len(receiver.received) == 1

    receiver.answers = ["550 5.7.1 Message rejected as spam"]
    await _reply(client, csrf, conversation_id, inbox.id, "This one is refused")
    await worker.drain()
    message = (await _messages(services, conversation_id))[-1]
    assert message.status == DeliveryStatus.failed
    assert message.error == "the mail server answered 550 5.7.1 Message rejected as spam"


async def test_a_reply_carries_its_attachment(services, factory, worker, receiver, settings):
    _account, inbox, agent, conversation_id = await _email_conversation(
        services, factory, worker, receiver, settings
    )
    key = await services.files.save(b"%PDF-1.4 invoice", suffix=".pdf")
    async with services.session() as session:
        await actions.send_reply(
            session,
            conversation=await session.get(Conversation, conversation_id),
            author=await session.get(User, agent.id),
            reply=actions.Reply(
                content="Your invoice is attached.",
                inbox=await session.get(Inbox, inbox.id),
                policy=EmailChannel.policy,
                files=[StoredFile("invoice.pdf", "application/pdf", 16, key)],
            ),
        )
        await events.commit(session)
    await worker.drain()
    sent = receiver.received[0][1]
    assert sent.get_content_type() == "multipart/mixed"
    assert sent.get_body(("plain",)).get_content().startswith("Your invoice is attached.")
    [attachment] = list(sent.iter_attachments())
    assert attachment.get_filename() == "invoice.pdf"
    assert attachment.get_content() == b"%PDF-1.4 invoice"
