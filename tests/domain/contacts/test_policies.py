"""Identity claims are normalised by one pure rule, whoever reads or writes them."""

import pytest

from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.contacts.policies import normalise_claim
from rapport.domain.errors import InvalidInput
from rapport.domain.ports import IdentityClaim


def _claim(kind, value, verification=Verification.unverified):
    return IdentityClaim(kind, value, verification)


@pytest.mark.parametrize(
    ("kind", "value", "region", "expected"),
    [
        (IdentityKind.phone, "612 34 56 78", "ES", "+34612345678"),
        (IdentityKind.phone, "+1 415 555 0123", None, "+14155550123"),
        (IdentityKind.email, "  Ana@Example.COM ", "ES", "ana@example.com"),
        (IdentityKind.external, "  cust-1 ", "ES", "cust-1"),
    ],
)
def test_a_claim_is_put_in_canonical_form(kind, value, region, expected):
    normalised = normalise_claim(_claim(kind, value, Verification.verified), default_region=region)
    assert normalised == _claim(kind, expected, Verification.verified)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (IdentityKind.phone, "not a number"),
        (IdentityKind.email, "nobody@"),
        (IdentityKind.external, "   "),
    ],
)
def test_a_claim_that_names_nobody_is_invalid_input_on_its_field(kind, value):
    with pytest.raises(InvalidInput) as refused:
        normalise_claim(_claim(kind, value), default_region="ES")
    assert refused.value.field == kind
