import pytest

from rapport.lib import signatures
from rapport.lib.crypto import DecryptionError, SecretBox, check_purpose_token, purpose_token


def test_secret_box_round_trips_and_refuses_another_key():
    box = SecretBox("a" * 40)
    token = box.encrypt_json({"secret": "s3cr3t"})
    assert "s3cr3t" not in token
    assert box.decrypt_json(token) == {"secret": "s3cr3t"}
    with pytest.raises(DecryptionError):
        SecretBox("b" * 40).decrypt_json(token)


def test_purpose_tokens_do_not_cross_purposes():
    token = purpose_token("k" * 40, "attachment-link", 5)
    assert check_purpose_token("k" * 40, "attachment-link", 5, token)
    assert not check_purpose_token("k" * 40, "attachment-link", 6, token)
    assert not check_purpose_token("k" * 40, "reply-address", 5, token)


def test_rapport_signatures():
    stamp, signature = signatures.sign("secret", b"{}", timestamp=1_000_000)
    signatures.verify(["secret"], b"{}", timestamp=stamp, signature=signature, now=1_000_010)
    with pytest.raises(signatures.SignatureError, match="stale"):
        signatures.verify(["secret"], b"{}", timestamp=stamp, signature=signature, now=1_000_400)
    with pytest.raises(signatures.SignatureError, match="bad"):
        signatures.verify(["other"], b"{}", timestamp=stamp, signature=signature, now=1_000_010)
    with pytest.raises(signatures.SignatureError, match="missing"):
        signatures.verify(["secret"], b"{}", timestamp=stamp, signature="", now=1_000_010)
