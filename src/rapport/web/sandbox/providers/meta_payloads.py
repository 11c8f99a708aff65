"""The webhooks Meta sends, built field for field from its documents and signed as Meta signs.

WhatsApp: "Messages webhook reference" and "Status messages webhook reference" (entry[].changes[]
.value with metadata, contacts, messages or statuses). Messenger and Instagram: "Webhook Events
Reference" (entry[].messaging[] with message, message echoes, deliveries, reads, reactions,
postbacks). Bodies are compact JSON with non-ASCII escaped as `\\uXXXX` and `/` as `\\/`, as
Meta sends them, so a receiver that re-serialises before verifying fails like it would in
production.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from rapport.lib import meta_webhooks
from rapport.web.sandbox.common import SignedCall


@dataclass(frozen=True)
class Webhook:
    """One signed webhook call: the exact bytes and the headers Meta sends with them."""

    body: bytes
    headers: dict[str, str]

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def to(self, url: str) -> SignedCall:
        """This call posted to an app's webhook URL."""
        return SignedCall(url=url, body=self.body, headers=self.headers)


@dataclass(frozen=True)
class SentMessage:
    """A send the fake accepted."""

    product: str  # whatsapp | messenger (Instagram sends use the Messenger shape)
    node: str  # phone number id, page id or Instagram account id
    id: str  # the wamid or mid it answered
    to: str
    body: dict[str, Any]
    reference: str | None  # biz_opaque_callback_data or message.metadata

    @property
    def text(self) -> str:
        if self.product == "whatsapp":
            return str((self.body.get("text") or {}).get("body", ""))
        return str((self.body.get("message") or {}).get("text", ""))

    def shown(self) -> tuple[str, list[str]]:
        """What the customer's phone shows: the text (or caption) and any media links."""
        if self.product != "whatsapp":
            message = self.body.get("message") or {}
            link = ((message.get("attachment") or {}).get("payload") or {}).get("url")
            return str(message.get("text", "")), [str(link)] if link else []
        kind = str(self.body.get("type", "text"))
        content = self.body.get(kind) or {}
        if kind == "template":
            return "📄 " + str(content.get("name", "")), []
        if kind == "text":
            return self.text, []
        return str(content.get("caption", "")), [str(content.get("link", kind))]


