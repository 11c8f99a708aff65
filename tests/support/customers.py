"""A customer with a cross-channel history, built through the real actions (for 360 tests)."""

from __future__ import annotations

from dataclasses import dataclass

from rapport.domain import events
from rapport.domain.accounts.models import Account
from rapport.domain.agents.models import User
from rapport.domain.contacts.actions import record_custom_event
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations import actions
from rapport.domain.conversations.models import Conversation
from rapport.domain.inboxes.models import Inbox
from rapport.domain.ports import IdentityClaim
from rapport.services import Services
from tests.support.channels import channel_inbox
from tests.support.factory import Factory
from tests.support.fakes import BUSINESS_NUMBER, TWILIO_SID, TWILIO_TOKEN

PHONE = "+34612345678"


def phone_claim(phone: str = PHONE) -> tuple[IdentityClaim, ...]:
    return (IdentityClaim(IdentityKind.phone, phone, Verification.provider),)


async def sms_inbox(services: Services, account: Account) -> Inbox:
    """An SMS inbox; nothing is sent in these tests, so its provider address is never called."""
    config = {
        "account_sid": TWILIO_SID,
        "auth_token": TWILIO_TOKEN,
        "from_number": BUSINESS_NUMBER,
        "api_base_url": "http://127.0.0.1:9",
    }
    return await channel_inbox(services, account, "sms", config, name="SMS")


@dataclass
class History:
    conversation: Conversation
    contact_id: int
    api: Inbox
    sms: Inbox


async def cross_channel_history(
    services: Services, factory: Factory, account: Account, agent: User
) -> History:
    """API message, SMS message (a channel switch), an assignment, a note and a custom event."""
    api = await factory.api_inbox(account, name="Website")
    sms = await sms_inbox(services, account)
    first = await factory.receive(
        account, api, text="Where is my order?", claims=phone_claim(), name="Lucía"
    )
    await factory.receive(account, sms, text="Texting you instead", claims=phone_claim())
    async with services.session() as session:
        conversation = await session.get(Conversation, first.conversation.id)
        assert conversation is not None
        await actions.assign_conversation(
            session, conversation=conversation, actor=agent, assignee_id=agent.id, team_id=None
        )
        await actions.send_reply(
            session,
            conversation=conversation,
            author=agent,
            reply=actions.Reply(content="Checked the warehouse", private=True),
        )
        await record_custom_event(
            session,
            account_id=account.id,
            contact_id=conversation.contact_id,
            name="order.placed",
            properties={"order": "A-1001", "total": 42.5},
            occurred_at=None,
        )
        await events.commit(session)
        return History(conversation, conversation.contact_id, api, sms)
