"""Rapport's own webhook signature: `sha256=` + hex HMAC-SHA256(secret, "timestamp.body").

Used by the API channel in both directions and by outbound webhook subscriptions, so receivers
verify one scheme. Timestamps older than five minutes are refused to stop replays.
"""

from __future__ import annotations

import time

from rapport.lib.crypto import constant_time_equals, hmac_sha256_hex

SIGNATURE_HEADER = "X-Rapport-Signature"
TIMESTAMP_HEADER = "X-Rapport-Timestamp"
DELIVERY_HEADER = "X-Rapport-Delivery"
TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    pass


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> tuple[str, str]:
    """(timestamp, signature) headers for a body."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return stamp, "sha256=" + hmac_sha256_hex(secret, stamp.encode() + b"." + body)


def signed_headers(secret: str, body: bytes, *, delivery_id: str) -> dict[str, str]:
    """The headers of a signed JSON POST from Rapport: type, timestamp, signature, delivery id."""
    timestamp, signature = sign(secret, body)
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature,
        DELIVERY_HEADER: delivery_id,
    }


def verify(
    secrets: list[str],
    body: bytes,
    *,
    timestamp: str | None,
    signature: str | None,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless one of the secrets signed this body recently."""
    if not timestamp or not signature:
        raise SignatureError("missing signature or timestamp")
    if not timestamp.isdigit():
        raise SignatureError("malformed timestamp")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > TOLERANCE_SECONDS:
        raise SignatureError("stale timestamp")
    for secret in secrets:
        if secret and constant_time_equals(
            signature, "sha256=" + hmac_sha256_hex(secret, timestamp.encode() + b"." + body)
        ):
            return
    raise SignatureError("bad signature")