def meta_json(payload: Any) -> bytes:
    return (
        json.dumps(payload, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode()
    )


def _now() -> int:
    return int(time.time())


def signed(body: bytes, app_secret: str) -> Webhook:
    """These exact bytes with the headers Meta adds: SHA-256 and the legacy SHA-1 signature."""
    sha1 = hmac.new(app_secret.encode(), body, hashlib.sha1).hexdigest()
    return Webhook(
        body,
        {
            "Content-Type": "application/json",
            meta_webhooks.SIGNATURE_HEADER: meta_webhooks.sign(app_secret, body),
            meta_webhooks.LEGACY_SIGNATURE_HEADER: "sha1=" + sha1,
        },
    )


class MetaPayloads:
    """Builders mixed into FakeMeta; they need `app_secret`, `add_media` and `base_url`."""

    app_secret: str
    base_url: str = ""

    def add_media(self, data: bytes, mime_type: str) -> str:
        raise NotImplementedError

    def sign(self, payload: Any) -> Webhook:
        return signed(meta_json(payload), self.app_secret)

    # --- WhatsApp -----------------------------------------------------------------------------

    def whatsapp_value(
        self, phone_number_id: str, display_phone_number: str = "15550001234", **fields: Any
    ) -> dict[str, Any]:
        return {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": display_phone_number,
                "phone_number_id": phone_number_id,
            },
            **fields,
        }

    def whatsapp_webhook(self, *values: dict[str, Any], waba_id: str = "2001") -> Webhook:
        changes = [{"value": v, "field": "messages"} for v in values]
        return self.sign(
            {"object": "whatsapp_business_account", "entry": [{"id": waba_id, "changes": changes}]}
        )

    def whatsapp_message(
        self,
        *,
        phone_number_id: str,
        wa_id: str,
        type: str,
        content: Any,
        name: str = "",
        message_id: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> Webhook:
        """Any customer message: `content` is the object under the message's `type` key."""
        message: dict[str, Any] = {
            "from": wa_id,
            "id": message_id or "wamid." + secrets.token_urlsafe(24),
            "timestamp": str(_now()),
            "type": type,
            type: content,
        }
        if context:
            message["context"] = context
        contacts = [{"profile": {"name": name}, "wa_id": wa_id}]
        return self.whatsapp_webhook(
            self.whatsapp_value(phone_number_id, contacts=contacts, messages=[message])
        )

    def whatsapp_text(self, *, phone_number_id: str, wa_id: str, text: str, **kw: Any) -> Webhook:
        return self.whatsapp_message(
            phone_number_id=phone_number_id, wa_id=wa_id, type="text", content={"body": text}, **kw
        )

    def whatsapp_media(
        self,
        *,
        phone_number_id: str,
        wa_id: str,
        kind: str,
        data: bytes,
        mime_type: str,
        caption: str = "",
        filename: str | None = None,
        **kw: Any,
    ) -> Webhook:
        media_id = self.add_media(data, mime_type)
        content: dict[str, Any] = {
            "mime_type": mime_type,
            "sha256": hashlib.sha256(data).hexdigest(),
            "id": media_id,
        }
        if caption:
            content["caption"] = caption
        if filename:
            content["filename"] = filename
        return self.whatsapp_message(
            phone_number_id=phone_number_id, wa_id=wa_id, type=kind, content=content, **kw
        )

    def whatsapp_status_value(
        self, sent: SentMessage, status: str, *, error: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": sent.id,
            "status": status,
            "timestamp": str(_now()),
            "recipient_id": sent.to.lstrip("+"),
        }
        if sent.reference:
            item["biz_opaque_callback_data"] = sent.reference
        if status in ("sent", "delivered"):
            item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "service"}
        if status == "failed":
            item["errors"] = [error or {"code": 131026, "title": "Message undeliverable"}]
        return self.whatsapp_value(sent.node, statuses=[item])

    def whatsapp_statuses(self, sent: SentMessage, *statuses: str) -> list[Webhook]:
        """One status webhook per status, in the order given."""
        return [self.whatsapp_webhook(self.whatsapp_status_value(sent, s)) for s in statuses]

    # --- Messenger and Instagram ---------------------------------------------------------------

    def messaging_webhook(self, obj: str, account_id: str, *events: dict[str, Any]) -> Webhook:
        """`obj` is `page` (Messenger) or `instagram`; `account_id` the page or IG account."""
        entry = {"id": account_id, "time": _now() * 1000, "messaging": list(events)}
        return self.sign({"object": obj, "entry": [entry]})

    def messaging_event(self, sender: str, recipient: str, **body: Any) -> dict[str, Any]:
        return {
            "sender": {"id": sender},
            "recipient": {"id": recipient},
            "timestamp": _now() * 1000,
            **body,
        }

    def customer_message(
        self,
        obj: str,
        *,
        account_id: str,
        user_id: str,
        text: str = "",
        attachments: list[dict[str, Any]] | None = None,
        mid: str | None = None,
        reply_to: str | None = None,
    ) -> Webhook:
        message: dict[str, Any] = {"mid": mid or "m_" + secrets.token_urlsafe(32)}
        if text:
            message["text"] = text
        if attachments:
            message["attachments"] = attachments
        if reply_to:
            message["reply_to"] = {"mid": reply_to}
        event = self.messaging_event(user_id, account_id, message=message)
        return self.messaging_webhook(obj, account_id, event)

    def hosted_attachment(self, kind: str, data: bytes, mime_type: str) -> dict[str, Any]:
        """An attachment whose payload URL the fake serves (as Meta's CDN would)."""
        media_id = self.add_media(data, mime_type)
        return {"type": kind, "payload": {"url": f"{self.base_url}/cdn/{media_id}"}}

    def echo(self, obj: str, sent: SentMessage, *, app_id: str = "1517776481860111") -> Webhook:
        """The echo Meta sends of a message the page sent (`metadata` is what the send carried)."""
        message: dict[str, Any] = {"is_echo": True, "app_id": int(app_id), "mid": sent.id}
        message.update({k: v for k, v in (sent.body.get("message") or {}).items()})
        event = self.messaging_event(sent.node, sent.to, message=message)
        return self.messaging_webhook(obj, sent.node, event)

    def messenger_delivery(self, sent: SentMessage) -> Webhook:
        event = self.messaging_event(
            sent.to, sent.node, delivery={"mids": [sent.id], "watermark": _now() * 1000}
        )
        return self.messaging_webhook("page", sent.node, event)

    def messenger_read(self, sent: SentMessage) -> Webhook:
        """Messenger reports reads as a watermark: everything sent before it was read."""
        event = self.messaging_event(sent.to, sent.node, read={"watermark": (_now() + 1) * 1000})
        return self.messaging_webhook("page", sent.node, event)

    def instagram_read(self, sent: SentMessage) -> Webhook:
        """Instagram's messaging_seen names the message read."""
        event = self.messaging_event(sent.to, sent.node, read={"mid": sent.id})
        return self.messaging_webhook("instagram", sent.node, event)
