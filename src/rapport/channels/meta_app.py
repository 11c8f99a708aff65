"""What the channels on a Meta app share: its settings, its signed webhooks, the Send API.

WhatsApp, Messenger and Instagram webhooks are signed alike (`X-Hub-Signature-256`, the app
secret over the raw body, the previous secret accepted while it is reset) and verified by the
same GET handshake: `MetaWebhookChannel`. Messenger and Instagram also share the `messaging`
webhook shape and the Send API with its windows (a `RESPONSE` within 24 hours of the customer's
last message, the `HUMAN_AGENT` tag up to 7 days, nothing after): `SendApiChannel`. Our
idempotency key travels as `message.metadata`; the echo that carries it back matches our
message, so a send whose answer was lost is not sent twice. Each channel's folder holds only
what differs: its config (which account sends), the webhook `object`, the identity kind and
policy.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import httpx
from pydantic import AnyHttpUrl, BaseModel, Field

from rapport.channels.base import BadPayload, Channel, RawRequest, SendContext, VerificationFailed
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import ContentType, DeliveryStatus
from rapport.domain.ports import (
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

RECONCILE_SECONDS = 90.0  # wait for the echo of a send whose answer was lost


class MetaAppSettings(BaseModel):
    """The Meta app fields every Meta inbox has; a channel's config adds its accounts."""

    access_token: str = Field(min_length=8, description="Access token")
    app_secret: str = Field(min_length=8, description="App secret (signs the webhooks)")
    previous_app_secret: str = Field(
        default="", description="Still accepted on webhooks while you reset the app secret"
    )
    verify_token: str = Field(
        min_length=8, max_length=200, description="Verify token you type in the webhook settings"
    )
    api_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://graph.facebook.com"), description="Graph API address"
    )
    api_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$")

    def endpoint(self, *parts: str) -> str:
        return "/".join([str(self.api_base_url).rstrip("/"), self.api_version, *parts])

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class SendApiSettings(MetaAppSettings):
    """A Messenger or Instagram inbox: the app's id tells our echoes from other apps'."""

    app_id: str = Field(
        default="",
        pattern=r"^\d*$",
        description="Your app's ID: messages sent from other apps are then kept",
    )


AppConfigT = TypeVar("AppConfigT", bound=MetaAppSettings)
ConfigT = TypeVar("ConfigT", bound=SendApiSettings)


class MetaWebhookChannel(Channel[AppConfigT]):
    """A channel whose webhooks come signed from a Meta app."""

    secret_fields: ClassVar[tuple[str, ...]] = (
        "access_token",
        "app_secret",
        "previous_app_secret",
        "verify_token",
    )

    def verify(self, request: RawRequest, config: AppConfigT) -> None:
        try:
            meta_webhooks.verify_signature(
                [config.app_secret, config.previous_app_secret],
                request.body,
                signature=request.header(meta_webhooks.SIGNATURE_HEADER),
                legacy_signature=request.header(meta_webhooks.LEGACY_SIGNATURE_HEADER),
            )
        except meta_webhooks.MetaSignatureError as exc:
            raise VerificationFailed(str(exc)) from exc

    def handshake(self, request: RawRequest, config: AppConfigT) -> str | None:
        return meta_webhooks.handshake_challenge(request.query_string, config.verify_token)

    def dedupe_key(self, request: RawRequest, config: AppConfigT) -> str:
        return meta_webhooks.body_key(request.body)


class SendApiChannel(MetaWebhookChannel[ConfigT]):
    """A channel on Meta's messaging webhook and Send API; subclasses name what differs."""

    webhook_object: ClassVar[str]  # the webhook's `object`: "page" or "instagram"
    identity_kind: ClassVar[IdentityKind]  # how the customer is known: PSID or IGSID

    def parse(self, body: bytes, content_type: str, config: ConfigT) -> Sequence[Parsed]:
        try:
            data = json.loads(body)
            # One app may serve several accounts: keep only what was sent to this inbox's.
            found = list(
                meta_messaging.events(
                    data, expected_object=self.webhook_object, account_id=self.sender_id(config)
                )
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadPayload(str(exc)) from exc
        parsed: list[Parsed] = []
        for event in found:
            parsed.extend(self._to_domain(meta_messaging.meaning(event), config.app_id))
        return parsed

    async def send(
        self, outbound: OutboundMessage, config: ConfigT, ctx: SendContext
    ) -> ProviderReceipt:
        body = self._send_body(outbound)
        try:
            response = await ctx.http.post(
                config.endpoint(self.sender_id(config), "messages"),
                json=body,
                headers=config.auth(),
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise SendError(f"could not reach {self.label}: {exc}", retryable=True) from exc
        except httpx.HTTPError as exc:
            raise SendError(
                f"no answer from {self.label}; waiting for its echo before trying again",
                retryable=True,
                retry_after=RECONCILE_SECONDS,
            ) from exc
        return self._receipt(response)

    def sender_id(self, config: ConfigT) -> str:
        """The id of our Page or account in the Send API path."""
        raise NotImplementedError(f"{type(self).__name__} must name its sending account")

    def _send_body(self, outbound: OutboundMessage) -> dict[str, Any]:
        try:
            window = meta_graph.messaging_type(outbound.last_incoming_at, utcnow())
        except meta_graph.WindowClosed as exc:
            raise SendError(f"{self.label} allows no reply: {exc}", retryable=False) from exc
        if len(outbound.attachments) > 1 or (outbound.attachments and outbound.content):
            raise SendError(
                f"{self.label} takes one attachment and no text per message: send them apart",
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

    def _receipt(self, response: httpx.Response) -> ProviderReceipt:
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.is_success and isinstance(data, dict) and data.get("message_id"):
            return ProviderReceipt(provider_id=str(data["message_id"]), status=DeliveryStatus.sent)
        failure = meta_graph.classify(
            response.status_code,
            data,
            retry_after=retry_after_seconds(response, default=0) or None,
        )
        raise SendError(
            f"{self.label} refused the message: {failure.message}",
            retryable=failure.retryable,
            retry_after=failure.retry_after,
        )

    def _to_domain(
        self, item: meta_messaging.Incoming | meta_messaging.Receipt, app_id: str
    ) -> list[Parsed]:
        if isinstance(item, meta_messaging.Receipt):
            return _statuses(item)
        return [
            InboundMessage(
                sender=(IdentityClaim(self.identity_kind, item.user_id, Verification.provider),),
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
