"""The bodies Rapport sends to the Cloud API, as its "Send messages" document describes them."""

from __future__ import annotations

import pytest

from rapport.channels.whatsapp.outbound import message_body
from rapport.domain.ports import OutboundAttachment, OutboundMessage, SendError


def outbound(**kw) -> OutboundMessage:
    values = {
        "message_id": 5,
        "conversation_id": 1,
        "idempotency_key": "rapport-msg-5",
        "to": "+34612345678",
        "content": "",
    }
    return OutboundMessage(**{**values, **kw})


def file(content_type: str, name: str = "f") -> OutboundAttachment:
    return OutboundAttachment(name, content_type, "k", 10, url="https://rapport.example/a/1/t")


def test_text_reply_quoting_a_message() -> None:
    body = message_body(outbound(content="Mira https://x.example", reply_to_provider_id="wamid.A"))
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "34612345678",
        "biz_opaque_callback_data": "rapport-msg-5",
        "context": {"message_id": "wamid.A"},
        "type": "text",
        "text": {"body": "Mira https://x.example", "preview_url": True},
    }


def test_media_by_link_with_caption_and_document_name() -> None:
    image = message_body(outbound(content="Tu factura", attachments=(file("image/jpeg"),)))
    assert image["type"] == "image"
    assert image["image"] == {"link": "https://rapport.example/a/1/t", "caption": "Tu factura"}
    pdf = message_body(outbound(attachments=(file("application/pdf", "factura.pdf"),)))
    assert pdf["document"]["filename"] == "factura.pdf"
    assert message_body(outbound(attachments=(file("image/webp"),)))["type"] == "sticker"


def test_what_whatsapp_cannot_take_is_a_final_error() -> None:
    with pytest.raises(SendError) as two:
        message_body(outbound(attachments=(file("image/png"), file("image/png"))))
    assert not two.value.retryable
    with pytest.raises(SendError):
        message_body(outbound(content="hola", attachments=(file("audio/ogg"),)))


def test_named_template_parameters() -> None:
    body = message_body(
        outbound(template={"name": "welcome", "language": "en_US", "variables": {"name": "Ana"}})
    )
    assert body["template"]["components"][0]["parameters"] == [
        {"type": "text", "parameter_name": "name", "text": "Ana"}
    ]
