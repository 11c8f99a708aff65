"""Every table, imported in one place so the metadata (and Alembic) sees them all."""

from rapport.db.base import Base
from rapport.db.outbox import OutboxJob
from rapport.domain.accounts.models import Account
from rapport.domain.agents.models import ApiToken, Team, TeamMember, User
from rapport.domain.contacts.merge_models import ContactMerge, MergeSuggestion
from rapport.domain.contacts.models import (
    AttributeDefinition,
    Contact,
    ContactLabel,
    Identity,
    Label,
)
from rapport.domain.conversations.models import Attachment, Conversation, Message
from rapport.domain.events import Event, EventCounter
from rapport.domain.inboxes.models import InboundEvent, Inbox
from rapport.domain.intake.models import IntakeCursor
from rapport.domain.segments.models import Segment
from rapport.domain.visitors.models import VisitorSession
from rapport.domain.webhooks.models import WebhookDelivery, WebhookSubscription

__all__ = [
    "Account",
    "ApiToken",
    "Attachment",
    "AttributeDefinition",
    "Base",
    "Contact",
    "ContactLabel",
    "ContactMerge",
    "Conversation",
    "Event",
    "EventCounter",
    "Identity",
    "InboundEvent",
    "Inbox",
    "IntakeCursor",
    "Label",
    "MergeSuggestion",
    "Message",
    "OutboxJob",
    "Segment",
    "Team",
    "TeamMember",
    "User",
    "VisitorSession",
    "WebhookDelivery",
    "WebhookSubscription",
]
