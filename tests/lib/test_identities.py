import pytest

from rapport.lib.identities import InvalidIdentity, normalise_email, normalise_phone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1 (415) 555-0100", None, "+14155550100"),
        ("415-555-0100", "US", "+14155550100"),
        ("612 345 678", "ES", "+34612345678"),
        ("whatsapp:+34612345678", None, "+34612345678"),
        ("34612345678", None, "+34612345678"),  # WhatsApp's wa_id has no plus
        ("34612345678", "ES", "+34612345678"),
        ("0034612345678", "ES", "+34612345678"),  # a caller id with the international prefix
        ("+34 612-34-56-78", "US", "+34612345678"),
        # Telegram shares the user's own number without a plus, whatever the account's region.
        ("79001234567", "ES", "+79001234567"),
        ("447911123456", "US", "+447911123456"),
        ("14155550100", "ES", "+14155550100"),
        # A national number stays national to the account's region.
        ("4155550100", "US", "+14155550100"),
        ("07700 900123", "GB", "+447700900123"),
    ],
)
def test_phone_numbers_become_e164(raw, region, expected):
    assert normalise_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["", "hello", "12"])
def test_nonsense_is_not_a_phone(raw):
    with pytest.raises(InvalidIdentity):
        normalise_phone(raw, "US")


def test_emails_are_trimmed_and_case_folded():
    assert normalise_email("  Ana.Ruiz@Example.COM ") == "ana.ruiz@example.com"


@pytest.mark.parametrize(
    "raw",
    ["ana@example.com", "ANA@EXAMPLE.COM", " Ana@Example.com\t", "ana@EXAMPLE.com"],
)
def test_one_address_however_it_is_written_is_one_value(raw):
    """The email channel, the widget and the API each write it their own way."""
    assert normalise_email(raw) == "ana@example.com"


def test_unicode_addresses_are_composed_and_folded():
    decomposed = "Jose\u0301@Example.com"  # e + combining accent, as some keyboards send it
    assert normalise_email(decomposed) == normalise_email("JOSÉ@example.com") == "josé@example.com"


def test_not_an_email():
    with pytest.raises(InvalidIdentity):
        normalise_email("ana at example")
