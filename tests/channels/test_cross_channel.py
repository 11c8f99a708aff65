"""One phone, one contact: an SMS and a call from the same number are one conversation, and a
reply chosen on SMS goes out through the SMS provider in that same conversation."""

from sqlalchemy import select

from rapport.domain.contacts.models import Contact, Identity
from rapport.domain.conversations.models import Conversation, Message
from rapport.domain.events import Event
from rapport.web.sandbox.providers.twilio import call_params, message_params, new_sid, signed
from tests.support.channels import channel_inbox
from tests.support.factory import login
from tests.support.fakes import (
    BUSINESS_NUMBER,
    TWILIO_SID,
    TWILIO_TOKEN,
    running_twilio,
    sms_config,
    voice_config,
)

PHONE_AS_TYPED = "+34 612 34 56 78"
PHONE = "+34612345678"


async def test_sms_and_a_call_from_one_phone_are_one_contact_and_the_reply_goes_by_sms(
    client, services, factory, worker
):
    async with running_twilio(client) as twilio:
        account = await factory.account(default_region="ES")
        sms = await channel_inbox(services, account, "sms", sms_config(twilio), name="SMS")
        voice = await channel_inbox(services, account, "voice", voice_config(twilio), name="Phone")
        agent = await factory.user(account)

        text = message_params(
            account_sid=TWILIO_SID,
            sid=new_sid("SM"),
            sender=PHONE,
            to=BUSINESS_NUMBER,
            body="Hi, I tried to call you about my refund",
        )
        await signed(f"http://testserver/hooks/sms/{sms.id}", TWILIO_TOKEN, text).deliver(client)
        call_sid = new_sid("CA")
        for sequence, status in enumerate(["initiated", "ringing", "in-progress", "completed"]):
            params = call_params(
                account_sid=TWILIO_SID,
                call_sid=call_sid,
                sequence=sequence,
                status=status,
                caller="0034612345678" if sequence % 2 else PHONE,  # written two ways
                called=BUSINESS_NUMBER,
                duration=95 if status == "completed" else None,
            )
            call = signed(f"http://testserver/hooks/voice/{voice.id}", TWILIO_TOKEN, params)
            assert (await call.deliver(client)).status_code == 200
        await worker.drain()

        async with services.read_session() as session:
            [contact] = (await session.scalars(select(Contact))).all()
            [identity] = (await session.scalars(select(Identity))).all()
            [conversation] = (await session.scalars(select(Conversation))).all()
            messages = (await session.scalars(select(Message).order_by(Message.id))).all()
            switches = (
                await session.scalars(
                    select(Event).where(Event.type == "conversation.channel_switched")
                )
            ).all()
        assert (identity.kind, identity.value, identity.contact_id) == ("phone", PHONE, contact.id)
        assert [(m.channel, m.content_type) for m in messages] == [
            ("sms", "text"),
            ("voice", "call"),
        ]
        assert messages[1].payload["call"] == {
            "direction": "inbound",
            "status": "completed",
            "duration": 95,
            "recording_url": None,
        }
        assert [s.data["to_channel"] for s in switches] == ["voice"]

        # The agent opens the conversation: the call is in the timeline, SMS can be chosen.
        csrf = await login(client, agent)
        page = await client.get(f"/conversations/{conversation.id}")
        assert "Incoming call" in page.text and "1:35" in page.text
        assert "calls cannot carry a written reply" in page.text
        response = await client.post(
            f"/conversations/{conversation.id}/messages",
            data={"content": "We'll call you back at 5 pm", "inbox_id": str(sms.id)},
            headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
        )
        assert response.status_code == 200
        await worker.drain()

    [create] = twilio.creates
    assert create["To"] == PHONE and create["Body"] == "We'll call you back at 5 pm"
    async with services.read_session() as session:
        reply = await session.scalar(select(Message).where(Message.direction == "outgoing"))
    assert reply.conversation_id == conversation.id and reply.channel == "sms"
    assert reply.status == "sent" and reply.provider_id == twilio.messages[0]["sid"]
