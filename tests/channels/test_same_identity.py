"""One address, one contact, whichever real channel it arrives by.

The same phone number by SMS, WhatsApp and a voice call (written three ways by three
providers) is one contact with one phone identity; the same email address by the email channel,
the website widget (proven by the site's JWT) and the API (in other letter cases) is one contact.
"""

import time

import jwt
import pytest
from sqlalchemy import select

from rapport.domain.contacts.merge_models import MergeSuggestion
from rapport.domain.contacts.models import Contact, Identity, IdentityKind, Verification
from rapport.domain.conversations.models import Message
from rapport.domain.ports import IdentityClaim
from rapport.web.sandbox.providers.telegram import update_call
from rapport.web.sandbox.providers.twilio import call_params, message_params, new_sid, signed
from tests.conftest import make_settings
from tests.support.channels import channel_inbox, fixture_json
from tests.support.factory import signed_api_call
from tests.support.fakes import (
    BUSINESS_NUMBER,
    TWILIO_SID,
    TWILIO_TOKEN,
    WEBHOOK_SECRET,
    running_telegram,
    running_twilio,
    sms_config,
    telegram_config,
    voice_config,
)
from tests.support.live import free_port
from tests.support.mail import SUPPORT_ADDRESS, email_inbox, listening, send_mail
from tests.support.meta import (
    PHONE_NUMBER_ID,
    fake_meta_server,
    make_inbox,
    run_jobs,
    whatsapp_config,
)
from tests.support.webchat import IDENTITY_SECRET, Visitor, widget_inbox


async def _contacts_and_identities(services):
    async with services.read_session() as session:
        contacts = (await session.scalars(select(Contact))).all()
        identities = (await session.scalars(select(Identity).order_by(Identity.id))).all()
        channels = (await session.scalars(select(Message.channel).order_by(Message.id))).all()
    return contacts, identities, channels


async def test_one_phone_by_sms_whatsapp_and_voice_is_one_contact(
    client, services, factory, worker
):
    account = await factory.account(default_region="ES")
    async with running_twilio(client) as twilio, fake_meta_server() as meta:
        sms = await channel_inbox(services, account, "sms", sms_config(twilio), name="SMS")
        voice = await channel_inbox(services, account, "voice", voice_config(twilio), name="Tel")
        whatsapp = await make_inbox(services, account, "whatsapp", whatsapp_config(meta.base_url))

        text = message_params(
            account_sid=TWILIO_SID,
            sid=new_sid("SM"),
            sender="+34612345678",
            to=BUSINESS_NUMBER,
            body="Hola, soy Lucía",
        )
        await signed(f"http://testserver/hooks/sms/{sms.id}", TWILIO_TOKEN, text).deliver(client)
        hook = meta.whatsapp_text(
            phone_number_id=PHONE_NUMBER_ID, wa_id="34612345678", text="Por WhatsApp", name="Lucía"
        )
        assert (
            await meta.deliver(client, f"/hooks/whatsapp/{whatsapp.id}", hook)
        ).status_code == 200
        call = call_params(
            account_sid=TWILIO_SID,
            call_sid=new_sid("CA"),
            sequence=0,
            status="completed",
            caller="0034612345678",
            called=BUSINESS_NUMBER,
            duration=30,
        )
        signed_call = signed(f"http://testserver/hooks/voice/{voice.id}", TWILIO_TOKEN, call)
        assert (await signed_call.deliver(client)).status_code == 200
        await run_jobs(services, worker)

    contacts, identities, channels = await _contacts_and_identities(services)
    assert len(contacts) == 1
    assert [(i.kind, i.value, i.verification) for i in identities] == [
        ("phone", "+34612345678", "provider")
    ]
    assert sorted(channels) == ["sms", "voice", "whatsapp"]


async def test_a_phone_shared_on_telegram_without_its_plus_finds_the_sms_contact(
    client, services, factory, worker
):
    """Telegram gives the user's own number without a plus; an account in another region
    still reads it as the international number the SMS came from."""
    account = await factory.account(default_region="US")
    async with running_twilio(client) as twilio, running_telegram() as telegram:
        sms = await channel_inbox(services, account, "sms", sms_config(twilio), name="SMS")
        bot = await channel_inbox(services, account, "telegram", telegram_config(telegram))
        text = message_params(
            account_sid=TWILIO_SID,
            sid=new_sid("SM"),
            sender="+34612345678",
            to=BUSINESS_NUMBER,
            body="Hola",
        )
        await signed(f"http://testserver/hooks/sms/{sms.id}", TWILIO_TOKEN, text).deliver(client)
        shared = update_call(
            f"http://testserver/hooks/telegram/{bot.id}",
            WEBHOOK_SECRET,
            fixture_json("telegram", "contact_own_phone.json"),
        )
        assert (await shared.deliver(client)).status_code == 200
        await run_jobs(services, worker)

    contacts, identities, channels = await _contacts_and_identities(services)
    assert len(contacts) == 1
    assert sorted((i.kind, i.value) for i in identities) == [
        ("phone", "+34612345678"),
        ("telegram", "111222333"),
    ]
    assert sorted(channels) == ["sms", "telegram"]


