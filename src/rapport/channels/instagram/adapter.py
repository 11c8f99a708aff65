"""The Instagram adapter (an Instagram professional account's direct messages).

In:  POST /hooks/instagram/{inbox_id}, signed with `X-Hub-Signature-256` (the app secret over
     the raw body); GET answers Meta's verification handshake. Subscribe the account to
     `messages` (echoes included), `messaging_seen`, `message_reactions` and
     `messaging_postbacks`. The customer is known by the Instagram-scoped id (IGSID): identity
     kind `instagram`.
Out: POST {api}/{version}/{instagram_account_id}/messages with the access token, the same Send
     API shape as Messenger: a `RESPONSE` within 24 hours of the customer's last message, the
     `HUMAN_AGENT` tag up to 7 days, nothing after (the reply box says so before anyone writes).
     Our idempotency key travels as `message.metadata`; an echo carrying it (or our app's id)
     matches our message, so a send whose answer was lost is not sent twice.
Echoes are never customer messages; those of messages sent from another app (the Instagram app
itself) are kept as outgoing messages marked "sent elsewhere" when `app_id` is set. Instagram's
read receipts (`messaging_seen`) name the message read.
Followed documents: Instagram Platform "Webhook Notification Examples", "Messaging API" (Send
API) and "Human Agent" tag; Messenger Platform "Webhook Events Reference" for shared fields.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from pydantic import AnyHttpUrl, Field

from rapport.channels.meta_app import SendApiChannel, SendApiSettings
from rapport.domain.contacts.models import IdentityKind
from rapport.domain.ports import ChannelPolicy


class InstagramConfig(SendApiSettings):
    instagram_account_id: str = Field(
        min_length=1, max_length=64, pattern=r"^\d+$", description="Instagram account ID"
    )
    access_token: str = Field(
        min_length=8, description="Access token with instagram_manage_messages"
    )
    app_id: str = Field(
        default="",
        pattern=r"^\d*$",
        description="Your app's ID: messages sent from the Instagram app are then kept",
    )
    api_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://graph.instagram.com"), description="Graph API address"
    )


class InstagramChannel(SendApiChannel[InstagramConfig]):
    kind: ClassVar[str] = "instagram"
    label: ClassVar[str] = "Instagram"
    Config = InstagramConfig
    identity_kind: ClassVar[IdentityKind] = IdentityKind.instagram
    webhook_object: ClassVar[str] = "instagram"
    policy: ClassVar[ChannelPolicy] = ChannelPolicy(
        identity_kind=identity_kind,
        reply_window=timedelta(hours=24),
        human_reply_window=timedelta(days=7),
        max_length=1000,
    )

    def sender_id(self, config: InstagramConfig) -> str:
        return config.instagram_account_id
