"""Subjects, Message-IDs, reply addresses and Authentication-Results, piece by piece."""

import pytest

from rapport.channels.email.authresults import parse_header, sender_authenticated
from rapport.channels.email.quotes import visible_reply
from rapport.channels.email.threads import (
    normalise_subject,
    reply_address,
    reply_subject,
    reply_token,
    thread_refs,
    verify_reply_token,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Re: Order 5", "Order 5"),
        ("RE: re: Fwd: Order 5", "Order 5"),
        ("FW: Order 5", "Order 5"),
        ("RV: Re: Cambio de talla", "Cambio de talla"),
        ("Rta: Consulta", "Consulta"),
        ("AW: WG: Rechnung", "Rechnung"),
        ("Sv: Vs: Faktura", "Faktura"),
        ("Re[2]: Order 5", "Order 5"),
        ("Re : Order 5", "Order 5"),
        ("Re\uff1a Order 5", "Order 5"),
        ("Order\r\n 5", "Order 5"),
        ("Return policy", "Return policy"),  # a word starting like a prefix stays
        ("Reunión: martes", "Reunión: martes"),
    ],
)
def test_subject_prefixes_are_normalised(raw, expected):
    assert normalise_subject(raw) == expected


def test_reply_subject_has_one_prefix():
    assert reply_subject("RE: Re: Order 5") == "Re: Order 5"


def test_thread_refs_put_in_reply_to_first_then_newest_reference():
    refs = thread_refs("<c@x>", "<a@x> <b@x>\r\n <c@x>")
    assert refs == ("c@x", "b@x", "a@x")


def test_reply_tokens_are_signed_and_case_insensitive():
    token = reply_token("k" * 20, 77)
    assert verify_reply_token("k" * 20, token) == 77
    assert verify_reply_token("k" * 20, token.upper()) == 77  # some systems upper-case
    assert verify_reply_token("j" * 20, token) is None
    assert verify_reply_token("", token) is None
    assert len(f"reply+{reply_token('k' * 20, 10**12)}") <= 64  # RFC 5321 local-part limit


def test_reply_address_uses_the_reply_domain_or_plus_tags_the_inbox():
    assert reply_address(
        inbox_address="help@a.example", reply_domain="r.example", token="1.ab"
    ) == ("reply+1.ab@r.example")
    assert reply_address(inbox_address="help@a.example", reply_domain="", token="1.ab") == (
        "help+1.ab@a.example"
    )


def test_authentication_results_parsing_ignores_comments():
    parsed = parse_header(
        "mx.example.com (version 2); spf=pass (sender IP is 1.2.3.4) "
        "smtp.mailfrom=a@b.example; dkim=fail (bad sig) header.d=b.example"
    )
    assert parsed is not None and parsed.authserv_id == "mx.example.com"
    assert [(r.method, r.result) for r in parsed.results] == [("spf", "pass"), ("dkim", "fail")]
    assert parsed.results[0].properties["smtp.mailfrom"] == "a@b.example"


@pytest.mark.parametrize(
    ("header", "trusted"),
    [
        ("mx.us; dmarc=pass header.from=shop.example", True),
        ("mx.us; dkim=pass header.d=shop.example", True),
        ("mx.us; dkim=pass header.d=mail.shop.example", False),  # stricter than DMARC: no PSL
        ("mx.us; dkim=pass header.d=other.example", False),  # not aligned with From
        ("mx.us; spf=pass smtp.mailfrom=bounce@shop.example", True),
        ("mx.us; spf=pass smtp.mailfrom=bounce@esp.example", False),
        ("mx.us; spf=softfail smtp.mailfrom=shop.example", False),
        ("evil.example; dmarc=pass header.from=shop.example", False),  # not our server
        ("mx.us; dkim=pass header.d=shop.example; dmarc=fail header.from=shop.example", False),
    ],
)
def test_sender_trust_needs_an_aligned_pass_from_our_server(header, trusted):
    assert (
        sender_authenticated([header], from_address="sales@shop.example", trusted_ids=["mx.us"])
        is trusted
    )


def test_a_subdomain_sender_aligns_with_its_organisation_signature():
    assert sender_authenticated(
        ["mx.us; dkim=pass header.d=shop.example"],
        from_address="sales@eu.shop.example",
        trusted_ids=["MX.US"],
    )


def test_plain_replies_and_signatures():
    text = "Sounds good.\n\nOn Mon, Nov 3, 2025 at 10:15 AM Support <s@x.example> wrote:\n> Hi\n"
    assert visible_reply(text) == "Sounds good."
    assert visible_reply("Great, thanks!\n\n-- \nAna Pérez\nTel 555\n") == "Great, thanks!"
    assert visible_reply("> only a quote\n") == "> only a quote"  # never empty: keep it all
