"""Mail in through the real SMTP listener: stored like a webhook call, parsed by the worker."""

import aiosmtplib
import pytest
from sqlalchemy import func, select

from rapport.domain.conversations.models import Attachment, Conversation, Message
from rapport.domain.inboxes.models import InboundEvent
from tests.conftest import make_settings
from tests.support.live import eventually, free_port
from tests.support.mail import SUPPORT_ADDRESS, email_inbox, fixture, listening, send_mail

UGLY = [
    "plain_utf8.eml",
    "windows1252_body.eml",
    "latin1_encoded_subject.eml",
    "html_only_script.eml",
    "inline_cid_image.eml",
    "vacation_autoreply.eml",
    "outlook_quoting.eml",
    "spanish_quoting.eml",
    "missing_message_id.eml",
]


@pytest.fixture
def settings(db_url, tmp_path):
    return make_settings(db_url, tmp_path, smtp_listen_port=free_port(), intake_refresh_seconds=0.2)


async def _count(services, model, *where):
    async with services.read_session() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def test_ugly_mail_through_the_listener_lands_once_each(services, factory, worker, settings):
    account = await factory.account()
    inbox = await email_inbox(factory, account)
    async with listening(services, settings.smtp_listen_port):
        for name in UGLY:
            await send_mail(
                settings.smtp_listen_port,
                fixture(name),
                sender="someone@elsewhere.example",
                recipients=[SUPPORT_ADDRESS],
            )
        # The forwarding server retries after a lost answer: the same mail again is a no-op.
        await send_mail(
            settings.smtp_listen_port,
            fixture("plain_utf8.eml"),
            sender="x@elsewhere.example",
            recipients=[SUPPORT_ADDRESS],
        )
    assert await _count(services, InboundEvent, InboundEvent.inbox_id == inbox.id) == len(UGLY)
    await worker.drain()
    async with services.read_session() as session:
        messages = {
            m.provider_id: m for m in await session.scalars(select(Message).order_by(Message.id))
        }
        assert len(messages) == len(UGLY)
        cp1252 = messages["20251104081200.1234@dubois.example"]
        assert "“120 €”" in cp1252.content
        latin1 = messages["latin1-77@ejemplo.example"]
        conversation = await session.get(Conversation, latin1.conversation_id)
        assert conversation.subject == "Información sobre mi pedido nº 77"
        assert messages["ooo-991@baker.example"].payload["auto_reply"] is True
        html = messages["html-only-1@attacker.example"].content_html
        assert "<script" not in html and "onload" not in html
        photo = messages["cid-photo-1@schmidt.example"]
        files = list(
            await session.scalars(select(Attachment).where(Attachment.message_id == photo.id))
        )
        assert {(f.filename, f.content_id) for f in files} == {
            ("photo.png", "photo.1@schmidt.example"),
            ("receipt.pdf", None),
        }
        raw = await session.scalar(
            select(InboundEvent.body).where(
                InboundEvent.dedupe_key == "mid:CAF1042-ana@mail.customer.example"
            )
        )
        # The listener adds trace headers like any MTA, in front of the untouched mail.
        assert raw.startswith(b"Return-Path: <someone@elsewhere.example>\r\nDelivered-To: ")


async def test_unknown_recipients_are_refused_and_nothing_is_stored(services, factory, settings):
    account = await factory.account()
    await email_inbox(factory, account)
    async with listening(services, settings.smtp_listen_port):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await send_mail(
                settings.smtp_listen_port,
                fixture("plain_utf8.eml"),
                sender="a@elsewhere.example",
                recipients=["nobody@support.example.com"],
            )
    assert await _count(services, InboundEvent) == 0


async def test_an_inbox_created_while_listening_is_reachable(services, factory, settings):
    account = await factory.account()
    async with listening(services, settings.smtp_listen_port):
        inbox = await email_inbox(factory, account, address="late@support.example.com")

        async def delivered():
            await send_mail(
                settings.smtp_listen_port,
                fixture("plain_utf8.eml"),
                sender="a@elsewhere.example",
                recipients=["Late+anything@support.example.com"],
            )
            return True

        await eventually(delivered)
    assert await _count(services, InboundEvent, InboundEvent.inbox_id == inbox.id) == 1
