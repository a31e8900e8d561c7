"""Email addresses from Patient.telecom: usable ones kept, others refused; masked for the provider page."""

from __future__ import annotations

import pytest

from shared.email.address import masked, normalized
from shared.fhir import patient_from_fhir


@pytest.mark.parametrize(("given", "expected"), [
    (" Jane.Doe@Example.ORG ", "Jane.Doe@example.org"),
    ("a+b@sub.example.co.uk", "a+b@sub.example.co.uk"),
    ("not an address", None),
    ("two@@example.org", None),
    ("nobody@localhost", None),
    ("", None),
    (None, None),
])
def test_only_usable_addresses_are_sent_to(given, expected):
    assert normalized(given) == expected


def test_the_provider_sees_the_address_masked():
    assert masked("jane.doe@example.org") == "j\u2022\u2022\u2022@e\u2022\u2022\u2022.org"


def test_the_current_home_address_is_preferred_to_work_and_old_ones():
    patient = patient_from_fhir({"id": "1", "telecom": [
        {"system": "email", "value": "old@example.org", "use": "home", "period": {"end": "2020-01-01"}},
        {"system": "email", "value": "work@example.org", "use": "work", "rank": "1"},
        {"system": "email", "value": "home@example.org", "use": "home", "rank": "2"},
        {"system": "phone", "value": "8165550104", "use": "home"},
    ]})
    assert patient.email == "home@example.org"
    assert patient.mobile == ""
