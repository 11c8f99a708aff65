"""Twilio signatures: ours agree with the provider's reference validator, and refuse tampering."""

from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from rapport.lib.twilio_webhooks import (
    TwilioSignatureError,
    compute_signature,
    json_webhook_url,
    url_variants,
    verify,
)

TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+12349013030"),
    ("Digits", "1234"),
    ("From", "+12349013030"),
    ("To", "+18005551212"),
]


class MultiDict(dict):
    """What the reference validator reads repeated form names from (getall)."""

    def __init__(self, pairs):
        super().__init__()
        self.pairs = pairs
        for name, value in pairs:
            self[name] = value

    def getall(self, name):
        return [value for n, value in self.pairs if n == name]


def test_our_signature_is_the_reference_validators():
    reference = RequestValidator(TOKEN).compute_signature(URL, dict(PARAMS))
    # The worked example of Twilio's webhook security document signs to this value.
    assert compute_signature(TOKEN, URL, PARAMS) == reference == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_unicode_and_repeated_names_match_the_reference():
    params = [("Body", "¿Qué tal? 😊"), ("MediaUrl", "https://b"), ("MediaUrl", "https://a")]
    reference = RequestValidator(TOKEN).compute_signature(URL, MultiDict(params))
    assert compute_signature(TOKEN, URL, params) == reference


def test_verify_accepts_the_reference_signature_and_refuses_changes():
    signature = RequestValidator(TOKEN).compute_signature(URL, dict(PARAMS))
    verify([TOKEN], URL, urlencode(PARAMS).encode(), signature)
    tampered = urlencode([*PARAMS[:-1], ("To", "+18005551213")]).encode()
    for args in [
        ([TOKEN], URL, tampered, signature),  # a changed parameter
        ([TOKEN], URL.replace("foo=1", "foo=2"), urlencode(PARAMS).encode(), signature),  # query
        (["other"], URL, urlencode(PARAMS).encode(), signature),  # another tenant's token
        ([TOKEN], URL, urlencode(PARAMS).encode(), ""),  # missing
    ]:
        with pytest.raises(TwilioSignatureError):
            verify(*args)


def test_rotation_accepts_either_token():
    signature = compute_signature("old-token", URL, PARAMS)
    verify(["new-token", "old-token"], URL, urlencode(PARAMS).encode(), signature)
    verify(["", "old-token"], URL, urlencode(PARAMS).encode(), signature)


def test_default_ports_only():
    assert url_variants("https://x.example/hook?a=1") == [
        "https://x.example/hook?a=1",
        "https://x.example:443/hook?a=1",
    ]
    assert url_variants("http://x.example:80/h") == ["http://x.example:80/h", "http://x.example/h"]
    assert url_variants("https://x.example:8443/h") == ["https://x.example:8443/h"]
    signed_with_port = compute_signature(TOKEN, "https://x.example:443/h", PARAMS)
    verify([TOKEN], "https://x.example/h", urlencode(PARAMS).encode(), signed_with_port)
    other_port = compute_signature(TOKEN, "https://x.example:8443/h", PARAMS)
    with pytest.raises(TwilioSignatureError):
        verify([TOKEN], "https://x.example/h", urlencode(PARAMS).encode(), other_port)


def test_json_bodies_sign_the_url_with_the_body_hash():
    body = '{"messageSid": "SM1", "body": "héllo"}'.encode()
    url = json_webhook_url("https://x.example/hooks/sms/1", body)
    reference = RequestValidator(TOKEN)
    signature = reference.compute_signature(url, {})
    assert reference.validate(url, body.decode(), signature)
    verify([TOKEN], url, body, signature)
    with pytest.raises(TwilioSignatureError, match="bodySHA256"):
        verify([TOKEN], url, body + b" ", signature)
