"""The `email` channel adapter.

In:  raw RFC 5322 mail from the built-in SMTP listener (mail forwarded to Rapport, and replies
     to the signed reply+TOKEN@ addresses) and from IMAP polling of existing mailboxes; both
     store the bytes like a webhook call, and `parse` turns them into a message (or, for a
     bounce, a failed status of the outgoing message it refers to). No webhooks.
Out: SMTP through the inbox's server or the instance relay: multipart/alternative text and HTML,
     attachments, In-Reply-To/References so the customer's client threads the reply, and a
     Reply-To naming the conversation with a signed token. The Message-ID we write is stored as
     the message's provider id, so the customer's answer finds its conversation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

from rapport.channels.base import Channel, IntakeHost, SendContext
from rapport.channels.email.compose import Draft, FileToAttach, HeaderInjection, build_message
from rapport.channels.email.config import EmailConfig
from rapport.channels.email.inbound import parse_mail
from rapport.channels.email.intake import run_intake
from rapport.channels.email.outbound import relay_for, submit
from rapport.channels.email.threads import reply_address, reply_token
from rapport.domain.contacts.models import IdentityKind
from rapport.domain.conversations.models import DeliveryStatus
from rapport.domain.ports import (
    ChannelPolicy,
    OutboundMessage,
    Parsed,
    ProviderReceipt,
    SendError,
)
from rapport.lib.crypto import derive_key, hmac_sha256_hex

# Where the delivery worker puts the instance-wide SMTP relay (RAPPORT_SMTP_*) in SendContext.
RELAY_KEY = "smtp_relay"


def outgoing_message_id(config: EmailConfig, idempotency_key: str) -> str:
    """The same on every attempt at one reply (a resend is recognisably the same mail)."""
    salt = hmac_sha256_hex(derive_key(config.reply_secret, "email-message-id"), idempotency_key)
    domain = config.address.rpartition("@")[2]
    return f"{idempotency_key}.{salt[:10]}@{domain}"


class EmailChannel(Channel[EmailConfig]):
    kind: ClassVar[str] = "email"
    label: ClassVar[str] = "Email"
    Config = EmailConfig
    secret_fields: ClassVar[tuple[str, ...]] = ("smtp_password", "imap_password", "reply_secret")
    takes_webhooks: ClassVar[bool] = False  # mail comes through the SMTP listener and IMAP
    policy: ClassVar[ChannelPolicy] = ChannelPolicy(
        identity_kind=IdentityKind.email, threading=True, media=True
    )

    def parse(self, body: bytes, content_type: str, config: EmailConfig) -> Sequence[Parsed]:
        return parse_mail(body, config)

    async def listen(self, host: IntakeHost, stop: asyncio.Event) -> None:
        await run_intake(host, stop)

    async def send(
        self, outbound: OutboundMessage, config: EmailConfig, ctx: SendContext
    ) -> ProviderReceipt:
        message_id = outgoing_message_id(config, outbound.idempotency_key)
        token = reply_token(config.reply_secret, outbound.conversation_id)
        files = [
            FileToAttach(a.filename, a.content_type, await ctx.read_file(a.storage_key))
            for a in outbound.attachments
        ]
        draft = Draft(
            to=outbound.to,
            content=outbound.content,
            subject=outbound.subject,
            message_id=message_id,
            references=outbound.thread_refs,
            reply_to=reply_address(
                inbox_address=config.address, reply_domain=config.reply_domain, token=token
            ),
            sender_name=outbound.sender_name,
            files=files,
        )
        try:
            message = build_message(draft, config)
        except HeaderInjection as exc:
            raise SendError(f"refused to send: {exc}", retryable=False) from exc
        relay = relay_for(config, ctx.extra.get(RELAY_KEY))
        recipient = message["To"].addresses[0].addr_spec
        await submit(message, sender=config.address, recipient=recipient, relay=relay)
        return ProviderReceipt(provider_id=message_id, status=DeliveryStatus.sent)
