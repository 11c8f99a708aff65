"""Writing replies: threading headers, alternatives, attachments, and no header injection."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.channels.email import EmailConfig
from rapport.channels.email.compose import (
    MAX_DISPLAY_NAME,
    Draft,
    FileToAttach,
    HeaderInjection,
    build_message,
)
from tests.support.mail import REPLY_SECRET, SUPPORT_ADDRESS, parse

CONFIG = EmailConfig(
    address=SUPPORT_ADDRESS,
    from_name="Acme Support",
    signature=["Acme Support", "https://help.acme.example"],
    reply_secret=REPLY_SECRET,
)


def draft(**changes) -> Draft:
    values = {
        "to": "ana@customer.example",
        "content": "Hello Ana,\n\nyour lamp ships today.",
        "subject": "RE: My order",
        "message_id": "rapport-msg-5.abc@support.example.com",
        "references": ("first@customer.example", "hash:deadbeef", "second@customer.example"),
        "reply_to": "support+5.0123456789abcdef0123@support.example.com",
        "sender_name": "Bob",
    }
    values.update(changes)
    return Draft(**values)


def test_a_reply_threads_under_the_customers_mail():
    message = parse(bytes(build_message(draft(), CONFIG)))
    assert message["Subject"] == "Re: My order"
    assert message["Message-ID"] == "<rapport-msg-5.abc@support.example.com>"
    assert message["In-Reply-To"] == "<second@customer.example>"
    # Hash keys of mails that had no Message-ID are never written as references.
    assert message["References"] == "<first@customer.example> <second@customer.example>"
    assert str(message["From"]) == "Acme Support <support@support.example.com>"
    assert message["Reply-To"].addresses[0].addr_spec.startswith("support+5.")


def test_html_and_text_alternatives_carry_the_signature_and_escape_content():
    message = parse(bytes(build_message(draft(content="1 < 2 & <b>bold</b>"), CONFIG)))
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(("html",)).get_content()
    assert "1 < 2 & <b>bold</b>" in text and "\n-- \nAcme Support\n" in text
    assert "1 &lt; 2 &amp; &lt;b&gt;bold&lt;/b&gt;" in html and "<b>" not in html
    assert "https://help.acme.example" in html


def test_attachments_make_a_mixed_message():
    files = [FileToAttach("../../etc/report\u200b.pdf", "application/pdf", b"%PDF-1.4")]
    message = parse(bytes(build_message(draft(files=files), CONFIG)))
    assert message.get_content_type() == "multipart/mixed"
    attachment = next(message.iter_attachments())
    assert attachment.get_filename() == "report.pdf"
    assert attachment.get_content() == b"%PDF-1.4"


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "Hello\r\nBcc: victim@example.com"},
        {"subject": "Hello\nBcc: victim@example.com"},
        {"sender_name": "Bob\r\nBcc: victim@example.com"},
        {"to": "ana@customer.example\r\nBcc: victim@example.com"},
        {"to": "ana@customer.example, victim@example.com"},
        {"reply_to": "x@example.com\nBcc: victim@example.com"},
        {"message_id": "id@x\r\nBcc: victim@example.com"},
    ],
)
def test_line_breaks_in_any_header_value_are_refused(change):
    with pytest.raises(HeaderInjection):
        build_message(draft(**change), CONFIG.model_copy(update={"from_name": ""}))


def test_a_from_name_with_a_line_break_cannot_even_be_configured():
    with pytest.raises(ValueError, match="one line"):
        EmailConfig(address=SUPPORT_ADDRESS, from_name="Acme\r\nBcc: x@example.com")


header_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=80
).map(lambda s: " ".join(s.split()))


@settings(max_examples=150, deadline=None)
@given(subject=header_text, name=header_text, body=st.text(max_size=300))
def test_generated_mail_reparses_to_the_same_headers(subject, name, body):
    built = build_message(
        draft(subject=subject, sender_name=name, content=body),
        CONFIG.model_copy(update={"from_name": ""}),
    )
    again = parse(bytes(built))
    assert set(again.keys()) == set(built.keys())
    assert again["Subject"] == built["Subject"]
    assert again["From"].addresses == built["From"].addresses
    assert again["From"].addresses[0].display_name == name[:MAX_DISPLAY_NAME].strip()
    assert again["To"].addresses[0].addr_spec == "ana@customer.example"
    assert len(again.get_all("To")) == 1 and again.get_all("Bcc") is None
