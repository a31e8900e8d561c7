"""FHIR base URL validation: each check named, each failure a message that says what to fix."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit

import httpx

from shared.ehr_hosts import host_is_trusted, url_is_trusted
from shared.errors import ConnectorError, InvalidInput
from shared.http import client, refused_address
from shared.settings import get_settings
from shared.smart.discovery import smart_configuration
from shared.smart.fhir_url import NotAUrl, canonical_base_url
from shared.storage.config import ConfigRepository, normalize_base_url

CHECKS = {
    "url": "Is a complete URL",
    "https": "Uses https",
    "trusted_host": "Host is a trusted Oracle Health host",
    "registered": "Is not registered under the other environment",
    "address": "Host resolves to a public address",
    "metadata": "metadata answers with a CapabilityStatement",
    "fhir_version": "Server speaks FHIR R4 (4.0.1)",
    "smart_configuration": ".well-known/smart-configuration answers",
}
R4 = "4.0.1"
R4_HINT = "Cerner's R4 base URL looks like https://fhir-ehr.cerner.com/r4/<tenant id>."
_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fhir-dns")


class FhirUrlInvalid(InvalidInput):
    """A FHIR base URL that failed one named check."""

    code = "invalid_fhir_url"

    def __init__(self, check: str, message: str, next_step: str = "", status: int | None = None):
        super().__init__(message, next_step=next_step, status=status)
        self.check = check

    def as_dict(self) -> dict[str, str]:
        return {**super().as_dict(), "check": self.check}


@dataclass
class Report:
    """The checks a URL passed, in order, and what the server said about itself."""

    base_url: str
    passed: list[str] = field(default_factory=list)
    fhir_version: str = ""

    def public(self) -> dict[str, Any]:
        return {"valid": True, "base_url": self.base_url, "fhir_version": self.fhir_version,
                "checks": [{"check": name, "label": CHECKS[name], "ok": True} for name in self.passed]}


def check_url(url: str) -> SplitResult:
    """A complete https URL without credentials, query or fragment."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise FhirUrlInvalid("url", "FHIR URL isn't valid: it is not a complete URL.", R4_HINT) from exc
    if not parts.scheme or not parts.hostname:
        raise FhirUrlInvalid("url", "FHIR URL isn't valid: it is not a complete URL.", R4_HINT)
    if parts.username or parts.password or parts.query or parts.fragment:
        raise FhirUrlInvalid("url", "FHIR URL isn't valid: remove the user name, query string or fragment; "
                             "enter the base URL only.", R4_HINT)
    if parts.scheme.lower() != "https":
        raise FhirUrlInvalid("https", "FHIR URL isn't valid: it must start with https://.",
                             "Cerner serves FHIR over https only; use the https base URL.")
    try:
        canonical_base_url(url)
    except NotAUrl as exc:
        raise FhirUrlInvalid("url", "FHIR URL isn't valid: it is not a complete URL.", R4_HINT) from exc
    return parts


def check_trusted_host(parts: SplitResult) -> None:
    """The host is on TRUSTED_EHR_HOSTS: the connector sends Cerner credentials nowhere else."""
    host = parts.hostname or ""
    if not host_is_trusted(host):
        trusted = ", ".join(get_settings().trusted_ehr_host_list) or "none"
        raise FhirUrlInvalid(
            "trusted_host", f"FHIR URL isn't valid: {host} is not a trusted Oracle Health host (trusted: {trusted}).",
            f"{R4_HINT} If Oracle Health serves your environment from another host, IT can add it to the "
            "TRUSTED_EHR_HOSTS app setting.",
        )


def resolve(host: str, port: int) -> list[str]:
    """The addresses of a host, within the outbound timeout."""
    timeout = get_settings().http_timeout_seconds
    future = _resolver.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        return sorted({str(info[4][0]) for info in future.result(timeout=timeout)})
    except (OSError, FutureTimeout, UnicodeError):
        return []


def check_address(parts: SplitResult) -> None:
    host = parts.hostname or ""
    addresses = resolve(host, parts.port or 443)
    if not addresses:
        raise FhirUrlInvalid("address", f"FHIR URL isn't valid: the host {host} could not be resolved.",
                             "Check the host name for typing mistakes.")
    allow_private = get_settings().allow_private_fhir_hosts
    refused = [a for a in addresses if refused_address(a, allow_private)]
    if refused:
        raise FhirUrlInvalid(
            "address", f"FHIR URL isn't valid: the host {host} resolves to a private, loopback or link-local "
            f"address ({refused[0]}).", "The connector only calls Cerner's public FHIR endpoints; use the "
            "public base URL of your Cerner environment.",
        )


