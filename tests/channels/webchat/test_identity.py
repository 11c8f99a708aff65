"""Widget identity: HMAC user_hash and short-lived JWTs; every bad proof is refused alike."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rapport.channels.webchat.config import WebchatConfig
from rapport.channels.webchat.identity import IdentityRefused, verify_jwt, verify_user_hash
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.lib.crypto import hmac_sha256_hex

SECRET = "site-identity-secret-0123456789abcdefgh"
cfg = WebchatConfig(identity_secret=SECRET, jwt_key=SECRET)


def test_hmac_of_the_user_id_verifies_it_and_leaves_the_email_a_claim():
    proven = verify_user_hash(
        cfg, user_id="u-42", email="ana@example.com", user_hash=hmac_sha256_hex(SECRET, "u-42")
    )
    assert [(c.kind, c.value, c.verification) for c in proven.claims] == [
        (IdentityKind.external, "u-42", Verification.verified),
        (IdentityKind.email, "ana@example.com", Verification.unverified),
    ]


def test_hmac_of_the_email_alone_verifies_the_email():
    proven = verify_user_hash(
        cfg,
        user_id="",
        email="ana@example.com",
        user_hash=hmac_sha256_hex(SECRET, "ana@example.com").upper(),
    )
    assert proven.claims[0].verification == Verification.verified


@pytest.mark.parametrize(
    "user_hash", ["", "   ", "0" * 64, hmac_sha256_hex("other-secret-0123456789", "u-42")]
)
def test_missing_blank_or_wrong_hash_is_refused(user_hash):
    with pytest.raises(IdentityRefused):
        verify_user_hash(cfg, user_id="u-42", email="", user_hash=user_hash)


def test_no_secret_configured_refuses_everything():
    with pytest.raises(IdentityRefused):
        verify_user_hash(
            WebchatConfig(), user_id="u-42", email="", user_hash=hmac_sha256_hex("", "u-42")
        )


def _token(claims: dict, key=SECRET, alg="HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def test_jwt_with_subject_email_and_name():
    token = _token(
        {
            "sub": "u-42",
            "email": "ana@example.com",
            "name": "Ana",
            "aud": "inbox-pub",
            "exp": int(time.time()) + 600,
        }
    )
    proven = verify_jwt(cfg, token=token, audience="inbox-pub")
    assert [c.verification for c in proven.claims] == [Verification.verified] * 2
    assert proven.name == "Ana"


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "u-42", "aud": "other-inbox", "exp": 600},
        {"sub": "u-42", "aud": "inbox-pub", "exp": -120},  # expired
        {"sub": "u-42", "aud": "inbox-pub", "exp": 3 * 3600},  # lives too long
        {"sub": "u-42", "aud": "inbox-pub"},  # no expiry
        {"aud": "inbox-pub", "exp": 600},  # no subject
    ],
)
def test_bad_jwts_are_refused(claims):
    if "exp" in claims:
        claims = {**claims, "exp": int(time.time()) + claims["exp"]}
    with pytest.raises(IdentityRefused):
        verify_jwt(cfg, token=_token(claims), audience="inbox-pub")


def test_jwt_signed_with_another_key_or_algorithm_is_refused():
    claims = {"sub": "u-42", "aud": "inbox-pub", "exp": int(time.time()) + 600}
    with pytest.raises(IdentityRefused):
        verify_jwt(
            cfg,
            token=_token(claims, key="another-secret-0123456789-0123456789"),
            audience="inbox-pub",
        )
    with pytest.raises(IdentityRefused):
        verify_jwt(cfg, token=jwt.encode(claims, None, algorithm="none"), audience="inbox-pub")


def test_jwt_signed_with_an_ec_key_verifies_with_the_pasted_public_key():
    private = ec.generate_private_key(ec.SECP256R1())
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    config = WebchatConfig.model_validate(
        {"jwt_key": " ".join(pem.split("\n")), "jwt_algorithm": "ES256"}
    )
    token = _token(
        {"sub": "u-7", "aud": "inbox-pub", "exp": int(time.time()) + 60}, key=private, alg="ES256"
    )
    assert verify_jwt(config, token=token, audience="inbox-pub").claims[0].value == "u-7"
