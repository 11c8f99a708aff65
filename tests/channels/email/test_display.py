"""How an email shows in the conversation: the new text, the full mail one click away, safely."""

from sqlalchemy import select

from rapport.channels.email.inbound import dedupe_key
from rapport.domain import events
from rapport.domain.conversations.models import Attachment, Message
from rapport.domain.inboxes.actions import store_inbound
from rapport.domain.inboxes.models import InboundEvent
from tests.support.factory import login
from tests.support.mail import email_inbox, fixture


async def _receive(services, worker, inbox, *names):
    async with services.session() as session:
        for name in names:
            raw = fixture(name)
            await store_inbound(
                session,
                inbox=inbox,
                dedupe_key=dedupe_key(raw),
                body=raw,
                content_type="message/rfc822",
            )
        await events.commit(session)
    await worker.drain()
    async with services.read_session() as session:
        return list(await session.scalars(select(Message).order_by(Message.id)))


async def test_quoted_history_is_one_click_away(client, services, factory, worker):
    account = await factory.account()
    inbox = await email_inbox(factory, account)
    agent = await factory.user(account)
    [message] = await _receive(services, worker, inbox, "outlook_quoting.eml")
    await login(client, agent)
    page = await client.get(f"/conversations/{message.conversation_id}")
    visible, _, hidden = page.text.partition('<details class="full-email">')
    assert "Thanks, the tracking number works now." in visible
    assert "your order 123 shipped today" not in visible
    assert "Show the full email" in hidden and "your order 123 shipped today" in hidden


async def test_inline_images_point_at_the_stored_file(client, services, factory, worker):
    account = await factory.account()
    inbox = await email_inbox(factory, account)
    agent = await factory.user(account)
    [message] = await _receive(services, worker, inbox, "inline_cid_image.eml")
    async with services.read_session() as session:
        photo = await session.scalar(
            select(Attachment).where(
                Attachment.message_id == message.id, Attachment.filename == "photo.png"
            )
        )
    await login(client, agent)
    page = await client.get(f"/conversations/{message.conversation_id}")
    assert f'<img src="/attachments/{photo.id}" alt="photo">' in page.text
    assert "cid:" not in page.text
    image = await client.get(f"/attachments/{photo.id}")
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")


async def test_hostile_html_and_subjects_render_inert(client, services, factory, worker):
    account = await factory.account()
    inbox = await email_inbox(factory, account)
    agent = await factory.user(account)
    [message] = await _receive(services, worker, inbox, "html_only_script.eml")
    await login(client, agent)
    page = await client.get(f"/conversations/{message.conversation_id}")
    body = page.text
    assert "<script>alert" not in body and "document.cookie" not in body
    assert 'onload="' not in body and "javascript:alert" not in body and "<iframe" not in body
    assert "&lt;img src=x onerror=alert(1)&gt; Urgent" in body  # the subject, escaped


async def test_an_attachment_over_the_limit_flags_the_mail_instead_of_retrying(
    services, factory, worker
):
    account = await factory.account()
    inbox = await email_inbox(factory, account)
    services.settings.max_attachment_bytes = 50  # the fixture's PDF is 78 bytes
    assert await _receive(services, worker, inbox, "inline_cid_image.eml") == []
    async with services.read_session() as session:
        stored = await session.scalar(select(InboundEvent))
    assert stored.status == "failed" and "larger than the limit" in stored.error
