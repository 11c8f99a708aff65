"""The `api` channel adapter.

In:  POST /hooks/api/{inbox_id} with a JSON body, signed with the inbox secret
     (X-Rapport-Timestamp, X-Rapport-Signature = sha256=HMAC(secret, "timestamp.body")).
     {"id": "<your message id>", "contact": {"id": "...", "email": "...", "phone": "...",
      "name": "..."}, "content": "...", "attachments": [{"url", "filename", "content_type"}]}
     or a status for one of our replies: {"type": "status", "id": "<unique>",
      "message_id": "<id we sent>", "status": "delivered|read|failed", "error": "..."}
Out: agent replies are POSTed as JSON to the inbox's `outbound_url`, signed the same way, with
     X-Rapport-Delivery as the idempotency key (the same on every retry of one reply).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import httpx
from pydantic import AnyHttpUrl, BaseModel, Field, ValidationError, field_validator

from rapport.channels.base import (
    BadPayload,
    Channel,
    RawRequest,
    SendContext,
    VerificationFailed,
)
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
from rapport.lib import signatures
from rapport.lib.http import retry_after_seconds


class ApiConfig(BaseModel):
    secret: str = Field(min_length=16, description="Signs calls in both directions")
    previous_secret: str = Field(
        default="", description="Still accepted on incoming calls while you rotate the secret"
    )
    outbound_url: AnyHttpUrl | None = Field(
        default=None, description="Where agent replies are POSTed"
    )


class _Contact(BaseModel):
    id: str = Field(min_length=1, max_length=255)
    email: str | None = None
    phone: str | None = None
    name: str = Field(default="", max_length=200)


class _Attachment(BaseModel):
    url: AnyHttpUrl
    filename: str = Field(default="file", max_length=200)
    content_type: str = Field(default="application/octet-stream", max_length=200)


class _MessageIn(BaseModel):
    type: Literal["message"] = "message"
    id: str = Field(min_length=1, max_length=200)
    contact: _Contact
    content: str = Field(default="", max_length=65_536)
    attachments: list[_Attachment] = Field(default_factory=list, max_length=10)

    @field_validator("content")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class _StatusIn(BaseModel):
    type: Literal["status"]
    id: str = Field(min_length=1, max_length=200)
    message_id: str = Field(min_length=1, max_length=255)
    status: Literal["sent", "delivered", "read", "failed"]
    error: str | None = Field(default=None, max_length=1000)


def _load(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadPayload(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadPayload("body must be a JSON object")
    return data


class ApiChannel(Channel[ApiConfig]):
    kind: ClassVar[str] = "api"
    label: ClassVar[str] = "API"
    Config = ApiConfig
    secret_fields: ClassVar[tuple[str, ...]] = ("secret", "previous_secret")
    policy: ClassVar[ChannelPolicy] = ChannelPolicy(identity_kind=IdentityKind.external)

    def verify(self, request: RawRequest, config: ApiConfig) -> None:
        try:
            signatures.verify(
                [config.secret, config.previous_secret],
                request.body,
                timestamp=request.header(signatures.TIMESTAMP_HEADER),
                signature=request.header(signatures.SIGNATURE_HEADER),
            )
        except signatures.SignatureError as exc:
            raise VerificationFailed(str(exc)) from exc

    def dedupe_key(self, request: RawRequest, config: ApiConfig) -> str:
        data = _load(request.body)
        ident = data.get("id")
        if not isinstance(ident, str) or not ident:
            raise BadPayload('"id" (your unique message id) is required')
        return f"{data.get('type', 'message')}:{ident}"

    def parse(self, body: bytes, content_type: str, config: ApiConfig) -> Sequence[Parsed]:
        data = _load(body)
        try:
            if data.get("type") == "status":
                status = _StatusIn.model_validate(data)
                return [
                    StatusUpdate(
                        provider_id=status.message_id,
                        status=DeliveryStatus(status.status),
                        error=status.error,
                    )
                ]
            message = _MessageIn.model_validate(data)
        except ValidationError as exc:
            raise BadPayload(exc.errors()[0]["msg"]) from exc
        return [self._message(message)]

    def _message(self, message: _MessageIn) -> InboundMessage:
        claims = [IdentityClaim(IdentityKind.external, message.contact.id, Verification.verified)]
        if message.contact.email:
            claims.append(
                IdentityClaim(IdentityKind.email, message.contact.email, Verification.verified)
            )
        if message.contact.phone:
            claims.append(
                IdentityClaim(IdentityKind.phone, message.contact.phone, Verification.verified)
            )
        media = tuple(
            MediaRef(filename=a.filename, content_type=a.content_type, url=str(a.url))
            for a in message.attachments
        )
        if not message.content and not media:
            raise BadPayload('"content" or "attachments" is required')
        return InboundMessage(
            sender=tuple(claims),
            sender_name=message.contact.name,
            content=message.content,
            content_type=ContentType.media if media and not message.content else ContentType.text,
            provider_id=message.id,
            attachments=media,
        )

    async def send(
        self, outbound: OutboundMessage, config: ApiConfig, ctx: SendContext
    ) -> ProviderReceipt:
        if config.outbound_url is None:
            raise SendError("this API inbox has no outbound URL configured", retryable=False)
        body = json.dumps(
            {
                "id": outbound.idempotency_key,
                "message_id": outbound.message_id,
                "conversation_id": outbound.conversation_id,
                "contact": {"id": outbound.to},
                "content": outbound.content,
                "sender_name": outbound.sender_name,
                "attachments": [
                    {"filename": a.filename, "content_type": a.content_type, "url": a.url}
                    for a in outbound.attachments
                ],
            },
            separators=(",", ":"),
        ).encode()
        headers = {
            **signatures.signed_headers(config.secret, body, delivery_id=outbound.idempotency_key),
            "Idempotency-Key": outbound.idempotency_key,
        }
        try:
            response = await ctx.http.post(str(config.outbound_url), content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SendError(
                f"could not reach {config.outbound_url}: {exc}", retryable=True
            ) from exc
        return _receipt(response, outbound.idempotency_key)


def _receipt(response: httpx.Response, fallback_id: str) -> ProviderReceipt:
    if response.status_code == 429 or response.status_code >= 500:
        raise SendError(
            f"the integration answered {response.status_code}",
            retryable=True,
            retry_after=retry_after_seconds(response, default=0) or None,
        )
    if response.status_code >= 400:
        raise SendError(
            f"the integration refused the message ({response.status_code})", retryable=False
        )
    provider_id = fallback_id
    try:
        data = response.json()
        if isinstance(data, dict) and isinstance(data.get("id"), str | int):
            provider_id = str(data["id"])
    except ValueError:
        pass
    return ProviderReceipt(provider_id=provider_id, status=DeliveryStatus.sent)
