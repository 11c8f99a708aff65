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

KIND = IdentityKind.instagram
RECONCILE_SECONDS = 90.0  # wait for the echo of a send whose answer was lost


class InstagramConfig(BaseModel):
    instagram_account_id: str = Field(
        min_length=1, max_length=64, pattern=r"^\d+$", description="Instagram account ID"
    )
    access_token: str = Field(
        min_length=8, description="Access token with instagram_manage_messages"
    )
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
        description="Your app's ID: messages sent from the Instagram app are then kept",
    )
    api_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://graph.instagram.com"), description="Graph API address"
    )
    api_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$")

    def endpoint(self, *parts: str) -> str:
        return "/".join([str(self.api_base_url).rstrip("/"), self.api_version, *parts])


class InstagramChannel(Channel[InstagramConfig]):
    kind: ClassVar[str] = "instagram"
    label: ClassVar[str] = "Instagram"
    Config = InstagramConfig
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
        max_length=1000,
    )

    def verify(self, request: RawRequest, config: InstagramConfig) -> None:
        try:
            meta_webhooks.verify_signature(
                [config.app_secret, config.previous_app_secret],
                request.body,
                signature=request.header(meta_webhooks.SIGNATURE_HEADER),
                legacy_signature=request.header(meta_webhooks.LEGACY_SIGNATURE_HEADER),
            )
        except meta_webhooks.MetaSignatureError as exc:
            raise VerificationFailed(str(exc)) from exc

    def handshake(self, request: RawRequest, config: InstagramConfig) -> str | None:
        return meta_webhooks.handshake_challenge(request.query_string, config.verify_token)

    def dedupe_key(self, request: RawRequest, config: InstagramConfig) -> str:
        return meta_webhooks.body_key(request.body)

    def parse(self, body: bytes, content_type: str, config: InstagramConfig) -> Sequence[Parsed]:
        try:
            data = json.loads(body)
            found = list(meta_messaging.events(data, expected_object="instagram"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadPayload(str(exc)) from exc
        parsed: list[Parsed] = []
        for event in found:
            parsed.extend(_to_domain(meta_messaging.meaning(event), config.app_id))
        return parsed

    async def send(
        self, outbound: OutboundMessage, config: InstagramConfig, ctx: SendContext
    ) -> ProviderReceipt:
        body = _send_body(outbound)
        try:
            response = await ctx.http.post(
                config.endpoint(config.instagram_account_id, "messages"),
                json=body,
                headers={"Authorization": f"Bearer {config.access_token}"},
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise SendError(f"could not reach Instagram: {exc}", retryable=True) from exc
        except httpx.HTTPError as exc:
            raise SendError(
                "no answer from Instagram; waiting for its echo before trying again",
                retryable=True,
                retry_after=RECONCILE_SECONDS,
            ) from exc
        return _receipt(response)


def _send_body(outbound: OutboundMessage) -> dict[str, Any]:
    try:
        window = meta_graph.messaging_type(outbound.last_incoming_at, utcnow())
    except meta_graph.WindowClosed as exc:
        raise SendError(f"Instagram allows no reply: {exc}", retryable=False) from exc
    if len(outbound.attachments) > 1 or (outbound.attachments and outbound.content):
        raise SendError(
            "Instagram takes one attachment and no text per message: send them apart",
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
        f"Instagram refused the message: {failure.message}",
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
