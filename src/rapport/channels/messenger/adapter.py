"""The Messenger adapter (a Facebook Page's inbox).

In:  POST /hooks/messenger/{inbox_id}, signed with `X-Hub-Signature-256` (the app secret over
     the raw body); GET answers Meta's verification handshake. Subscribe the Page to
     `messages`, `message_echoes`, `message_deliveries`, `message_reads`, `message_reactions`
     and `messaging_postbacks`. The customer is known by the page-scoped id (PSID): identity
     kind `messenger`.
Out: POST {api}/{version}/{page_id}/messages with the Page access token. Inside 24 hours after
     the customer's last message a reply is a `RESPONSE`; up to 7 days a person may still
     answer with the `HUMAN_AGENT` tag; after that nothing may be sent (the policy says so in
     the reply box before anyone writes). Our idempotency key travels as `message.metadata` and
     comes back in the echo, which matches the echo to our message even if the send's answer
     was lost; the retry then finds the message sent and does not send it again.
Echoes are never customer messages. Echoes of messages sent from another app (the Page's own
inbox) are kept as outgoing messages marked "sent elsewhere" when `app_id` is set.
Followed documents: Messenger Platform "Webhook Events Reference", "Send API", "Message Tags".
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from pydantic import Field

from rapport.channels.meta_app import SendApiChannel, SendApiSettings
from rapport.domain.contacts.models import IdentityKind
from rapport.domain.ports import ChannelPolicy


class MessengerConfig(SendApiSettings):
    page_id: str = Field(min_length=1, max_length=64, pattern=r"^\d+$", description="Page ID")
    access_token: str = Field(min_length=8, description="Page access token")
    app_id: str = Field(
        default="",
        pattern=r"^\d*$",
        description="Your app's ID: messages the Page sends from other apps are then kept",
    )


class MessengerChannel(SendApiChannel[MessengerConfig]):
    kind: ClassVar[str] = "messenger"
    label: ClassVar[str] = "Messenger"
    Config = MessengerConfig
    identity_kind: ClassVar[IdentityKind] = IdentityKind.messenger
    webhook_object: ClassVar[str] = "page"
    policy: ClassVar[ChannelPolicy] = ChannelPolicy(
        identity_kind=identity_kind,
        reply_window=timedelta(hours=24),
        human_reply_window=timedelta(days=7),
        max_length=2000,
    )

    def sender_id(self, config: MessengerConfig) -> str:
        return config.page_id
