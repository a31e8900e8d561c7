"""Provider launch from PowerChart: SMART EHR launch, one-time Microsoft link, then the visit page."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from pydantic import BaseModel, Field, ValidationError, field_validator

from shared import telemetry
from shared.errors import ConnectorError, Forbidden, InvalidInput, NotFound
from shared.fhir import FhirClient
from shared.microsoft import entra, licence
from shared.settings import get_settings
from shared.smart import ehr_launch, pkce
from shared.smart.discovery import smart_configuration
from shared.smart.fhir_url import NotAUrl, canonical_base_url
from shared.storage.accounts import default_accounts
from shared.storage.config import ConfigRepository, FhirEndpoint
from shared.storage.ehrusers import EhrUserRepository
from shared.tokens import (
    CookieSpec,
    Redirect,
    TokenExpired,
    TokenInvalid,
    clear_cookie_header,
    cookie_header,
    sealer,
)

LAUNCH_COOKIE = CookieSpec("ehr_launch", 600, "/api/launch")
LINK_COOKIE = CookieSpec("ms_link", 600, "/api/launch")
SESSION_COOKIE = CookieSpec("ehr_session", 570, "/api")
VISIT_TTL_SECONDS = 12 * 3600
RELAUNCH = "Close this window and click Teams again in PowerChart."


class NotConfigured(ConnectorError):
    status, code, title = 403, "environment_not_configured", "This Cerner environment is not configured"


class EnvironmentMismatch(ConnectorError):
    status, code, title = 409, "environment_mismatch", "This Cerner environment is configured differently"


class LaunchExpired(ConnectorError):
    status, code, title = 400, "launch_expired", "This launch has expired"


class LaunchRequest(BaseModel):
    """Query of the provider launch URL that Cerner opens."""

    iss: str = Field(min_length=8, max_length=512)
    launch: str = Field(min_length=1, max_length=1024)
    environment: Literal["test", "production"] | None = None

    @field_validator("iss")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError("iss must be a URL")
        try:
            canonical_base_url(value)
        except NotAUrl as exc:
            raise ValueError("iss must be a URL") from exc
        return value


def _callback_uri() -> str:
    return get_settings().url("/api/launch/callback")


def _microsoft_callback_uri() -> str:
    return get_settings().url("/api/launch/microsoft/callback")


def parse(model: type[BaseModel], data: dict[str, Any], what: str) -> Any:
    """Validate request input; bad input is a clear 400, never a stack trace."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]})) or "input"
        raise InvalidInput(f"The {what} is missing or has an invalid {fields}.", next_step=RELAUNCH) from exc


def open_cookie(spec: CookieSpec, value: str | None, purpose: str) -> dict[str, Any]:
    """A sealed cookie's data, or a clear error telling the provider to launch again."""
    if not value:
        raise LaunchExpired("This launch did not start in this browser, or it was already used.", next_step=RELAUNCH)
    try:
        return sealer().open_json(value, purpose)
    except TokenExpired as exc:
        raise LaunchExpired("This launch took too long and has expired.", next_step=RELAUNCH) from exc
    except TokenInvalid as exc:
        raise LaunchExpired("This launch could not be verified.", next_step=RELAUNCH) from exc


