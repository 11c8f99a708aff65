"""Parsing fixture mail (pure): charsets, quoting, HTML, attachments, machines, sender trust."""

import pytest

from rapport.channels.base import BadPayload
from rapport.channels.email import EmailChannel, EmailConfig
from rapport.channels.email.inbound import dedupe_key
from rapport.channels.email.threads import reply_token
from rapport.domain.contacts.models import Verification
from rapport.domain.conversations.models import DeliveryStatus
from rapport.domain.ports import InboundMessage, StatusUpdate
from tests.support.mail import REPLY_SECRET, SUPPORT_ADDRESS, fixture

CONFIG = EmailConfig(
    address=SUPPORT_ADDRESS, reply_secret=REPLY_SECRET, authserv_ids=["mx.support.example.com"]
)


def parse_one(raw: bytes, config: EmailConfig = CONFIG) -> InboundMessage:
    parsed = EmailChannel().parse(raw, "message/rfc822", config)
    assert len(parsed) == 1 and isinstance(parsed[0], InboundMessage)
    return parsed[0]


def test_a_plain_mail_becomes_a_message_from_an_authenticated_sender():
    message = parse_one(fixture("plain_utf8.eml"))
    claim = message.sender[0]
    assert (claim.kind, claim.value) == ("email", "ana.garcia@customer.example")
    assert claim.verification == Verification.provider  # DMARC pass at our own MX
    assert message.sender_name == "Ana García"
    assert message.subject == "My order #1042 has not arrived"
    assert "lamp two weeks ago" in message.content and "¡Gracias!" in message.content
    assert message.provider_id == "CAF1042-ana@mail.customer.example"
    assert not message.auto_reply and not message.echo


def test_without_a_trusted_receiving_server_the_sender_is_only_a_claim():
    untrusting = CONFIG.model_copy(update={"authserv_ids": []})
    assert parse_one(fixture("plain_utf8.eml"), untrusting).sender[0].verification == (
        Verification.unverified
    )


def test_forged_authentication_results_do_not_make_a_sender_trusted():
    # The topmost header of our own MX says dmarc=fail; a pass below it, or from another
    # authserv-id, was written by the sender and counts for nothing.
    message = parse_one(fixture("spoofed_authentication_results.eml"))
    assert message.sender[0].verification == Verification.unverified


def test_windows_1252_body():
    message = parse_one(fixture("windows1252_body.eml"))
    assert message.content == (
        "The invoice says “120 €” but I paid 100 € \u2013 could you check? Merci, François & Señor Peña"
    )


def test_iso_8859_1_encoded_words_in_subject_and_name():
    message = parse_one(fixture("latin1_encoded_subject.eml"))
    assert message.subject == "Información sobre mi pedido nº 77"
    assert message.sender_name == "José Pérez"
    assert message.content == "Hola, ¿podrían decirme cuándo llega mi pedido? Gracias, José"


def test_html_only_mail_is_sanitised_and_gets_a_text_fallback():
    message = parse_one(fixture("html_only_script.eml"))
    assert message.html is not None
    for dangerous in ("<script", "onload", "onerror", "javascript:", "<iframe", "<style"):
        assert dangerous not in message.html
    assert "<b>reset</b>" in message.html and 'href="https://help.example/"' in message.html
    assert message.content.startswith("Please reset my password.")
    assert "alert" not in message.content and "document.cookie" not in message.content
    # The subject is kept as text (escaped by the templates), not interpreted.
    assert message.subject == "<img src=x onerror=alert(1)> Urgent"


def test_inline_images_keep_their_content_id_and_attachments_their_names():
    message = parse_one(fixture("inline_cid_image.eml"))
    assert message.html is not None and 'src="cid:photo.1@schmidt.example"' in message.html
    files = {a.filename: a for a in message.attachments}
    assert set(files) == {"photo.png", "receipt.pdf"}
    assert files["photo.png"].content_id == "photo.1@schmidt.example"
    assert files["photo.png"].data is not None and files["photo.png"].data.startswith(b"\x89PNG")
    assert files["receipt.pdf"].content_type == "application/pdf"
    assert message.content.startswith("The part arrived broken")


