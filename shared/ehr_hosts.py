"""The hosts the connector talks to for an EHR (TRUSTED_EHR_HOSTS), checked on every use, not only at registration."""

from __future__ import annotations

from urllib.parse import urlsplit

from shared.errors import ConnectorError
from shared.settings import get_settings

ASK_IT = ("Ask IT to check the FHIR base URL; if Oracle Health really serves it from this host, add the host to the "
          "TRUSTED_EHR_HOSTS app setting.")


class UntrustedEhrHost(ConnectorError):
    """An EHR address (discovered endpoint, paging link, stored URL) outside TRUSTED_EHR_HOSTS."""

    status, code, title = 502, "untrusted_ehr_host", "The Cerner environment pointed somewhere we do not trust"


def host_is_trusted(host: str, trusted: tuple[str, ...] | None = None) -> bool:
    """True when the host equals an entry, or lies under an entry that starts with a dot."""
    host = host.strip().lower().rstrip(".")
    if not host:
        return False
    for entry in trusted if trusted is not None else get_settings().trusted_ehr_host_list:
        if entry.startswith("."):
            if host.endswith(entry) and len(host) > len(entry):
                return True
        elif host == entry:
            return True
    return False


def url_is_trusted(url: str) -> bool:
    """An https URL, without user info, on a trusted EHR host."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    return (parts.scheme == "https" and not parts.username and not parts.password
            and host_is_trusted(parts.hostname or ""))


def require_trusted(url: str, what: str) -> str:
    """The URL itself when it is on a trusted EHR host over https; else UntrustedEhrHost naming what it was."""
    if url_is_trusted(url):
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or "an unknown host"
    except ValueError:
        parts, host = None, "an unknown host"
    if parts is not None and parts.scheme != "https" and host_is_trusted(host):
        raise UntrustedEhrHost(f"The Cerner environment's {what} does not use https, so the connector did not "
                               "contact it.", next_step="Ask IT to check the FHIR base URL: Cerner serves https only.")
    raise UntrustedEhrHost(f"The Cerner environment's {what} is on {host}, which is not a trusted Oracle Health "
                           "host, so the connector did not contact it.", next_step=ASK_IT)