class ProviderLaunch:
    """The provider launch flow; holds no state between requests except sealed cookies."""

    def __init__(self) -> None:
        accounts = default_accounts()
        self.config = ConfigRepository(accounts, reuse_recent_reads=True)
        self.ehr_users = EhrUserRepository(accounts)
        self.settings = get_settings()

    def _endpoint(self, iss: str, environment: str | None) -> tuple[str, FhirEndpoint]:
        found = self.config.find_by_iss(iss)
        if found is None:
            raise NotConfigured(
                "This Cerner environment is not configured for Teams virtual appointments.",
                next_step="Ask your administrator to add this FHIR base URL in the connector's portal.",
            )
        tenant_id, endpoint = found
        if not self.settings.tenant_allowed(tenant_id):
            raise NotConfigured(
                "This Cerner environment belongs to an organization that may not use this connector.",
                next_step="Ask your administrator: the organization's Microsoft tenant must be on ALLOWED_TENANTS.",
            )
        if environment and environment != endpoint.environment:
            raise EnvironmentMismatch(
                f"This Cerner environment is registered as {endpoint.environment}, but the launch came from the "
                f"{environment} integration record.",
                next_step="Ask your administrator to register the FHIR base URL under the right environment, or "
                "to use the integration record of that environment in Cerner.",
            )
        return tenant_id, endpoint

    def start(self, query: dict[str, str]) -> Redirect:
        """Check `iss` against the allowlist and send the browser to Cerner's authorize endpoint."""
        request: LaunchRequest = parse(LaunchRequest, query, "launch link")
        tenant_id, endpoint = self._endpoint(request.iss, request.environment)
        licence.require_for_launch(tenant_id, endpoint)
        configuration = smart_configuration(endpoint.base_url)
        state, nonce, verifier = pkce.new_state(), pkce.new_nonce(), pkce.new_verifier()
        url = ehr_launch.authorize_url(
            configuration, client_id=self.settings.smart_client_id, redirect_uri=_callback_uri(),
            launch=request.launch, state=state, nonce=nonce, aud=endpoint.base_url,
            code_challenge=pkce.challenge(verifier) if configuration.pkce else None,
        )
        started = {"state": state, "nonce": nonce, "verifier": verifier if configuration.pkce else "",
                   "tenant": tenant_id, "endpoint": endpoint.id, "at": time.time()}
        cookie = sealer().seal_json(started, LAUNCH_COOKIE.ttl_seconds, "ehr-launch")
        return Redirect(url, [cookie_header(LAUNCH_COOKIE, cookie)])

    def callback(self, query: dict[str, str], launch_cookie: str | None) -> Redirect:
        """Verify state, redeem the code, validate the id_token, then sign in to Microsoft once or go on."""
        try:
            started = open_cookie(LAUNCH_COOKIE, launch_cookie, "ehr-launch")
            redirect = self._callback(query, started)
        except ConnectorError as error:
            telemetry.count("connector.launches", outcome=telemetry.word(error.code))
            raise
        outcome = "visit" if redirect.location.startswith(self.settings.url("/api/visits/")) else "microsoft_link"
        telemetry.count("connector.launches", outcome=outcome)
        if isinstance(started.get("at"), int | float):  # from PowerChart's click to the visit (or the sign-in)
            telemetry.record("connector.launch.duration", (time.time() - started["at"]) * 1000, outcome=outcome)
        return redirect

    def _callback(self, query: dict[str, str], started: dict[str, Any]) -> Redirect:
        if not query.get("state") or query.get("state") != started["state"]:
            raise LaunchExpired("This launch did not start in this browser.", next_step=RELAUNCH)
        if query.get("error"):
            raise ehr_launch.LaunchRefused(
                f"Cerner refused the launch ({query['error'][:64]}).",
                next_step="Launch again from PowerChart. If it keeps happening, give IT the reference below.",
            )
        if not query.get("code"):
            raise InvalidInput("Cerner's answer carried no authorization code.", next_step=RELAUNCH)
        endpoint = self.config.endpoint(started["tenant"], started["endpoint"])
        if endpoint is None:
            raise NotConfigured("This Cerner environment was removed from the configuration.", next_step=RELAUNCH)
        configuration = smart_configuration(endpoint.base_url)
        tokens = ehr_launch.exchange_code(
            configuration, code=query["code"], redirect_uri=_callback_uri(),
            client_id=self.settings.smart_client_id,
            client_secret=self.settings.smart_client_secret.get_secret_value(),
            code_verifier=started["verifier"] or None,
        )
        claims = ehr_launch.verify_identity(configuration, tokens.id_token, self.settings.smart_client_id,
                                            nonce=started.get("nonce", ""))
        session = {
            "tenant": started["tenant"], "endpoint": endpoint.id, "token": tokens.access_token,
            "ehr_user": ehr_launch.ehr_user_id(claims, endpoint.base_url), "patient": tokens.patient,
            "appointment": tokens.appointment_id() or "", "ttl": min(tokens.expires_in, 3600),
        }
        region = self.config.region(started["tenant"])
        oid = self.ehr_users.lookup(region, endpoint.id, session["ehr_user"])
        if oid is None:
            return self._begin_microsoft_link(session)
        return self._to_visit(endpoint, {**session, "oid": oid})

    def _begin_microsoft_link(self, session: dict[str, Any]) -> Redirect:
        entra.require_allowed_tenant(session["tenant"])
        flow = entra.begin_sign_in(_microsoft_callback_uri(), tenant=session["tenant"])
        cookie = sealer().seal_json({"flow": flow, "session": session}, LINK_COOKIE.ttl_seconds, "ms-link")
        return Redirect(flow["auth_uri"], [cookie_header(LINK_COOKIE, cookie)])

    def microsoft_callback(self, query: dict[str, str], link_cookie: str | None) -> Redirect:
        """The one-time Microsoft sign-in: link the EHR user ID to the Entra object ID, in the org's region."""
        pending = open_cookie(LINK_COOKIE, link_cookie, "ms-link")
        session = pending["session"]
        entra.require_allowed_tenant(session["tenant"])
        claims = entra.finish_sign_in(pending["flow"], query, tenant=session["tenant"])  # refuses other tenants
        if claims.get("tid") != session["tenant"]:
            raise Forbidden("You signed in with an account from another organization.",
                            next_step="Sign in with your work account of this hospital.")
        endpoint = self.config.endpoint(session["tenant"], session["endpoint"])
        if endpoint is None:
            raise NotConfigured("This Cerner environment was removed from the configuration.", next_step=RELAUNCH)
        region = self.config.region(session["tenant"])
        self.ehr_users.link(region, endpoint.id, session["ehr_user"], claims["oid"])
        return self._to_visit(endpoint, {**session, "oid": claims["oid"]})

    def _to_visit(self, endpoint: FhirEndpoint, session: dict[str, Any]) -> Redirect:
        appointment_id = session["appointment"] or self._todays_appointment(endpoint, session)
        ttl = int(session.pop("ttl"))
        session_cookie = sealer().seal_json(session, ttl, "ehr-session")
        # The visit belongs to the provider who launched it: another provider's session cannot open it.
        visit = sealer().seal_json({"tenant": session["tenant"], "endpoint": endpoint.id,
                                    "appointment": appointment_id, "ehr_user": session["ehr_user"]},
                                   VISIT_TTL_SECONDS, "visit")
        location = self.settings.url(f"/api/visits/{visit}")
        spec = replace(SESSION_COOKIE, ttl_seconds=ttl)
        return Redirect(location, [cookie_header(spec, session_cookie), clear_cookie_header(LAUNCH_COOKIE)])

    def _todays_appointment(self, endpoint: FhirEndpoint, session: dict[str, Any]) -> str:
        """Without an Appointment in context: the patient's appointment today with this practitioner."""
        if not session.get("patient"):
            raise NotFound("Cerner did not say which appointment to open.",
                           next_step="Launch from the appointment on the PowerChart patient board.")
        now = datetime.now(UTC)
        fhir = FhirClient(endpoint.base_url, session["token"])
        practitioner = session["ehr_user"].rsplit("/Practitioner/", 1)[-1]
        candidates = [
            a for a in fhir.appointments({"patient": session["patient"],
                                          "date": [f"ge{(now - timedelta(hours=12)).isoformat()}",
                                                   f"lt{(now + timedelta(hours=24)).isoformat()}"]})
            if not a.cancelled and (practitioner in a.practitioner_ids or not a.practitioner_ids)
        ]
        if not candidates:
            raise NotFound("There is no virtual appointment today for this patient with you.",
                           next_step="Check the appointment in PowerChart, then launch again.")
        return min(candidates, key=lambda a: abs(((a.start or now) - now).total_seconds())).id


def launch_url_for(endpoint: FhirEndpoint) -> str:
    """The provider launch URL of an integration record (Cerner adds iss and launch)."""
    base = get_settings().public_base_url
    return f"{base}/api/launch/provider?{urlencode({'environment': endpoint.environment})}"