@pytest.fixture
def settings(db_url, tmp_path):
    return make_settings(db_url, tmp_path, smtp_listen_port=free_port(), intake_refresh_seconds=0.2)


def _mail(sender: str) -> bytes:
    return "\r\n".join(
        [
            f"From: Ana Ruiz <{sender}>",
            f"To: {SUPPORT_ADDRESS}",
            "Subject: My order",
            "Message-ID: <order-1@mail.example.com>",
            "Authentication-Results: mx.support.example.com; dmarc=pass header.from=example.com",
            "Content-Type: text/plain; charset=utf-8",
            "",
            "Where is order 77?",
        ]
    ).encode()


async def test_one_email_by_the_email_channel_the_widget_and_the_api_is_one_contact(
    client, services, factory, worker, settings
):
    account = await factory.account()
    await email_inbox(factory, account)
    widget = await widget_inbox(services, account)
    api = await factory.api_inbox(account)

    async with listening(services, settings.smtp_listen_port):
        await send_mail(
            settings.smtp_listen_port,
            _mail("ana@example.com"),
            sender="ana@example.com",
            recipients=[SUPPORT_ADDRESS],
        )
    await worker.drain()

    # The customer's site proves who is chatting with a short-lived JWT naming the address.
    visitor = Visitor(client, widget)
    await visitor.start()
    token = jwt.encode(
        {
            "sub": "shop-user-7",
            "email": "Ana@Example.com",
            "aud": widget.public_token,
            "exp": int(time.time()) + 300,
        },
        IDENTITY_SECRET,
        algorithm="HS256",
    )
    assert (await visitor.post("/identify", json={"token": token})).status_code == 200
    assert (await visitor.say("Also asking here", "same-email-01")).status_code == 202

    body, headers = signed_api_call(
        {
            "type": "message",
            "id": "api-1",
            "contact": {"id": "crm-ana", "email": "  ANA@example.COM "},
            "content": "From our CRM",
        }
    )
    assert (
        await client.post(f"/hooks/api/{api.id}", content=body, headers=headers)
    ).status_code == 200
    await worker.drain()

    contacts, identities, channels = await _contacts_and_identities(services)
    assert len(contacts) == 1
    emails = [(i.value, i.verification) for i in identities if i.kind == "email"]
    assert emails == [("ana@example.com", "provider")]
    assert {i.kind for i in identities} == {"email", "external", "webchat"}
    assert sorted(channels) == ["api", "email", "webchat"]


async def test_unauthenticated_mail_from_a_proven_address_is_one_claimant_not_one_per_mail(
    client, services, factory, worker, settings
):
    """Mail whose sender cannot be authenticated never joins the customer holding the address
    with proof; it gets one contact of its own (not one per mail) and a suggested merge."""
    account = await factory.account()
    await email_inbox(factory, account)
    api = await factory.api_inbox(account)
    owner = await factory.receive(
        account,
        api,
        text="Private: my IBAN is ES91 2100 0418 4502 0005 1332",
        claims=(IdentityClaim(IdentityKind.email, "ana@example.com", Verification.verified),),
    )
    async with listening(services, settings.smtp_listen_port):
        for n in (1, 2):
            raw = (
                _mail("Ana@Example.com")
                .replace(b"order-1@", f"spoof-{n}@".encode())
                .replace(
                    b"Authentication-Results: mx.support.example.com; dmarc=pass", b"X-Note: none"
                )
            )
            await send_mail(
                settings.smtp_listen_port,
                raw,
                sender="x@elsewhere.example",
                recipients=[SUPPORT_ADDRESS],
            )
    await worker.drain()
    async with services.read_session() as session:
        mails = (await session.scalars(select(Message).where(Message.channel == "email"))).all()
        conversations = {m.conversation_id for m in mails}
        [suggestion] = (await session.scalars(select(MergeSuggestion))).all()
        [email] = (await session.scalars(select(Identity).where(Identity.kind == "email"))).all()
    assert len(mails) == 2 and len(conversations) == 1
    assert owner.conversation.id not in conversations
    assert email.contact_id == owner.conversation.contact_id
    assert owner.conversation.contact_id in {suggestion.contact_id, suggestion.other_contact_id}
