"""The omnichannel scenario, end to end through every real part but the providers (local fakes):

A customer chats on the website widget and leaves their phone and email in the pre-chat form;
later they write on WhatsApp from that phone (a signed webhook), then by SMS from the same phone
(a signed Twilio call), then by email from the address they gave. One contact, one conversation
(the account joins within its window), and the agent sees all of it in one timeline with the
channel switch events; the agent answers on the channel of their choice and the matching fake
provider receives it, in the same conversation.
"""

import re
from html import unescape

import pytest
from sqlalchemy import select

from rapport.domain import events
from rapport.domain.accounts.models import Account, JoinPolicy
from rapport.domain.contacts.models import Contact, Identity
from rapport.domain.conversations.models import Conversation, Message
from rapport.web.sandbox.providers.twilio import message_params, new_sid, signed
from tests.conftest import make_settings
from tests.support.channels import channel_inbox
from tests.support.factory import login
from tests.support.fakes import (
    BUSINESS_NUMBER,
    TWILIO_SID,
    TWILIO_TOKEN,
    running_twilio,
    sms_config,
)
from tests.support.live import free_port
from tests.support.mail import SUPPORT_ADDRESS, email_inbox, listening, send_mail, smtp_receiver
from tests.support.meta import (
    PHONE_NUMBER_ID,
    fake_meta_server,
    make_inbox,
    run_jobs,
    whatsapp_config,
)
from tests.support.webchat import Visitor, widget_inbox
from tests.web.test_reply_channel import options_of

PHONE = "+34612345678"
EMAIL = "lucia.fernandez@example.com"


@pytest.fixture
def settings(db_url, tmp_path):
    return make_settings(db_url, tmp_path, smtp_listen_port=free_port(), intake_refresh_seconds=0.2)


def _customer_mail(subject, body):
    return "\n".join(
        [
            f"From: Lucía Fernández <{EMAIL}>",
            f"To: {SUPPORT_ADDRESS}",
            f"Subject: {subject}",
            "Date: Mon, 23 Nov 2026 10:00:00 +0000",
            "Message-ID: <order-question-1@example.com>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "",
            body,
        ]
    ).encode()


def _timeline_text(html):
    timeline = html.split('id="timeline"', 1)[1].split("</ol>", 1)[0]
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", timeline)).split())


async def test_one_customer_on_four_channels_is_one_conversation_answered_where_chosen(
    client, services, factory, worker, settings
):
    async with (
        fake_meta_server() as meta,
        running_twilio(client) as twilio,
        smtp_receiver() as relay,
    ):
        account = await factory.account("Acme", default_region="ES")
        async with services.session() as session:
            row = await session.get(Account, account.id)
            row.join_policy, row.join_window_hours = JoinPolicy.window, 48
            await events.commit(session)
        chat = await widget_inbox(services, account, name="Website")
        whatsapp = await make_inbox(
            services, account, "whatsapp", whatsapp_config(meta.base_url), name="WhatsApp"
        )
        sms = await channel_inbox(services, account, "sms", sms_config(twilio), name="SMS")
        mail = await email_inbox(factory, account, name="Support mail", **relay.config)
        agent = await factory.user(account, name="Ana Ruiz")

        # 1. The website widget: a pre-chat form with phone and email, then a question.
        visitor = Visitor(client, chat)
        await visitor.start()
        details = await visitor.post(
            "/details", json={"name": "Lucía Fernández", "email": EMAIL, "phone": "612 34 56 78"}
        )
        assert details.status_code == 200, details.text
        said = await visitor.say("Hi! My order A-1042 has not arrived.", "client-omni-1")
        assert said.status_code == 202
        await worker.drain()

        # 2. WhatsApp from the same phone, signed as Meta signs it.
        hook = meta.whatsapp_text(
            phone_number_id=PHONE_NUMBER_ID, wa_id=PHONE.lstrip("+"), text="Any news? (WhatsApp)"
        )
        url = f"http://testserver/hooks/whatsapp/{whatsapp.id}"
        assert (await hook.to(url).deliver(client)).status_code == 200
        await worker.drain()

        # 3. SMS from the same phone, signed as Twilio signs it.
        text = message_params(
            account_sid=TWILIO_SID,
            sid=new_sid("SM"),
            sender=PHONE,
            to=BUSINESS_NUMBER,
            body="Texting in case WhatsApp fails",
        )
        await signed(f"http://testserver/hooks/sms/{sms.id}", TWILIO_TOKEN, text).deliver(client)
        await worker.drain()

        # 4. Email from the address given in the widget.
        async with listening(services, settings.smtp_listen_port):
            await send_mail(
                settings.smtp_listen_port,
                _customer_mail("Order A-1042", "Writing by email too, with the receipt."),
                sender=EMAIL,
                recipients=[SUPPORT_ADDRESS],
            )
            await run_jobs(services, worker)

        async with services.read_session() as session:
            contacts = list(await session.scalars(select(Contact)))
            [conversation] = list(await session.scalars(select(Conversation)))
            messages = list(await session.scalars(select(Message).order_by(Message.id)))
            identities = {(i.kind, i.value) for i in await session.scalars(select(Identity))}
        assert len(contacts) == 1
        assert {("phone", PHONE), ("email", EMAIL)} <= identities
        assert [m.channel for m in messages] == ["webchat", "whatsapp", "sms", "email"]
        assert messages[-1].inbox_id == mail.id

        # The agent sees the whole story in one timeline, with the channel switches.
        csrf = await login(client, agent)
        page = await client.get(f"/conversations/{conversation.id}")
        shown = _timeline_text(page.text)
        expected = [
            "My order A-1042 has not arrived",
            "Moved from Chat to WhatsApp",
            "Any news? (WhatsApp)",
            "Moved from WhatsApp to SMS",
            "Texting in case WhatsApp fails",
            "Moved from SMS to Email",
            "Writing by email too",
        ]
        positions = [shown.find(part) for part in expected]
        assert -1 not in positions and positions == sorted(positions), shown

        # Every channel that reaches her is offered; the last one she used is the default.
        options = options_of(page.text)
        assert options[0]["data-channel"] == "email" and "selected" in options[0]
        by_channel = {o["data-channel"]: o for o in options if "disabled" not in o}
        assert {"webchat", "whatsapp", "sms", "email"} <= set(by_channel)

        # She asked to be texted: the agent picks SMS, then also answers the email.
        for channel, words in [
            ("sms", "Your parcel A-1042 arrives tomorrow."),
            ("email", "Receipt received, thank you. Your parcel arrives tomorrow."),
        ]:
            response = await client.post(
                f"/conversations/{conversation.id}/messages",
                data={"content": words, "route": by_channel[channel]["value"]},
                headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
            )
            assert response.status_code == 200, response.text
        await run_jobs(services, worker)

    [create] = twilio.creates
    assert create["To"] == PHONE and create["Body"] == "Your parcel A-1042 arrives tomorrow."
    [(envelope, sent_mail)] = relay.received
    assert envelope.rcpt_tos == [EMAIL]
    assert sent_mail["Subject"] == "Re: Order A-1042"
    assert sent_mail["In-Reply-To"] == "<order-question-1@example.com>"
    assert meta.sent == []  # nothing went out on the channels not chosen
    async with services.read_session() as session:
        replies = list(
            await session.scalars(
                select(Message).where(Message.direction == "outgoing").order_by(Message.id)
            )
        )
    assert [(r.channel, r.status, r.conversation_id) for r in replies] == [
        ("sms", "sent", conversation.id),
        ("email", "sent", conversation.id),
    ]
