"""Twilio-compatible webhook signatures (SMS, MMS, voice and their status callbacks).

Twilio's "Secure webhooks" document: `X-Twilio-Signature` is base64(HMAC-SHA1(auth token,
data)), where data is the full URL Twilio requested (scheme, host, path and query string, the
query kept exactly as sent) followed by every POST parameter sorted by name, each appended as
name + value with no separator. A JSON-bodied webhook (error 57012's page) instead carries a
`bodySHA256` query parameter, the hex SHA-256 of the raw body, and only the URL is signed.

Twilio's own validators accept the URL with and without the port because "signature
generation on the back end is inconsistent". We accept exactly that and no more: the scheme's
default port (:443, :80) present or absent. A signature made for another port never passes.

No domain knowledge lives here, so the SMS and voice channels share it without knowing each
other; fakes and tests sign with the same functions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from urllib.parse import parse_qsl, urlsplit, urlunsplit

SIGNATURE_HEADER = "X-Twilio-Signature"
BODY_HASH_PARAM = "bodySHA256"
_DEFAULT_PORTS = {"https": 443, "http": 80}


class TwilioSignatureError(Exception):
    """The call was not signed with the auth token for this URL."""


def compute_signature(token: str, url: str, params: Sequence[tuple[str, str]] = ()) -> str:
    """The `X-Twilio-Signature` Twilio sends for `url` and POST `params`."""
    data = url
    names = sorted({name for name, _ in params})
    for name in names:
        # A repeated name contributes every value, in sorted order (Twilio's validators).
        for value in sorted(value for n, value in params if n == name):
            data += name + value
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def json_webhook_url(url: str, body: bytes) -> str:
    """The URL Twilio calls for a JSON body: `bodySHA256` added to its query string."""
    separator = "&" if urlsplit(url).query else "?"
    return f"{url}{separator}{BODY_HASH_PARAM}={body_sha256(body)}"


def url_variants(url: str) -> list[str]:
    """The URL as requested, and with the scheme's default port added or removed."""
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    variants = [url]
    if default is None or parts.hostname is None:
        return variants
    host = parts.netloc.rsplit("@", 1)[-1]
    if parts.port is None:
        variants.append(urlunsplit(parts._replace(netloc=f"{host}:{default}")))
    elif parts.port == default:
        bare = host[: host.rfind(":")]
        variants.append(urlunsplit(parts._replace(netloc=bare)))
    return variants


def _signed_params(url: str, body: bytes) -> list[tuple[str, str]]:
    """The parameters that take part in the signature; checks `bodySHA256` for JSON bodies."""
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    expected_hash = query.get(BODY_HASH_PARAM)
    if expected_hash is not None:
        if not hmac.compare_digest(expected_hash.lower(), body_sha256(body)):
            raise TwilioSignatureError("the body does not match bodySHA256")
        return []
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise TwilioSignatureError("the form body is not UTF-8") from exc


def verify(tokens: Iterable[str], url: str, body: bytes, signature: str | None) -> None:
    """Raise TwilioSignatureError unless one of the tokens signed this call.

    Several tokens are accepted so the auth token can be rotated (Twilio's secondary token)
    without refusing webhooks in flight. Every comparison is constant-time and none stops early.
    """
    if not signature:
        raise TwilioSignatureError(f"missing {SIGNATURE_HEADER}")
    params = _signed_params(url, body)
    matched = False
    for token in tokens:
        if not token:
            continue
        for candidate in url_variants(url):
            expected = compute_signature(token, candidate, params)
            matched |= hmac.compare_digest(expected.encode(), signature.encode())
    if not matched:
        raise TwilioSignatureError("the signature does not match")
