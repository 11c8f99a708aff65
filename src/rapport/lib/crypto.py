"""Signing, hashing and encryption at rest, all keyed from the one secret key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


class DecryptionError(Exception):
    """Stored ciphertext could not be decrypted with the current secret key."""


def derive_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose, so one leaked derived key does not reveal the others."""
    return hmac.new(secret.encode(), f"rapport:{purpose}".encode(), hashlib.sha256).digest()


class SecretBox:
    """Authenticated encryption (Fernet) of small JSON values such as channel secrets."""

    def __init__(self, secret: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(secret, "secret-box")))

    def encrypt_json(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(value, sort_keys=True).encode()).decode()

    def decrypt_json(self, token: str) -> dict[str, Any]:
        try:
            data = json.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError) as exc:
            raise DecryptionError("stored secret cannot be decrypted with this key") from exc
        if not isinstance(data, dict):
            raise DecryptionError("stored secret is not an object")
        return data


def hmac_sha256_hex(secret: str | bytes, message: str | bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    data = message.encode() if isinstance(message, str) else message
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    a_bytes = a.encode() if isinstance(a, str) else a
    b_bytes = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_bytes, b_bytes)


def sha256_hex(value: str | bytes) -> str:
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).hexdigest()


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def purpose_token(secret: str, purpose: str, value: str | int) -> str:
    """A short, stable HMAC naming one value for one purpose (e.g. a public attachment link)."""
    digest = hmac.new(derive_key(secret, purpose), str(value).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def check_purpose_token(secret: str, purpose: str, value: str | int, token: str) -> bool:
    return constant_time_equals(purpose_token(secret, purpose, value), token)
