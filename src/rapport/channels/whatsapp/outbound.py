"""The body of a Cloud API send ("Send messages" document): text, one media by link, or a
template with its variables, with our idempotency key as `biz_opaque_callback_data`."""

from __future__ import annotations

from typing import Any

from rapport.domain.ports import OutboundAttachment, OutboundMessage, SendError

MAX_CALLBACK_DATA = 512  # the documented limit of biz_opaque_callback_data
_CAPTIONED = ("image", "video", "document")


def message_body(outbound: OutboundMessage) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": outbound.to.lstrip("+"),
        "biz_opaque_callback_data": outbound.idempotency_key[:MAX_CALLBACK_DATA],
    }
    if outbound.reply_to_provider_id:
        body["context"] = {"message_id": outbound.reply_to_provider_id}
    if outbound.template:
        body.update(type="template", template=template_object(outbound.template))
    elif outbound.attachments:
        body.update(_media(outbound))
    else:
        text = outbound.content
        body.update(type="text", text={"body": text, "preview_url": "http" in text})
    return body


def template_object(template: dict[str, Any]) -> dict[str, Any]:
    """`{"name", "language", "variables"}` -> the Cloud API template object.

    Variables are a list (positional {{1}}, {{2}}...) or a mapping (named parameters).
    """
    name = str(template.get("name") or "")
    if not name:
        raise SendError("choose a template", retryable=False)
    variables = template.get("variables") or []
    if isinstance(variables, dict):
        parameters = [
            {"type": "text", "parameter_name": str(k), "text": str(v)} for k, v in variables.items()
        ]
    else:
        parameters = [{"type": "text", "text": str(v)} for v in variables]
    result: dict[str, Any] = {
        "name": name,
        "language": {"code": str(template.get("language") or "en_US")},
    }
    if parameters:
        result["components"] = [{"type": "body", "parameters": parameters}]
    return result


def _media(outbound: OutboundMessage) -> dict[str, Any]:
    if len(outbound.attachments) > 1:
        raise SendError("WhatsApp takes one attachment per message", retryable=False)
    attachment = outbound.attachments[0]
    kind = media_kind(attachment)
    if not attachment.url:
        raise SendError("the attachment has no public link WhatsApp can fetch", retryable=False)
    media: dict[str, Any] = {"link": attachment.url}
    if outbound.content:
        if kind not in _CAPTIONED:
            raise SendError(
                f"WhatsApp {kind} messages take no text: send it apart", retryable=False
            )
        media["caption"] = outbound.content
    if kind == "document":
        media["filename"] = attachment.filename
    return {"type": kind, kind: media}


def media_kind(attachment: OutboundAttachment) -> str:
    main = attachment.content_type.split("/", 1)[0]
    if attachment.content_type == "image/webp":
        return "sticker"
    return main if main in ("image", "audio", "video") else "document"
