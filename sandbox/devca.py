"""A development certificate authority made at start-up, so the stand-ins serve real https."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import certifi
import trustme


@dataclass(frozen=True)
class DevCA:
    """Files of the dev CA: the CA alone, a bundle (system CAs + dev CA), and the server key pair."""

    ca_pem: Path
    bundle_pem: Path
    server_cert_pem: Path
    server_key_pem: Path

    def trust_env(self) -> dict[str, str]:
        """Environment that makes httpx, requests (msal, Azure SDKs) and curl trust the dev CA."""
        bundle = str(self.bundle_pem)
        return {"SSL_CERT_FILE": bundle, "REQUESTS_CA_BUNDLE": bundle, "CURL_CA_BUNDLE": bundle}


def make_dev_ca(directory: Path) -> DevCA:
    """Create a fresh CA and a server certificate for localhost / 127.0.0.1 under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="Teams EHR connector sandbox")
    server = ca.issue_cert("localhost", "127.0.0.1", "::1")
    files = DevCA(
        ca_pem=directory / "ca.pem",
        bundle_pem=directory / "bundle.pem",
        server_cert_pem=directory / "server.pem",
        server_key_pem=directory / "server.key",
    )
    ca.cert_pem.write_to_path(str(files.ca_pem))
    server.private_key_pem.write_to_path(str(files.server_key_pem))
    server.cert_chain_pems[0].write_to_path(str(files.server_cert_pem))
    for extra in server.cert_chain_pems[1:]:
        with open(files.server_cert_pem, "ab") as out:
            out.write(extra.bytes())
    system = Path(os.environ.get("DEVCA_SYSTEM_BUNDLE", certifi.where())).read_bytes()
    files.bundle_pem.write_bytes(system + b"\n" + ca.cert_pem.bytes())
    return files