def test_a_delivery_status_notification_fails_the_message_it_refers_to():
    parsed = EmailChannel().parse(fixture("dsn_bounce.eml"), "message/rfc822", CONFIG)
    assert parsed == [
        StatusUpdate(
            provider_id="rapport-msg-7.0123456789@support.example.com",
            status=DeliveryStatus.failed,
            error="nobody@customer.example: 550 5.1.1 <nobody@customer.example>: "
            "Recipient address rejected: User unknown",
        )
    ]


def test_a_delayed_notice_changes_nothing():
    raw = fixture("dsn_bounce.eml").replace(b"Action: failed", b"Action: delayed")
    assert EmailChannel().parse(raw, "message/rfc822", CONFIG) == []


def test_a_vacation_reply_is_flagged_as_machine_mail():
    message = parse_one(fixture("vacation_autoreply.eml"))
    assert message.auto_reply
    assert message.thread_refs == ("rapport-msg-8.abcdef0123@support.example.com",)


@pytest.mark.parametrize(
    ("header", "flagged"),
    [
        (b"Auto-Submitted: auto-generated", True),
        (b"Auto-Submitted: no", False),
        (b"Precedence: bulk", True),
        (b"X-Autorespond: yes", True),
        (b"Return-Path: <>", True),
        (b"X-Mailer: Thunderbird", False),
    ],
)
def test_machine_mail_markers(header, flagged):
    raw = header + b"\n" + fixture("plain_utf8.eml")
    assert parse_one(raw).auto_reply is flagged


def test_outlook_quoting_is_cut_for_display_and_the_whole_mail_kept():
    message = parse_one(fixture("outlook_quoting.eml"))
    assert message.content.startswith("Thanks, the tracking number works now.")
    assert "your order 123 shipped today" not in message.content
    assert "your order 123 shipped today" in message.payload["full_text"]
    assert message.subject == "Order 123 shipped"  # "RE: " removed
    assert message.thread_refs == ("rapport-msg-9.0a1b2c3d4e@support.example.com",)


def test_spanish_quoting_and_sign_off_are_cut():
    message = parse_one(fixture("spanish_quoting.eml"))
    assert message.content == "Perfecto, entonces envío la camiseta el lunes."
    assert "puede devolver la camiseta" in message.payload["full_text"]
    assert message.subject == "Cambio de talla"  # "RV: Re: " removed
    assert message.sender_name == "María López"


def test_missing_message_id_dedupes_by_a_stable_hash():
    raw = fixture("missing_message_id.eml")
    key = dedupe_key(raw)
    assert key.startswith("hash:")
    assert dedupe_key(b"Received: from relay\n" + raw) == key  # trace headers do not matter
    assert dedupe_key(raw.replace(b"3 orders", b"4 orders")) != key
    assert parse_one(raw).provider_id == key


def test_message_id_is_the_dedupe_key():
    assert dedupe_key(fixture("plain_utf8.eml")) == "mid:CAF1042-ana@mail.customer.example"


def test_only_a_token_this_inbox_signed_names_a_conversation():
    good = reply_token(REPLY_SECRET, 42)
    raw = fixture("plain_utf8.eml").replace(
        b"To: Support <support@support.example.com>",
        f"To: Support <support+{good}@support.example.com>".encode(),
    )
    assert parse_one(raw).conversation_id == 42
    forged = good[:-1] + ("0" if good[-1] != "0" else "1")
    for token in (
        forged,
        "42",
        "42.",
        f"43.{good.split('.')[1]}",
        reply_token("other-key" * 3, 42),
    ):
        raw = fixture("plain_utf8.eml").replace(
            b"To: Support <support@support.example.com>",
            f"To: <reply+{token}@support.example.com>".encode(),
        )
        assert parse_one(raw).conversation_id is None, token


def test_our_own_mail_coming_back_is_an_echo():
    raw = fixture("plain_utf8.eml").replace(
        b"From: =?utf-8?q?Ana_Garc=C3=ADa?= <Ana.Garcia@Customer.example>",
        b"From: Support <Support@support.example.com>",
    )
    assert parse_one(raw).echo


def test_a_mail_without_a_sender_is_refused_with_a_reason():
    raw = fixture("missing_message_id.eml").replace(
        b"From: Old Mailer <legacy@oldsystem.example>", b"From: not an address"
    )
    with pytest.raises(BadPayload, match="From"):
        EmailChannel().parse(raw, "message/rfc822", CONFIG)
