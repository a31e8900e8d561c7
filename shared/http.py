"""One outbound HTTP client per external system, each with a timeout, all calls counted.

The EHR systems ("fhir", "smart") only reach trusted EHR hosts over https, and connect to the very address that
was resolved and checked against the SSRF filter (no second DNS lookup between the check and the connection).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
import typing
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpcore
import httpx

from shared import telemetry
from shared.ehr_hosts import require_trusted
from shared.errors import DependencyFailed, DependencyTimeout
from shared.runtime import forgotten_on_reset
from shared.settings import get_settings

SYSTEM_NAMES = {
    "fhir": "Oracle Health FHIR",
    "smart": "Oracle Health authorization",
    "entra": "Microsoft Entra ID",
    "graph": "Microsoft Graph",
    "acs": "Azure Communication Services",
}

EHR_SYSTEMS = ("fhir", "smart")

# Never an EHR server, whatever ALLOW_PRIVATE_FHIR_HOSTS says: Azure's wire server (168.63.129.16), "this
# network", shared (carrier-grade NAT) space, IETF assignments, and the IPv6 prefixes that embed an IPv4 address
# (6to4, Teredo, NAT64), through which any address behind the filter could be reached.
ALWAYS_REFUSED_NETWORKS = tuple(ipaddress.ip_network(network) for network in (
    "0.0.0.0/8", "100.64.0.0/10", "168.63.129.16/32", "192.0.0.0/24",
    "2002::/16", "2001::/32", "64:ff9b::/96", "64:ff9b:1::/48",
))
Resolver = Callable[[str, int], list[str]]

# HTTP client libraries log full request URLs at INFO, and FHIR URLs carry patient and appointment ids:
# keep them to warnings so no id reaches the logs (or Application Insights).
for _noisy in ("httpx", "httpcore", "azure", "msal", "urllib3"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)

_lock = threading.Lock()
_clients: dict[str, httpx.Client] = {}
_counts: Counter[str] = Counter()


@forgotten_on_reset
def _close_clients() -> None:
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
        _counts.clear()
    for existing in clients:
        existing.close()


def count_call(system: str) -> None:
    """Count one outbound call (SDKs with their own transport report here too)."""
    with _lock:
        _counts[system] += 1


def _counter(system: str):
    def count(_request: httpx.Request) -> None:
        count_call(system)

    return count


def _answer_watch(system: str):
    """Count the system's server errors and throttling as dependency failures (4xx are ours to explain)."""
    def watch(response: httpx.Response) -> None:
        if response.status_code >= 500:
            telemetry.count("connector.dependency.failures", system=system, reason="server_error")
        elif response.status_code == 429:
            telemetry.count("connector.dependency.failures", system=system, reason="throttled")

    return watch


