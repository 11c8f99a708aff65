"""The sandbox's side of the fake Meta app: a customer writing on WhatsApp, Messenger or
Instagram, and the receipts Meta posts back for every send it accepted.

Meta posts an app's webhooks to the callback URL configured for each product, signed with the
app secret; in the sandbox the app learns an inbox's URL and secret when that inbox's customer
first writes (`subscriptions`). Receipts follow Meta's documents: WhatsApp "Status messages
webhook reference" (`sent`, `delivered`, `read`), Messenger "message_echoes",
"message_deliveries" and "message_reads" (a watermark), Instagram echoes and "messaging_seen"
(Instagram has no delivery receipt).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import ClassVar

from rapport.domain.errors import InvalidInput
from rapport.web.sandbox.common import CustomerMessage, Deliver, SandboxInbox, Transcript
from rapport.web.sandbox.providers.meta_payloads import MetaPayloads, SentMessage, Webhook, signed

# The config field naming the business account a webhook or a send belongs to, per channel.
ACCOUNT_FIELDS = {
    "whatsapp": "phone_number_id",
    "messenger": "page_id",
    "instagram": "instagram_account_id",
}
OBJECTS = {"messenger": "page", "instagram": "instagram"}  # the webhook's `object`


@dataclass(frozen=True)
class Subscription:
    """Where the app's webhook for one business account (number, Page, Instagram) points."""

    channel: str
    url: str
    app_secret: str


def customer_address(channel: str, value: str) -> str:
    """The customer as the sandbox names them: a WhatsApp number in E.164, else Meta's id."""
    return "+" + re.sub(r"\D", "", value) if channel == "whatsapp" else value.strip()


def _check_address(channel: str, address: str) -> None:
    if channel == "whatsapp" and address == "+":
        raise InvalidInput("a WhatsApp customer is a phone number", field="customer")
    if channel != "whatsapp" and not address.isdigit():
        raise InvalidInput("a Messenger or Instagram customer id is a number", field="customer")


def _attachment_kind(content_type: str) -> str:
    return "image" if content_type.startswith("image/") else "file"


class MetaCustomer(MetaPayloads):
    """Mixed into FakeMeta: the FakeProvider methods that play the customer."""

    channels: ClassVar[tuple[str, ...]]
    transcript: Transcript
    reporter: Deliver | None
    subscriptions: dict[str, Subscription]

    def plays(self, inbox: SandboxInbox) -> bool:
        base = str(inbox.config.get("api_base_url", "")).rstrip("/")
        return inbox.channel in self.channels and bool(self.base_url) and base == self.base_url

    def thread_of(self, inbox: SandboxInbox, customer: str) -> tuple[str, str]:
        node = str(inbox.config[ACCOUNT_FIELDS[inbox.channel]])
        return (node, customer_address(inbox.channel, customer))

    async def customer_says(
        self, inbox: SandboxInbox, message: CustomerMessage, deliver: Deliver
    ) -> None:
        node, customer = self.thread_of(inbox, message.customer)
        _check_address(inbox.channel, customer)
        secret = str(inbox.config["app_secret"])
        self.subscriptions[node] = Subscription(inbox.channel, inbox.webhook_url, secret)
        provider_id, hook = self._customer_webhook(inbox.channel, node, customer, message)
        media = [name for name, _kind, _data in message.media]
        self.transcript.add((node, customer), "customer", message.text, provider_id, media=media)
        await deliver(signed(hook.body, secret).to(inbox.webhook_url))

    def _customer_webhook(
        self, channel: str, node: str, customer: str, message: CustomerMessage
    ) -> tuple[str, Webhook]:
        if channel == "whatsapp":
            wamid = "wamid." + secrets.token_urlsafe(24)
            return wamid, self._whatsapp_customer(node, customer.lstrip("+"), message, wamid)
        mid = "m_" + secrets.token_urlsafe(32)
        attachments = [
            self.hosted_attachment(_attachment_kind(kind), data, kind)
            for _name, kind, data in message.media[:1]
        ]
        hook = self.customer_message(
            OBJECTS[channel],
            account_id=node,
            user_id=customer,
            text=message.text,
            attachments=attachments or None,
            mid=mid,
        )
        return mid, hook

    def _whatsapp_customer(
        self, node: str, wa_id: str, message: CustomerMessage, wamid: str
    ) -> Webhook:
        who = {"phone_number_id": node, "wa_id": wa_id, "name": message.name, "message_id": wamid}
        if not message.media:
            return self.whatsapp_text(text=message.text, **who)
        filename, content_type, data = message.media[0]
        image = content_type.startswith("image/")
        return self.whatsapp_media(
            kind="image" if image else "document",
            data=data,
            mime_type=content_type,
            caption=message.text,
            filename=None if image else filename,
            **who,
        )

    async def report(self, sent: SentMessage) -> None:
        """Post Meta's receipts of one accepted send to the app's webhook, in Meta's order."""
        subscription = self.subscriptions.get(sent.node)
        if self.reporter is None or subscription is None:
            return  # no webhook configured for this account: Meta would post nothing
        for status, hook in self._receipts(subscription.channel, sent):
            self.transcript.set_status(sent.id, status)
            await self.reporter(signed(hook.body, subscription.app_secret).to(subscription.url))

    def _receipts(self, channel: str, sent: SentMessage) -> list[tuple[str, Webhook]]:
        if channel == "whatsapp":
            statuses = ("sent", "delivered", "read")
            return list(zip(statuses, self.whatsapp_statuses(sent, *statuses), strict=True))
        if channel == "messenger":
            return [
                ("sent", self.echo("page", sent)),
                ("delivered", self.messenger_delivery(sent)),
                ("read", self.messenger_read(sent)),
            ]
        return [("sent", self.echo("instagram", sent)), ("read", self.instagram_read(sent))]
