"""Meta webhooks (WhatsApp Cloud API, Messenger, Instagram): signature, handshake, dedupe key.

Meta's "Webhooks: Getting started" document:

- every POST carries `X-Hub-Signature-256: sha256=<lowercase hex HMAC-SHA256(app secret,
  payload)>` computed over the body exactly as sent. Meta escapes non-ASCII characters as
  `\\uXXXX` (and `/` as `\\/`) in that body, so verifying over re-serialised JSON fails: only the
  raw bytes count. The legacy `X-Hub-Signature` (SHA-1) header alone is refused.
- the GET verification request carries `hub.mode=subscribe`, `hub.verify_token` and
  `hub.challenge`; the endpoint answers 200 with the challenge as the plain body when the token is
  the one configured, and 403 otherwise. The dotted names are read from the raw query string
  because some frameworks turn `hub.mode` into nested keys.

No domain knowledge lives here, so the three Meta channels share it without knowing each other.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import parse_qsl

SIGNATURE_HEADER = "X-Hub-Signature-256"
LEGACY_SIGNATURE_HEADER = "X-Hub-Signature"
_PREFIX = "sha256="


class MetaSignatureError(Exception):
    """The call was not signed with the app secret (or not signed the way Meta signs)."""


def sign(app_secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value Meta sends for `body` (used by fakes and tests)."""
    return _PREFIX + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(
    app_secrets: Iterable[str],
    body: bytes,
    *,
    signature: str | None,
    legacy_signature: str | None = None,
) -> None:
    """Raise MetaSignatureError unless one of the app secrets signed the raw body.

    Several secrets are accepted so an app secret can be reset without losing webhooks in flight.
    """
    if not signature:
        if legacy_signature:
            raise MetaSignatureError("only the legacy SHA-1 signature was sent; SHA-256 required")
        raise MetaSignatureError("missing X-Hub-Signature-256")
    if not signature.startswith(_PREFIX):
        raise MetaSignatureError("the signature is not a sha256= signature")
    matched = False
    for secret in app_secrets:
        # Compare against every secret (no early exit), each in constant time.
        if secret and hmac.compare_digest(signature.encode(), sign(secret, body).encode()):
            matched = True
    if not matched:
        raise MetaSignatureError("bad signature")


def handshake_challenge(query_string: bytes, verify_token: str) -> str | None:
    """The challenge to echo for a valid verification request, else None (answer 403)."""
    params = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    token = params.get("hub.verify_token", "")
    challenge = params.get("hub.challenge")
    if params.get("hub.mode") != "subscribe" or challenge is None or not verify_token:
        return None
    if not hmac.compare_digest(token.encode(), verify_token.encode()):
        return None
    return challenge


def body_key(body: bytes) -> str:
    """The dedupe key of a raw webhook: Meta redelivers the same bytes, so hash them.

    Messages and statuses inside are deduplicated again by their own ids (wamid, mid), which
    also catches a redelivery that batched the same event with different neighbours.
    """
    return "sha256:" + hashlib.sha256(body).hexdigest()
