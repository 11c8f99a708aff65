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


def test_not_an_email():
    with pytest.raises(InvalidIdentity):
        normalise_email("ana at example")
