"""One canonical form of a FHIR base URL: every alias of a Cerner tenant's URL is the same URL."""

from __future__ import annotations

import pytest

from shared.smart.fhir_url import NotAUrl, canonical_base_url, same_base_url

CANONICAL = "https://fhir-ehr.cerner.com/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d"


@pytest.mark.parametrize("alias", [
    CANONICAL,
    CANONICAL + "/",
    CANONICAL + "//",
    "HTTPS://FHIR-EHR.CERNER.COM/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d",
    "https://fhir-ehr.cerner.com:443/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d",
    "https://fhir-ehr.cerner.com./r4/ec2458f2-1e24-41c8-b71b-0e701af7583d",
    "https://fhir-ehr.cerner.com//r4///ec2458f2-1e24-41c8-b71b-0e701af7583d",
    "https://fhir-ehr.cerner.com/r4/./ec2458f2-1e24-41c8-b71b-0e701af7583d",
    "https://fhir-ehr.cerner.com/dstu2/../r4/ec2458f2-1e24-41c8-b71b-0e701af7583d",
    "https://fhir-ehr.cerner.com/%72%34/ec2458f2-1e24-41c8-b71b-0e701af7583d",
    "  https://fhir-ehr.cerner.com/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d  ",
])
def test_every_alias_has_the_one_canonical_form(alias):
    assert canonical_base_url(alias) == CANONICAL


@pytest.mark.parametrize("url,canonical", [
    ("https://localhost:8441/r4/T/", "https://localhost:8441/r4/T"),
    ("http://fhir.example:80/r4/x", "http://fhir.example/r4/x"),
    ("https://fhir.example:8443/r4/x", "https://fhir.example:8443/r4/x"),
    ("https://[::1]:8441/r4/x", "https://[::1]:8441/r4/x"),
    ("https://fhir.example/r4/a%2fb", "https://fhir.example/r4/a%2Fb"),
    ("https://bücher.example/r4/x", "https://xn--bcher-kva.example/r4/x"),
])
def test_ports_escapes_and_names_that_differ_stay_different(url, canonical):
    assert canonical_base_url(url) == canonical


def test_the_path_keeps_its_case():
    assert not same_base_url("https://fhir.example/r4/Tenant", "https://fhir.example/r4/tenant")


@pytest.mark.parametrize("text", ["", "fhir.example/r4", "https://", "https://fhir.example:99999/r4", "not a url"])
def test_text_that_is_no_url_is_refused(text):
    with pytest.raises(NotAUrl):
        canonical_base_url(text)


def test_text_that_is_no_url_is_never_the_same_base_url():
    assert not same_base_url("not a url", "not a url")
    assert not same_base_url(CANONICAL, "https://")
