"""SSRF at connect time: the EHR clients refuse special addresses and connect to exactly what was resolved and checked.

DNS answers are played by a resolver handed to the app's own transport (or by the operating system's resolver
function, for rebinding); the Oracle stand-in at 127.0.0.1 shows whether a connection was made.
"""

from __future__ import annotations

import socket

import httpx
import pytest

from shared.ehr_hosts import UntrustedEhrHost
from shared.errors import DependencyFailed
from shared.fhir import FhirClient
from shared.http import EhrTransport, dependency
from tests.integration.reminders_world import AppSettings

# An address the sandbox allows (the stand-in) next to one that must never be called: any connection at all would
# reach the stand-in first, so a refusal with no request there proves the whole answer was refused.
SPECIAL_ADDRESSES = {
    "azure-wire-server": "168.63.129.16",
    "cloud-metadata": "169.254.169.254",
    "6to4-embedding-metadata": "2002:a9fe:a9fe::1",
    "teredo": "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "nat64-embedding-metadata": "64:ff9b::a9fe:a9fe",
    "local-use-nat64": "64:ff9b:1::a9fe:a9fe",
    "ipv4-compatible-ipv6": "::a9fe:a9fe",
    "carrier-grade-nat": "100.64.0.1",
    "this-network": "0.1.2.3",
    "reserved-class-e": "240.0.0.1",
    "ipv6-link-local": "fe80::1",
}


def metadata_url(sandbox) -> str:
    return f"{sandbox.world.fhir_base()}/metadata"


@pytest.mark.parametrize("address", SPECIAL_ADDRESSES.values(), ids=SPECIAL_ADDRESSES.keys())
def test_a_host_resolving_to_a_special_address_is_not_called(sandbox, oracle, app_env, address):
    """A trusted EHR host name whose DNS answer includes a metadata, wire-server or IPv4-embedding address."""
    before = oracle.requests_by_host["localhost"]
    with httpx.Client(transport=EhrTransport(lambda _host, _port: ["127.0.0.1", address]), trust_env=False,
                      timeout=5) as ehr, pytest.raises(DependencyFailed) as refused, dependency("fhir"):
        ehr.get(metadata_url(sandbox))
    assert "resolves to a private or special address" in refused.value.message
    assert oracle.requests_by_host["localhost"] == before


def test_loopback_is_refused_when_private_hosts_are_not_allowed(sandbox, oracle):
    """A trusted EHR host name that resolves to loopback, in a deployment (ALLOW_PRIVATE_FHIR_HOSTS off)."""
    applied = AppSettings({**sandbox.settings_env, "ALLOW_PRIVATE_FHIR_HOSTS": "false"})
    before = oracle.requests_by_host["localhost"]
    try:
        with pytest.raises(DependencyFailed) as refused:
            FhirClient(sandbox.world.fhir_base(), "a-user-token").appointment("1")
    finally:
        applied.undo()
    assert refused.value.status == 502 and "resolves to a private or special address" in refused.value.message
    assert oracle.requests_by_host["localhost"] == before


def test_dns_rebinding_between_check_and_connect_is_not_followed(sandbox, oracle, app_env, monkeypatch):
    """DNS rebinding: the first answer passes the check, a second lookup would answer a private address."""
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host, port, *args, **kwargs):
        if host[:1].isdigit() or ":" in host:  # an address literal needs no DNS: the socket layer parses it
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        answer = "127.0.0.1" if len(lookups) == 1 else "10.255.255.1"
        return real_getaddrinfo(answer, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    before = oracle.requests_by_host["localhost"]
    with httpx.Client(transport=EhrTransport(), trust_env=False, timeout=5) as ehr:
        response = ehr.get(metadata_url(sandbox))
    assert response.status_code == 200 and response.json()["resourceType"] == "CapabilityStatement"
    assert lookups == ["localhost"], "one lookup, and the connection went to its (checked) answer"
    assert oracle.requests_by_host["localhost"] == before + 1, "TLS still named localhost, so the certificate held"


def test_plain_http_to_a_trusted_host_is_refused(sandbox, oracle, app_env):
    """Downgrade of an EHR address to http:// (the bearer token would travel in clear)."""
    before = sum(oracle.requests_by_host.values())
    insecure = sandbox.world.fhir_base().replace("https://", "http://")
    with pytest.raises(UntrustedEhrHost) as refused:
        FhirClient(insecure, "a-user-token").appointment("1")
    assert refused.value.status == 502 and "does not use https" in refused.value.message
    assert sum(oracle.requests_by_host.values()) == before
