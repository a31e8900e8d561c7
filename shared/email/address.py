"""Patients' email addresses: checked before use, masked for display, never stored (only keyed hashes)."""

from __future__ import annotations

import re

_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
MASK = "\u2022\u2022\u2022"


def normalized(address: str | None) -> str | None:
    """The address as we send to it (trimmed, domain lower-cased), or None when it is not a usable address."""
    text = (address or "").strip()
    if len(text) > 254 or not _ADDRESS.match(text):
        return None
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"


def masked(address: str) -> str:
    """'jane.doe@example.org' → 'j•••@e•••.org': enough for a provider to recognise, too little to use."""
    local, _, domain = address.rpartition("@")
    host, _, tld = domain.rpartition(".")
    return f"{local[:1]}{MASK}@{host[:1]}{MASK}.{tld}"
