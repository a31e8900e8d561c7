"""SMART EHR launch: the authorization request, the code exchange and the launching user's identity."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from pydantic import BaseModel, ValidationError

from shared.ehr_hosts import require_trusted
from shared.errors import ConnectorError, DependencyFailed
from shared.http import client, dependency
from shared.smart.discovery import SmartConfiguration, openid_configuration
from shared.smart.id_token import IdTokenInvalid, validate_id_token

# Cerner supports no wildcards: every scope is named (domain-notes C3).
V1_SCOPES = "launch openid fhirUser user/Appointment.read user/Patient.read user/Practitioner.read"
V2_SCOPES = "launch openid fhirUser user/Appointment.rs user/Patient.rs user/Practitioner.rs"
RELAUNCH = "Close this window and click Teams again in PowerChart."


class LaunchRefused(ConnectorError):
    status, code, title = 403, "launch_refused", "Cerner did not approve this launch"


class NotAProvider(ConnectorError):
    status, code, title = 403, "not_a_provider", "This launch is for providers"


class LaunchTokens(BaseModel):
    """The token response of an EHR launch, with its launch context."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int = 570
    scope: str = ""
    id_token: str = ""
    patient: str = ""
    encounter: str = ""
    fhirContext: list[dict[str, Any]] = []

    def appointment_id(self) -> str | None:
        """The Appointment in the launch context (SMART `fhirContext`), if the EHR sent one."""
        for item in self.fhirContext:
            reference = str(item.get("reference", ""))
            if reference.startswith("Appointment/"):
                return reference.removeprefix("Appointment/")
        return None


def authorize_url(configuration: SmartConfiguration, *, client_id: str, redirect_uri: str, launch: str,
                  state: str, nonce: str, aud: str, code_challenge: str | None) -> str:
    """Where the browser goes to let Cerner approve the launch (only ever a trusted EHR host)."""
    endpoint = require_trusted(configuration.authorization_endpoint, "authorization endpoint")
    params = {
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "launch": launch,
        "scope": V2_SCOPES if configuration.scopes_v2 else V1_SCOPES, "state": state, "nonce": nonce, "aud": aud,
    }
    if code_challenge:
        params |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
    separator = "&" if "?" in endpoint else "?"
    return f"{endpoint}{separator}{urlencode(params)}"


def exchange_code(configuration: SmartConfiguration, *, code: str, redirect_uri: str, client_id: str,
                  client_secret: str, code_verifier: str | None) -> LaunchTokens:
    """Trade the authorization code for tokens and launch context, at a token endpoint on a trusted host only."""
    token_endpoint = require_trusted(configuration.token_endpoint, "token endpoint")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier:
        form["code_verifier"] = code_verifier
    auth = (client_id, client_secret) if client_secret else None
    if auth is None:
        form["client_id"] = client_id
    with dependency("smart"):
        response = client("smart").post(token_endpoint, data=form, auth=auth, headers={"Accept": "application/json"})
    if response.status_code in (400, 401):
        raise LaunchRefused(
            "Cerner did not accept this launch (it may have been used already or taken too long).",
            next_step=RELAUNCH, status=400,
        )
    if response.status_code != 200:
        raise DependencyFailed("Cerner's sign-in service answered with an error.", next_step=RELAUNCH)
    try:
        return LaunchTokens.model_validate(response.json())
    except (ValidationError, ValueError) as exc:
        raise DependencyFailed("Cerner's sign-in answer was not understood.", next_step=RELAUNCH) from exc


def verify_identity(configuration: SmartConfiguration, id_token: str, client_id: str,
                    nonce: str | None) -> dict[str, Any]:
    """Validate the id_token fully; its issuer must be the launch's authorization server, its nonce ours."""
    import jwt  # PyJWT loads cryptography: imported on the first sign-in, not on cold start

    if not id_token:
        raise IdTokenInvalid("Cerner did not say who launched the app.", next_step=RELAUNCH)
    try:
        claimed_issuer = jwt.decode(id_token, options={"verify_signature": False}).get("iss", "")
    except jwt.PyJWTError as exc:
        raise IdTokenInvalid("The sign-in answer was malformed.", next_step=RELAUNCH) from exc
    issuer = configuration.issuer or claimed_issuer
    # Without a published issuer, only trust one on the same host as the token endpoint.
    if urlsplit(issuer).netloc != urlsplit(configuration.token_endpoint).netloc or issuer != claimed_issuer:
        raise IdTokenInvalid("The sign-in answer came from an unexpected issuer.", next_step=RELAUNCH)
    require_trusted(issuer, "id_token issuer")
    jwks_uri = configuration.jwks_uri or openid_configuration(issuer).jwks_uri
    return validate_id_token(id_token, jwks_uri=jwks_uri, issuer=issuer, audience=client_id, nonce=nonce)


def ehr_user_id(claims: dict[str, Any], iss: str) -> str:
    """The EHR user's unique ID: `fhirUser` (a Practitioner) made absolute against the FHIR base, else `sub`."""
    fhir_user = str(claims.get("fhirUser") or "")
    if fhir_user:
        segments = [part for part in (urlsplit(fhir_user).path if "://" in fhir_user else fhir_user).split("/")
                    if part]
        if len(segments) < 2 or segments[-2] != "Practitioner":
            persona = segments[-2] if len(segments) >= 2 and segments[-2].isalpha() else "someone else"
            raise NotAProvider(
                f"Cerner says this launch was made as {persona[:32]}, not as a provider (Practitioner). Teams "
                "virtual appointments start from PowerChart, signed in as a provider.",
                next_step="Sign in to PowerChart with your provider account and click Teams again.",
            )
        return fhir_user if "://" in fhir_user else f"{iss.rstrip('/')}/{fhir_user.lstrip('/')}"
    subject = str(claims.get("sub") or "")
    if not subject:
        raise IdTokenInvalid("Cerner did not say who launched the app.", next_step=RELAUNCH)
    return subject
