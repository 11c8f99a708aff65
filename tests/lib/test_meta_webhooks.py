"""Meta's webhook signature and verification handshake, and the Graph error classification."""

from __future__ import annotations

import json

import pytest

from rapport.lib import meta_graph, meta_webhooks
from rapport.lib.meta_webhooks import MetaSignatureError

SECRET = "app-secret-0123456789"
# The body as Meta sends it: non-ASCII escaped, slashes escaped.
BODY = b'{"object":"page","text":"\\u00a1Hola! \\ud83d\\ude0a","url":"https:\\/\\/x.example"}'


def test_valid_signature_over_the_raw_body() -> None:
    signature = meta_webhooks.sign(SECRET, BODY)
    assert signature.startswith("sha256=") and signature == signature.lower()
    meta_webhooks.verify_signature([SECRET], BODY, signature=signature)


def test_previous_secret_is_accepted_during_a_reset() -> None:
    signature = meta_webhooks.sign("old-secret-0123", BODY)
    meta_webhooks.verify_signature([SECRET, "old-secret-0123"], BODY, signature=signature)


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "sha256=" + "0" * 64,
        meta_webhooks.sign("another-secret", BODY),
        meta_webhooks.sign(SECRET, BODY).removeprefix("sha256="),  # hex without the prefix
        meta_webhooks.sign(SECRET, BODY).upper(),
    ],
)
def test_bad_or_missing_signatures_are_refused(signature: str | None) -> None:
    with pytest.raises(MetaSignatureError):
        meta_webhooks.verify_signature([SECRET], BODY, signature=signature)


def test_legacy_sha1_signature_alone_is_refused() -> None:
    with pytest.raises(MetaSignatureError, match="SHA-1"):
        meta_webhooks.verify_signature(
            [SECRET], BODY, signature=None, legacy_signature="sha1=" + "a" * 40
        )


def test_empty_secrets_never_match() -> None:
    with pytest.raises(MetaSignatureError):
        meta_webhooks.verify_signature(["", ""], BODY, signature=meta_webhooks.sign("", BODY))


def test_re_serialised_json_with_emoji_fails() -> None:
    """Verifying over json.dumps(json.loads(body)) is the classic mistake: it must not pass."""
    signature = meta_webhooks.sign(SECRET, BODY)
    for reserialised in (
        json.dumps(json.loads(BODY)).encode(),
        json.dumps(json.loads(BODY), ensure_ascii=False, separators=(",", ":")).encode(),
    ):
        assert reserialised != BODY
        with pytest.raises(MetaSignatureError):
            meta_webhooks.verify_signature([SECRET], reserialised, signature=signature)


def test_handshake_answers_the_challenge() -> None:
    query = b"hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=my-token-123"
    assert meta_webhooks.handshake_challenge(query, "my-token-123") == "1158201444"


@pytest.mark.parametrize(
    "query",
    [
        b"hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=wrong",
        b"hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token=my-token-123",
        b"hub.mode=subscribe&hub.verify_token=my-token-123",
        b"hub.challenge=1&hub.verify_token=my-token-123",
        b"",
    ],
)
def test_handshake_refuses_anything_else(query: bytes) -> None:
    assert meta_webhooks.handshake_challenge(query, "my-token-123") is None


def test_handshake_never_matches_an_empty_configured_token() -> None:
    assert meta_webhooks.handshake_challenge(b"hub.mode=subscribe&hub.challenge=1", "") is None


def test_body_key_is_stable_per_body() -> None:
    assert meta_webhooks.body_key(BODY) == meta_webhooks.body_key(bytes(BODY))
    assert meta_webhooks.body_key(BODY) != meta_webhooks.body_key(BODY + b" ")


@pytest.mark.parametrize(
    ("status", "body", "retryable"),
    [
        (429, {}, True),
        (500, {}, True),
        (503, {"error": {"code": 2, "message": "Service temporarily unavailable"}}, True),
        (400, {"error": {"code": 130429, "message": "Rate limit hit"}}, True),
        (400, {"error": {"code": 131056, "message": "Pair rate limit hit"}}, True),
        (400, {"error": {"code": 999, "message": "x", "is_transient": True}}, True),
        (400, {"error": {"code": 131047, "message": "Re-engagement message"}}, False),
        (400, {"error": {"code": 100, "message": "Invalid parameter"}}, False),
        (401, {"error": {"code": 190, "message": "Invalid OAuth access token."}}, False),
        (400, "not json", False),
    ],
)
def test_graph_errors_are_retryable_or_final(status: int, body: object, retryable: bool) -> None:
    failure = meta_graph.classify(status, body, retry_after=None)
    assert failure.retryable is retryable
    if not retryable:
        assert failure.retry_after is None


def test_retry_after_is_honoured_and_details_are_shown() -> None:
    failure = meta_graph.classify(429, {}, retry_after=7)
    assert failure.retry_after == 7
    body = {
        "error": {
            "code": 131047,
            "message": "Re-engagement message",
            "error_data": {"details": "More than 24 hours have passed."},
        }
    }
    failure = meta_graph.classify(400, body, retry_after=None)
    assert failure.message == "(#131047) Re-engagement message: More than 24 hours have passed."
