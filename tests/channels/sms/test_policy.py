"""SMS length, encoding and segments, as a handset counts them; consent is required."""

import pytest

from rapport.channels.sms import SmsChannel
from rapport.channels.sms.policy import Encoding, SmsNotes

POLICY = SmsChannel.policy


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", Encoding.gsm7, 0),
        ("a" * 160, Encoding.gsm7, 1),
        ("a" * 161, Encoding.gsm7, 2),
        ("a" * 306, Encoding.gsm7, 2),
        ("a" * 307, Encoding.gsm7, 3),
        ("Precio: 10€", Encoding.gsm7, 1),  # € is in the extension table (two septets)
        ("{" * 80, Encoding.gsm7, 1),  # 160 septets exactly
        ("{" * 81, Encoding.gsm7, 2),
        ("a" * 152 + "€", Encoding.gsm7, 1),  # 154 septets: fits one segment of 160
        ("a" * 159 + "€", Encoding.gsm7, 2),  # the escape pair is never split
        ("Ñandú: ¿qué tal?", Encoding.ucs2, 1),  # ú and á are not GSM-7 (é and ñ are)
        ("ó" * 70, Encoding.ucs2, 1),
        ("ó" * 71, Encoding.ucs2, 2),
        ("ó" * 134, Encoding.ucs2, 2),
        ("ó" * 135, Encoding.ucs2, 3),
        ("😊" * 35, Encoding.ucs2, 1),  # a surrogate pair is two UTF-16 units
        ("😊" * 36, Encoding.ucs2, 2),
        ("a" * 66 + "😊", Encoding.ucs2, 1),  # 68 units: fits alone
        ("a" * 66 + "😊" * 2 + "a" * 67, Encoding.ucs2, 3),  # the pair moves to segment 2
    ],
)
def test_segments(text, encoding, segments):
    assert POLICY.compose_notes(text) == SmsNotes(len(text), encoding, segments)


def test_sms_requires_consent_and_reaches_phone_numbers():
    assert POLICY.consent_required
    assert POLICY.identity_kind == "phone"
    assert POLICY.max_length == 1600
