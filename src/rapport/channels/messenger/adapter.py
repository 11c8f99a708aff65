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

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar

import httpx
from pydantic import AnyHttpUrl, BaseModel, Field

from rapport.channels.base import BadPayload, Channel, RawRequest, SendContext, VerificationFailed
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import ContentType, DeliveryStatus
from rapport.domain.ports import (
    ChannelPolicy,
    IdentityClaim,
    InboundMessage,
    MediaRef,
    OutboundMessage,
    Parsed,
    ProviderReceipt,
    SendError,
    StatusUpdate,
)
from rapport.lib import meta_graph, meta_messaging, meta_webhooks
from rapport.lib.clock import utcnow
from rapport.lib.http import retry_after_seconds

KIND = IdentityKind.messenger
RECONCILE_SECONDS = 90.0  # wait for the echo of a send whose answer was lost


class MessengerConfig(BaseModel):
    page_id: str = Field(min_length=1, max_length=64, pattern=r"^\d+$", description="Page ID")
    access_token: str = Field(min_length=8, description="Page access token")
    app_secret: str = Field(min_length=8, description="App secret (signs the webhooks)")
    previous_app_secret: str = Field(
        default="", description="Still accepted on webhooks while you reset the app secret"
    )
    verify_token: str = Field(
        min_length=8, max_length=200, description="Verify token you type in the webhook settings"
    )
    app_id: str = Field(
        default="",
        pattern=r"^\d*$",
        description="Your app's ID: messages the Page sends from other apps are then kept",
    )
    api_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://graph.facebook.com"), description="Graph API address"
    )
    api_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$")

    def endpoint(self, *parts: str) -> str:
        return "/".join([str(self.api_base_url).rstrip("/"), self.api_version, *parts])


class MessengerChannel(Channel[MessengerConfig]):
    kind: ClassVar[str] = "messenger"
    label: ClassVar[str] = "Messenger"
    Config = MessengerConfig
    secret_fields: ClassVar[tuple[str, ...]] = (
        "access_token",
        "app_secret",
        "previous_app_secret",
        "verify_token",
    )
    policy: ClassVar[ChannelPolicy] = ChannelPolicy(
        identity_kind=KIND,
        reply_window=timedelta(hours=24),
        human_reply_window=timedelta(days=7),
        max_length=2000,
    )

    def verify(self, request: RawRequest, config: MessengerConfig) -> None:
        try:
            meta_webhooks.verify_signature(
                [config.app_secret, config.previous_app_secret],
                request.body,
                signature=request.header(meta_webhooks.SIGNATURE_HEADER),
                legacy_signature=request.header(meta_webhooks.LEGACY_SIGNATURE_HEADER),
            )
        except meta_webhooks.MetaSignatureError as exc:
            raise VerificationFailed(str(exc)) from exc

    def handshake(self, request: RawRequest, config: MessengerConfig) -> str | None:
        return meta_webhooks.handshake_challenge(request.query_string, config.verify_token)

    def dedupe_key(self, request: RawRequest, config: MessengerConfig) -> str:
        return meta_webhooks.body_key(request.body)

    def parse(self, body: bytes, content_type: str, config: MessengerConfig) -> Sequence[Parsed]:
        try:
            data = json.loads(body)
            found = list(meta_messaging.events(data, expected_object="page"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadPayload(str(exc)) from exc
        parsed: list[Parsed] = []
        for event in found:
            parsed.extend(_to_domain(meta_messaging.meaning(event), config.app_id))
        return parsed

    async def send(
        self, outbound: OutboundMessage, config: MessengerConfig, ctx: SendContext
    ) -> ProviderReceipt:
        body = _send_body(outbound)
        try:
            response = await ctx.http.post(
                config.endpoint(config.page_id, "messages"),
                json=body,
                headers={"Authorization": f"Bearer {config.access_token}"},
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise SendError(f"could not reach Messenger: {exc}", retryable=True) from exc
        except httpx.HTTPError as exc:
            raise SendError(
                "no answer from Messenger; waiting for its echo before trying again",
                retryable=True,
                retry_after=RECONCILE_SECONDS,
            ) from exc
        return _receipt(response)


def _send_body(outbound: OutboundMessage) -> dict[str, Any]:
    try:
        window = meta_graph.messaging_type(outbound.last_incoming_at, utcnow())
    except meta_graph.WindowClosed as exc:
        raise SendError(f"Messenger allows no reply: {exc}", retryable=False) from exc
    if len(outbound.attachments) > 1 or (outbound.attachments and outbound.content):
        raise SendError(
            "Messenger takes one attachment and no text per message: send them apart",
            retryable=False,
        )
    attachment = None
    if outbound.attachments:
        file = outbound.attachments[0]
        if not file.url:
            raise SendError("the attachment has no public link", retryable=False)
        attachment = (file.content_type, file.url)
    return meta_graph.messaging_body(
        recipient=outbound.to,
        text=outbound.content,
        reference=outbound.idempotency_key,
        window=window,
        attachment=attachment,
    )


def _receipt(response: httpx.Response) -> ProviderReceipt:
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.is_success and isinstance(data, dict) and data.get("message_id"):
        return ProviderReceipt(provider_id=str(data["message_id"]), status=DeliveryStatus.sent)
    failure = meta_graph.classify(
        response.status_code, data, retry_after=retry_after_seconds(response, default=0) or None
    )
    raise SendError(
        f"Messenger refused the message: {failure.message}",
        retryable=failure.retryable,
        retry_after=failure.retry_after,
    )


def _to_domain(item: meta_messaging.Incoming | meta_messaging.Receipt, app_id: str) -> list[Parsed]:
    if isinstance(item, meta_messaging.Receipt):
        return _statuses(item)
    return [
        InboundMessage(
            sender=(IdentityClaim(KIND, item.user_id, Verification.provider),),
            content=item.content,
            content_type=ContentType(item.content_kind),
            provider_id=item.provider_id,
            attachments=tuple(
                MediaRef(filename=m.filename, content_type=m.content_type, url=m.url)
                for m in item.media
            ),
            payload=item.payload,
            sent_at=item.sent_at,
            thread_refs=item.thread_refs,
            echo=item.echo,
            reference=item.reference,
            # Our own app's echoes are ours even unmatched; another app's were sent elsewhere.
            sent_elsewhere=item.echo and bool(app_id) and item.app_id != app_id,
        )
    ]


def _statuses(receipt: meta_messaging.Receipt) -> list[Parsed]:
    status = DeliveryStatus(receipt.status)
    if receipt.mids:
        return [StatusUpdate(provider_id=mid, status=status) for mid in receipt.mids]
    if receipt.watermark is None:
        return []
    return [
        StatusUpdate(
            provider_id="", status=status, up_to=receipt.watermark, recipient=receipt.user_id
        )
    ]
