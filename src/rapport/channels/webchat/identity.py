"""Proof of who a visitor is, given by the customer's site: an HMAC `user_hash` or a short JWT.

PROVIDERS.md (website widget identity): `user_hash` is hex HMAC-SHA256(inbox secret, user id or
email); a JWT carries `sub`, `exp` at most one hour ahead and `aud` = the inbox's public token,
signed by the site's backend. A static hash never expires if leaked, so the JWT is preferred and
HMAC is kept for compatibility. Every failure is the same `IdentityRefused`, answered 401.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from rapport.channels.webchat.config import WebchatConfig
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.ports import IdentityClaim
from rapport.lib.crypto import constant_time_equals, hmac_sha256_hex

MAX_JWT_LIFETIME = 3600
LEEWAY_SECONDS = 30


class IdentityRefused(Exception):
    """The proof is missing, blank, wrong or expired. Nothing may change."""


@dataclass(frozen=True)
class Proven:
    claims: tuple[IdentityClaim, ...]  # verified first, then unverified extras
    name: str = ""


def _text(value: object, limit: int = 320) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def verify_user_hash(
    config: WebchatConfig, *, user_id: str, email: str, user_hash: str, name: str = ""
) -> Proven:
    """HMAC of the user id (or, without one, of the email); the other field stays a claim."""
    signed = user_id.strip() or email.strip()
    if not config.identity_secret or not signed or not user_hash.strip():
        raise IdentityRefused("missing identity proof")
    expected = hmac_sha256_hex(config.identity_secret, signed)
    if not constant_time_equals(expected, user_hash.strip().lower()):
        raise IdentityRefused("identity proof does not match")
    claims: list[IdentityClaim] = []
    if user_id.strip():
        claims.append(IdentityClaim(IdentityKind.external, user_id.strip(), Verification.verified))
        if email.strip():
            claims.append(IdentityClaim(IdentityKind.email, email.strip(), Verification.unverified))
    else:
        claims.append(IdentityClaim(IdentityKind.email, email.strip(), Verification.verified))
    return Proven(tuple(claims), _text(name, 200))


def verify_jwt(
    config: WebchatConfig, *, token: str, audience: str, now: float | None = None
) -> Proven:
    """A JWT signed by the site: `sub` (user id), optional `email` and `name`, all verified."""
    if not config.jwt_key or not token.strip():
        raise IdentityRefused("missing identity token")
    moment = time.time() if now is None else now
    try:
        claims = jwt.decode(
            token.strip(),
            config.jwt_key,
            algorithms=[config.jwt_algorithm],
            audience=audience,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "sub", "aud"], "verify_iat": False},
        )
    except (jwt.PyJWTError, ValueError) as exc:
        raise IdentityRefused(f"identity token refused: {type(exc).__name__}") from exc
    if float(claims["exp"]) > moment + MAX_JWT_LIFETIME + LEEWAY_SECONDS:
        raise IdentityRefused("identity token lives longer than one hour")
    if float(claims["exp"]) < moment - LEEWAY_SECONDS:  # checked by decode too; `now` is testable
        raise IdentityRefused("identity token expired")
    subject = _text(claims.get("sub"), 255)
    if not subject:
        raise IdentityRefused("identity token has no subject")
    found = [IdentityClaim(IdentityKind.external, subject, Verification.verified)]
    email = _text(claims.get("email"))
    if email:
        found.append(IdentityClaim(IdentityKind.email, email, Verification.verified))
    return Proven(tuple(found), _text(claims.get("name"), 200))
