"""FHIR base URL checks that need no network: URL shape, https, and which addresses are refused."""

from __future__ import annotations

import pytest

from shared.portal.validation import FhirUrlInvalid, check_address, check_trusted_host, check_url, refused_address
from shared.runtime import reset_process_state


@pytest.mark.parametrize("address", ["10.1.2.3", "172.16.0.1", "192.168.1.10", "127.0.0.1", "::1", "fd00::1",
                                     "::ffff:10.0.0.1"])
def test_private_and_loopback_addresses_are_refused_unless_the_sandbox_allows_them(address):
    assert refused_address(address, allow_private=False)
    assert not refused_address(address, allow_private=True)


@pytest.mark.parametrize("address", ["169.254.169.254", "fe80::1%eth0", "0.0.0.0", "224.0.0.1", "::ffff:169.254.1.1"])
def test_link_local_multicast_and_unspecified_are_refused_even_in_the_sandbox(address):
    assert refused_address(address, allow_private=True)


@pytest.mark.parametrize("address", ["20.42.65.90", "2603:1030:20e:3::23c"])
def test_public_addresses_pass(address):
    assert not refused_address(address, allow_private=False)


@pytest.mark.parametrize("url,check", [
    ("", "url"), ("fhir-ehr.cerner.com/r4/t", "url"), ("https://", "url"), ("https://host:99999/r4/t", "url"),
    ("https://user:pw@fhir.example/r4/t", "url"), ("https://fhir.example/r4/t#x", "url"),
    ("http://fhir.example/r4/t", "https"), ("ftp://fhir.example/r4/t", "https"),
])
def test_url_shape_failures_name_their_check(url, check):
    with pytest.raises(FhirUrlInvalid) as failure:
        check_url(url)
    assert failure.value.check == check and failure.value.message.startswith("FHIR URL isn't valid:")
    assert failure.value.as_dict()["check"] == check and failure.value.status == 400


def test_a_cerner_r4_base_url_passes_the_shape_checks():
    assert check_url(" https://fhir-ehr.cerner.com/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d/ ").hostname == \
        "fhir-ehr.cerner.com"


@pytest.fixture()
def production_settings(monkeypatch):
    """The defaults of a deployment: Oracle Health hosts only, no private addresses."""
    monkeypatch.delenv("TRUSTED_EHR_HOSTS", raising=False)
    monkeypatch.delenv("ALLOW_PRIVATE_FHIR_HOSTS", raising=False)
    reset_process_state()
    yield
    monkeypatch.undo()
    reset_process_state()


@pytest.mark.parametrize("url", ["https://fhir-ehr.cerner.com/r4/t", "https://fhir-ehr-code.cerner.com/r4/t",
                                 "https://FHIR-EHR.Cerner.com./r4/t"])
def test_oracle_health_hosts_are_trusted_by_default(production_settings, url):
    check_trusted_host(check_url(url))


@pytest.mark.parametrize("url", ["https://cerner.com.evil.example/r4/t", "https://evilcerner.com/r4/t",
                                 "https://fhir.example/r4/t", "https://10.0.0.5/r4/t"])
def test_other_hosts_are_not_trusted_by_default(production_settings, url):
    with pytest.raises(FhirUrlInvalid) as refused:
        check_trusted_host(check_url(url))
    assert refused.value.check == "trusted_host" and "not a trusted Oracle Health host" in refused.value.message


def test_a_host_resolving_to_loopback_fails_the_address_check_in_production(production_settings):
    with pytest.raises(FhirUrlInvalid) as refused:
        check_address(check_url("https://localhost/r4/t"))
    assert refused.value.check == "address" and "resolves to a private, loopback or link-local" in refused.value.message


def test_an_unresolvable_host_fails_the_address_check(production_settings):
    with pytest.raises(FhirUrlInvalid) as refused:
        check_address(check_url("https://no-such-host.invalid/r4/t"))
    assert refused.value.check == "address" and "could not be resolved" in refused.value.message


@pytest.mark.parametrize("address", ["168.63.129.16", "2002:a9fe:a9fe::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                                     "64:ff9b::a9fe:a9fe", "64:ff9b:1::1", "100.64.0.1", "0.1.2.3", "240.0.0.1",
                                     "255.255.255.255", "::a9fe:a9fe", "not-an-address"])
def test_special_ranges_are_refused_even_in_the_sandbox(address):
    assert refused_address(address, allow_private=True)
