"""Consent keywords: which words count, in which language, and who answers them."""

import pytest

from rapport.channels.sms.consent import KeywordKind, classify, twiml


@pytest.mark.parametrize(
    ("body", "kind", "language", "provider_answers"),
    [
        ("STOP", KeywordKind.opt_out, "en", True),
        (" stop ", KeywordKind.opt_out, "en", True),
        ("Unsubscribe!", KeywordKind.opt_out, "en", True),
        ("STOPALL", KeywordKind.opt_out, "en", True),
        ("cancel", KeywordKind.opt_out, "en", True),
        ("End", KeywordKind.opt_out, "en", True),
        ("QUIT", KeywordKind.opt_out, "en", True),
        ("START", KeywordKind.opt_in, "en", True),
        ("yes", KeywordKind.opt_in, "en", True),
        ("UNSTOP", KeywordKind.opt_in, "en", True),
        ("HELP", KeywordKind.help, "en", True),
        ("info", KeywordKind.help, "en", True),
        ("BAJA", KeywordKind.opt_out, "es", False),
        ("alto", KeywordKind.opt_out, "es", False),
        ("Alta", KeywordKind.opt_in, "es", False),
        ("INICIO", KeywordKind.opt_in, "es", False),
        ("¡Ayuda!", KeywordKind.help, "es", False),
    ],
)
def test_keywords(body, kind, language, provider_answers):
    keyword = classify(body)
    assert keyword is not None
    assert (keyword.kind, keyword.language, keyword.provider_answers) == (
        kind,
        language,
        provider_answers,
    )


@pytest.mark.parametrize("body", ["stop it", "Please STOP", "", "Stopping by later", "yes please"])
def test_sentences_are_not_keywords(body):
    assert classify(body) is None


def test_advanced_opt_out_names_the_keyword_whatever_the_word():
    keyword = classify("Arrêt", "STOP")
    assert keyword.kind == KeywordKind.opt_out and keyword.provider_answers


def test_replies_are_in_the_customers_language_and_escaped_in_twiml():
    assert classify("BAJA").reply.startswith("Te has dado de baja")
    assert classify("STOP").reply.startswith("You have successfully been unsubscribed")
    assert twiml(None) == b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert b"<Message>a &amp; b &lt;c&gt;</Message>" in twiml("a & b <c>")
