"""The WhatsApp Cloud API adapter.

In:  POST /hooks/whatsapp/{inbox_id}, signed with `X-Hub-Signature-256` (the app secret over the
     raw body); GET on the same URL answers Meta's verification handshake with `hub.challenge`.
     Customer numbers (`wa_id`) are phone numbers: the identity kind is `phone` (E.164), so the
     same person writing by SMS or calling is the same contact.
Out: POST {api}/{version}/{phone_number_id}/messages with the access token (text, one media by
     link, or an approved template with its variables); the 24-hour customer-service window is
     the policy: outside it only templates go out. Templates come from
     GET {api}/{version}/{business_account_id}/message_templates.

A send carries our idempotency key as `biz_opaque_callback_data`, which Meta returns in every
status webhook of that message. When a send's answer is lost (a timeout after the request left),
the retry waits long enough for the "sent" status to name the message by that key; the core
then records it as sent and the retry finds nothing left to do, so the customer gets it once.
Followed documents: Cloud API "Send messages", "Media" (retrieve URL, download), "Message
templates" and the webhooks references cited in `parse.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar

import httpx
from pydantic import Field

from rapport.channels.base import (
    BadPayload,
    SendContext,
)
from rapport.channels.meta_app import MetaAppSettings, MetaWebhookChannel
from rapport.channels.whatsapp import parse
from rapport.channels.whatsapp.outbound import message_body
from rapport.domain.contacts.models import IdentityKind
from rapport.domain.conversations.models import DeliveryStatus
from rapport.domain.ports import (
    ChannelPolicy,
    MediaRef,
    OutboundMessage,
    Parsed,
    ProviderReceipt,
    SendError,
)
from rapport.lib import meta_graph
from rapport.lib.http import retry_after_seconds
from rapport.lib.placeholders import placeholders

# After a send whose answer was lost, wait this long for its "sent" status before trying again.
RECONCILE_SECONDS = 90.0
TEMPLATE_PAGES = 5


class WhatsAppConfig(MetaAppSettings):
    phone_number_id: str = Field(
        min_length=1, max_length=64, pattern=r"^\d+$", description="Phone number ID"
    )
    business_account_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^\d+$",
        description="WhatsApp Business Account ID (lists the templates)",
    )
    access_token: str = Field(min_length=8, description="System user access token")


class WhatsAppChannel(MetaWebhookChannel[WhatsAppConfig]):
    kind: ClassVar[str] = "whatsapp"
    label: ClassVar[str] = "WhatsApp"
    Config = WhatsAppConfig
    policy: ClassVar[ChannelPolicy] = ChannelPolicy(
        identity_kind=IdentityKind.phone,
        reply_window=timedelta(hours=24),
        templates=True,
        max_length=4096,
    )

    def parse(self, body: bytes, content_type: str, config: WhatsAppConfig) -> Sequence[Parsed]:
        return parse.parse_payload(parse.load(body), phone_number_id=config.phone_number_id)

    async def fetch_media(self, ref: MediaRef, config: WhatsAppConfig, ctx: SendContext) -> bytes:
        """Media id -> short-lived URL (Graph API) -> the bytes, both with the access token."""
        if not ref.provider_media_id:
            return await super().fetch_media(ref, config, ctx)
        info = await ctx.http.get(config.endpoint(ref.provider_media_id), headers=config.auth())
        info.raise_for_status()
        url = info.json().get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise BadPayload("the media answer carries no URL")
        media = await ctx.http.get(url, headers=config.auth())
        media.raise_for_status()
        return media.content

    async def send(
        self, outbound: OutboundMessage, config: WhatsAppConfig, ctx: SendContext
    ) -> ProviderReceipt:
        body = message_body(outbound)
        answer = await _post(ctx, config.endpoint(config.phone_number_id, "messages"), body, config)
        messages = answer.get("messages") if isinstance(answer, dict) else None
        if not messages or not isinstance(messages[0], dict) or not messages[0].get("id"):
            raise SendError(
                "WhatsApp accepted the call but returned no message id", retryable=False
            )
        return ProviderReceipt(provider_id=str(messages[0]["id"]), status=DeliveryStatus.sent)

    async def list_templates(
        self, config: WhatsAppConfig, ctx: SendContext
    ) -> list[dict[str, Any]]:
        """Approved templates of the business account, for the reply box."""
        found: list[dict[str, Any]] = []
        params = {"fields": "name,language,status,category,components", "limit": "100"}
        for _ in range(TEMPLATE_PAGES):
            answer = await _get(
                ctx,
                config.endpoint(config.business_account_id, "message_templates"),
                params,
                config,
            )
            found.extend(_template(t) for t in answer.get("data") or [] if isinstance(t, dict))
            after = ((answer.get("paging") or {}).get("cursors") or {}).get("after")
            if not (answer.get("paging") or {}).get("next") or not after:
                break
            params = {**params, "after": str(after)}
        return [t for t in found if t["status"] == "APPROVED"]


def _template(raw: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = next(
        (c for c in raw.get("components") or [] if (c or {}).get("type") == "BODY"), {}
    )
    text = str(body.get("text") or "")
    return {
        "name": str(raw.get("name") or ""),
        "language": str(raw.get("language") or ""),
        "category": str(raw.get("category") or ""),
        "status": str(raw.get("status") or ""),
        "body": text,
        "variables": placeholders(text),  # each distinct {{1}} or {{name}}, in order
    }


async def _post(
    ctx: SendContext, url: str, body: dict[str, Any], config: WhatsAppConfig
) -> dict[str, Any]:
    try:
        response = await ctx.http.post(url, json=body, headers=config.auth())
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise SendError(f"could not reach WhatsApp: {exc}", retryable=True) from exc
    except httpx.HTTPError as exc:
        # The request may have been accepted: wait for its status before sending it again.
        raise SendError(
            "no answer from WhatsApp; waiting for its status before trying again",
            retryable=True,
            retry_after=RECONCILE_SECONDS,
        ) from exc
    return _answer(response)


async def _get(
    ctx: SendContext, url: str, params: dict[str, str], config: WhatsAppConfig
) -> dict[str, Any]:
    try:
        response = await ctx.http.get(url, params=params, headers=config.auth())
    except httpx.HTTPError as exc:
        raise SendError(f"could not reach WhatsApp: {exc}", retryable=True) from exc
    return _answer(response)


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.is_success and isinstance(data, dict):
        return data
    failure = meta_graph.classify(
        response.status_code,
        data,
        retry_after=retry_after_seconds(response, default=0) or None,
    )
    raise SendError(
        f"WhatsApp refused the message: {failure.message}",
        retryable=failure.retryable,
        retry_after=failure.retry_after,
    )