def refused_address(address: str, allow_private: bool) -> bool:
    """True for addresses the connector must not call (private, loopback, link-local and the like)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        elif ip.sixtofour or ip.teredo:
            return True
    if any(ip.version == network.version and ip in network for network in ALWAYS_REFUSED_NETWORKS):
        return True
    # Link-local (cloud metadata services live there), multicast and unspecified are never a FHIR server.
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return True
    if ip.is_loopback:
        return not allow_private
    if ip.is_reserved:  # 240/4, broadcast, IPv4-compatible IPv6 (::a.b.c.d) and the like
        return True
    if ip.is_private:
        return not allow_private
    return not ip.is_global


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of a host, from the operating system's resolver, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class AddressRefused(httpcore.ConnectError):
    """The host resolved to an address the connector does not call."""


class PinnedBackend(httpcore.SyncBackend):
    """Resolves once, refuses if any address is refused, then connects to those addresses (TLS still names the host)."""

    def __init__(self, resolver: Resolver = system_resolver) -> None:
        self.resolver = resolver

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: typing.Iterable[typing.Any] | None = None) -> httpcore.NetworkStream:
        try:
            addresses = self.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"{host} could not be resolved") from exc
        allow_private = get_settings().allow_private_fhir_hosts
        refused = [address for address in addresses if refused_address(address, allow_private)]
        if not addresses or refused:
            raise AddressRefused(f"{host} resolves to an address the connector does not call")
        # httpcore starts TLS with server_hostname = the URL's host, so SNI and certificate checks are unchanged.
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure


class EhrTransport(httpx.HTTPTransport):
    """https to trusted EHR hosts only, each connection to the address that passed the SSRF filter."""

    def __init__(self, resolver: Resolver = system_resolver) -> None:
        ssl_context = httpx.create_ssl_context(trust_env=True)  # SSL_CERT_FILE still names the trusted CAs
        super().__init__(verify=ssl_context)
        # httpx builds its pool without a way to pass a network backend: swap in one that pins the resolution.
        self._pool = httpcore.ConnectionPool(ssl_context=ssl_context, network_backend=PinnedBackend(resolver))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        require_trusted(str(request.url), "address")
        return super().handle_request(request)


def client(system: str) -> httpx.Client:
    """The shared client of an external system (created on first use, reused across invocations)."""
    with _lock:
        existing = _clients.get(system)
        if existing is None:
            # EHR clients ignore proxy variables: a proxy would do its own DNS lookup after our check.
            ehr = system in EHR_SYSTEMS
            existing = httpx.Client(
                timeout=get_settings().http_timeout_seconds,
                event_hooks={"request": [_counter(system)], "response": [_answer_watch(system)]},
                headers={"User-Agent": "teams-ehr-connector/0.1"},
                transport=EhrTransport() if ehr else None,
                trust_env=not ehr,
            )
            _clients[system] = existing
        return existing


# Connections an Azure SDK client keeps per host: more than the reminder job's sending threads, so no thread waits
# for a connection or opens (and TLS-handshakes) a new one per request; requests' default pool keeps 10.
SDK_POOL_CONNECTIONS = 64


def sdk_transport() -> typing.Any:
    """An azure-core transport for the ACS and Tables SDK clients, with a pool as large as the job's concurrency."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from urllib3.util.retry import Retry

    session = requests.Session()
    options: dict[str, typing.Any] = {}
    if not urllib.request.getproxies():
        # With no proxy configured, read the CA bundle variables once: by default requests walks the whole
        # environment for proxy settings on every request, a third of a send's CPU time in the reminder job.
        session.trust_env = False
        options["connection_verify"] = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    # As the SDK's own session: urllib3 never retries; retries are the SDK's (or ours).
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=SDK_POOL_CONNECTIONS,
                                            max_retries=Retry(total=False, redirect=False, raise_on_status=False))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return RequestsTransport(session=session, session_owner=False, **options)


def reset_clients() -> None:
    """Close every shared client, so the next call builds them from the current settings."""
    with _lock:
        for existing in _clients.values():
            existing.close()
        _clients.clear()


def call_counts() -> dict[str, int]:
    """Outbound calls made so far, per system (benchmarks read these)."""
    with _lock:
        return dict(_counts)


def reset_call_counts() -> None:
    with _lock:
        _counts.clear()


@contextmanager
def dependency(system: str) -> Iterator[None]:
    """Turn transport failures of a system into typed, user-safe errors naming that system."""
    name = SYSTEM_NAMES.get(system, system)
    try:
        yield
    except httpx.ConnectError as exc:
        refused = isinstance(exc.__context__, AddressRefused) or isinstance(exc.__cause__, AddressRefused)
        telemetry.count("connector.dependency.failures", system=system,
                        reason="refused_address" if refused else "unreachable")
        if refused:
            raise DependencyFailed(
                f"{name} resolves to a private or special address, so the connector did not call it.",
                next_step="Tell IT: the host's DNS must point at its public address.",
            ) from exc
        raise DependencyFailed(
            f"{name} could not be reached.", next_step="Try again in a minute. If it keeps happening, tell IT."
        ) from exc
    except httpx.TimeoutException as exc:
        telemetry.count("connector.dependency.failures", system=system, reason="timeout")
        raise DependencyTimeout(
            f"{name} did not answer in time.", next_step="Try again in a minute. If it keeps happening, tell IT."
        ) from exc
    except httpx.HTTPError as exc:
        telemetry.count("connector.dependency.failures", system=system, reason="transport")
        raise DependencyFailed(
            f"{name} could not be reached.", next_step="Try again in a minute. If it keeps happening, tell IT."
        ) from exc
