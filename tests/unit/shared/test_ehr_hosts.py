"""Which hosts count as trusted EHR hosts: exact names, and dotted suffixes that cover subdomains only."""

from __future__ import annotations

import pytest

from shared.ehr_hosts import UntrustedEhrHost, host_is_trusted, require_trusted, url_is_trusted
from shared.runtime import reset_process_state

ORACLE = (".cerner.com",)


@pytest.mark.parametrize("host", ["fhir-ehr.cerner.com", "authorization.cerner.com", "FHIR-EHR-CODE.Cerner.COM",
                                  "fhir-ehr.cerner.com."])
def test_hosts_under_a_dotted_entry_are_trusted(host):
    assert host_is_trusted(host, ORACLE)


@pytest.mark.parametrize("host", ["cerner.com", "evilcerner.com", "cerner.com.evil.example", "fhir-ehr.cerner.co",
                                  "", "127.0.0.1"])
def test_lookalikes_and_the_bare_domain_are_not(host):
    assert not host_is_trusted(host, ORACLE)


def test_an_entry_without_a_dot_is_one_exact_host():
    assert host_is_trusted("localhost", ("localhost",))
    assert not host_is_trusted("a.localhost", ("localhost",))
    assert not host_is_trusted("localhost.evil.example", ("localhost",))


@pytest.mark.parametrize("url", ["http://fhir-ehr.cerner.com/r4/t", "https://user:pw@fhir-ehr.cerner.com/r4/t",
                                 "https://fhir-ehr.cerner.com:99999/r4/t", "https://[::1/r4/t", "/r4/t", ""])
def test_only_plain_https_urls_qualify(url, monkeypatch):
    monkeypatch.setenv("TRUSTED_EHR_HOSTS", ".cerner.com")
    reset_process_state()
    try:
        assert not url_is_trusted(url)
        with pytest.raises(UntrustedEhrHost):
            require_trusted(url, "token endpoint")
    finally:
        monkeypatch.undo()
        reset_process_state()