def check_metadata(base_url: str) -> str:
    """The FHIR version of the server's CapabilityStatement (R4 only)."""
    url = f"{base_url}/metadata"
    try:
        response = client("fhir").get(url, headers={"Accept": "application/fhir+json"})
        document = response.json() if response.status_code == 200 else None
    except httpx.TimeoutException as exc:
        raise FhirUrlInvalid("metadata", f"FHIR URL isn't valid: {url} did not answer in time.",
                             "Check the URL, then try again.") from exc
    except (httpx.HTTPError, ValueError) as exc:
        raise FhirUrlInvalid("metadata", f"FHIR URL isn't valid: {url} could not be reached.",
                             "Check the URL and that the server is up, then try again.") from exc
    if response.status_code != 200:
        raise FhirUrlInvalid("metadata", f"FHIR URL isn't valid: {url} answered HTTP {response.status_code}.",
                             R4_HINT)
    if not isinstance(document, dict) or document.get("resourceType") not in ("CapabilityStatement",
                                                                              "Conformance"):
        raise FhirUrlInvalid("metadata", f"FHIR URL isn't valid: {url} is not a FHIR CapabilityStatement.",
                             R4_HINT)
    version = str(document.get("fhirVersion", ""))
    if version.startswith("1.0") or document.get("resourceType") == "Conformance":
        raise FhirUrlInvalid("fhir_version", "FHIR URL isn't valid: use the R4 base URL.",
                             f"This URL serves FHIR DSTU2 ({version or 'Conformance'}). {R4_HINT}")
    if version != R4:
        spoken = f"FHIR {version}" if version else "an unknown FHIR version"
        raise FhirUrlInvalid("fhir_version", f"FHIR URL isn't valid: the server speaks {spoken}; the connector "
                             f"needs FHIR R4 ({R4}).", R4_HINT)
    return version


def check_smart(base_url: str) -> None:
    """The SMART configuration answers, and every endpoint it names is on a trusted host."""
    try:
        configuration = smart_configuration(base_url)
    except ConnectorError as exc:
        raise FhirUrlInvalid(
            "smart_configuration", f"FHIR URL isn't valid: {base_url}/.well-known/smart-configuration is "
            "missing, so SMART launches cannot start.",
            "Use the secure R4 endpoint (fhir-ehr…), not the open one (fhir-open…), which has no SMART "
            "configuration.",
        ) from exc
    for what, url in configuration.endpoints().items():
        if not url_is_trusted(url):
            raise FhirUrlInvalid(
                "smart_configuration", f"FHIR URL isn't valid: its SMART configuration names a {what} on "
                f"{urlsplit(url).hostname or 'no host'}, which is not a trusted Oracle Health host, so the connector "
                "would not send it credentials.",
                "Check with Oracle Health that this is your environment's FHIR base URL.",
            )


def check_registration(repository: ConfigRepository, tenant_id: str, base_url: str, environment: str,
                       editing: str | None = None) -> None:
    """Each URL is registered once: not under the other environment, not twice, not by two organizations."""
    found = repository.find_by_iss(base_url)
    if found is None or found[1].id == editing:
        return
    owner, endpoint = found
    if owner != tenant_id:
        raise FhirUrlInvalid("registered", "This FHIR base URL is already registered by another organization.",
                             "Each Cerner environment belongs to one organization; check the URL.", status=409)
    if endpoint.environment != environment:
        raise FhirUrlInvalid(
            "registered", f"This FHIR base URL is already registered under the {endpoint.environment} "
            "environment.", f"Use one URL per environment: remove it from {endpoint.environment} first, or pick "
            f"{endpoint.environment}.", status=409)
    raise FhirUrlInvalid("registered", f"This FHIR base URL is already registered ({environment}).",
                         "Edit the existing entry instead of adding it again.", status=409)


def validate(repository: ConfigRepository, tenant_id: str, url: str, environment: str,
             editing: str | None = None) -> Report:
    """Run every check in order; the first failure raises FhirUrlInvalid naming its check."""
    parts = check_url(url)
    check_trusted_host(parts)
    report = Report(normalize_base_url(url), ["url", "https", "trusted_host"])
    check_registration(repository, tenant_id, report.base_url, environment, editing)
    report.passed.append("registered")
    check_address(parts)
    report.passed.append("address")
    report.fhir_version = check_metadata(report.base_url)
    report.passed += ["metadata", "fhir_version"]
    check_smart(report.base_url)
    report.passed.append("smart_configuration")
    return report
