"""The status page: per FHIR endpoint, per phone number, the licence and Teams access, each red item with a next step.

Everything here is configuration, counts and error codes; nothing identifies a patient.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from azure.core.exceptions import AzureError
from croniter import croniter
from pydantic import BaseModel, Field

from shared.ehr_hosts import require_trusted
from shared.errors import ConnectorError
from shared.http import client, dependency
from shared.microsoft.graph import GraphClient
from shared.notifications.optouts import OptOutStore
from shared.pages import render
from shared.portal import auth
from shared.portal.endpoints import patient_link_notice
from shared.portal.licence import accepted_skus, licence_state
from shared.portal.sms import VERIFICATION_STEPS, NumberRepository
from shared.settings import get_settings
from shared.smart.discovery import smart_configuration
from shared.storage.accounts import TableAccounts, default_accounts
from shared.storage.config import ConfigRepository, FhirEndpoint
from shared.storage.ledger import LedgerRepository
from shared.storage.messages import MessageLog
from shared.storage.runs import RunRecord, RunRepository

STATUS_PATH = "/api/portal/status"
LOW_DELIVERY_RATE = 0.8  # below this share of messages delivered, carriers are filtering the number
# A meeting id no meeting has: Graph checks the access policy before looking it up (403 versus 404).
PROBE_MEETING = "status-check"
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; "
                           "frame-ancestors 'none'")


class Check(BaseModel):
    """One thing the page checks: green or red, what was seen, and what to do when red."""

    ok: bool
    detail: str
    what_to_do: str = ""


class EndpointStatus(BaseModel):
    id: str
    name: str
    environment: str
    sms_on: bool
    last_run: RunRecord | None = None
    last_run_check: Check
    next_run: datetime | None = None
    cerner: Check
    smart: Check
    teams_access: Check
    patient_link: Check


class Delivery(BaseModel):
    """Messages sent and delivered over 24 hours and 7 days, for a number or for the organization's emails."""

    sent_24h: int = 0
    delivered_24h: int = 0
    delivery_rate_24h: float | None = None
    sent_7d: int = 0
    delivered_7d: int = 0
    delivery_rate_7d: float | None = None


class NumberStatus(Delivery):
    number: str
    linked_endpoints: list[str]
    verification: Check
    verification_state: str
    delivery: Check
    opt_outs: int = 0


class EmailStatus(Delivery):
    """The organization's emails next to its texts: the sender and delivery over 24 hours and 7 days."""

    sender: str
    failed_7d: int = 0
    opted_out_7d: int = 0
    delivery: Check


class Problem(BaseModel):
    item: str
    detail: str
    what_to_do: str


class StatusReport(BaseModel):
    generated_at: datetime
    ok: bool
    endpoints: list[EndpointStatus]
    numbers: list[NumberStatus]
    email: EmailStatus
    licence: Check
    problems: list[Problem] = Field(default_factory=list)


def _guarded(check: Callable[[], Check], failing: str) -> Check:
    """A check that errs reports red with the error's own next step, never a 500."""
    try:
        return check()
    except ConnectorError as error:
        return Check(ok=False, detail=error.message, what_to_do=error.next_step or failing)
    except (AzureError, httpx.HTTPError) as error:
        return Check(ok=False, detail=f"unreachable ({type(error).__name__})", what_to_do=failing)


def cerner_check(endpoint: FhirEndpoint) -> Check:
    """Any HTTP answer from the FHIR server's capability statement proves Cerner is reachable."""
    def probe() -> Check:
        url = require_trusted(endpoint.base_url, "FHIR base URL").rstrip("/") + "/metadata"
        with dependency("fhir"):
            response = client("fhir").get(url, headers={"Accept": "application/fhir+json"}, timeout=5.0)
        if response.status_code >= 500:
            return Check(ok=False, detail=f"Cerner answered HTTP {response.status_code}.",
                         what_to_do="Cerner is having trouble; if it lasts, open a case with Oracle Health.")
        return Check(ok=True, detail=f"Reachable (HTTP {response.status_code}).")
    return _guarded(probe, "Check that the FHIR base URL is right and that Cerner is up; if it lasts, open a "
                           "case with Oracle Health.")


def smart_check(endpoint: FhirEndpoint) -> Check:
    """The SMART configuration is published and offers what launches need (PKCE, the endpoints)."""
    def probe() -> Check:
        configuration = smart_configuration(endpoint.base_url)
        if not configuration.pkce:
            return Check(ok=False, detail="The SMART configuration does not offer PKCE (S256).",
                         what_to_do="Ask Oracle Health to enable PKCE for this environment.")
        return Check(ok=True, detail="SMART configuration published.")
    return _guarded(probe, "Ask IT to check that the FHIR base URL is the R4 secure endpoint.")


def teams_check(tenant_id: str, endpoint: FhirEndpoint) -> Check:
    """A dry run: may the app act for this endpoint's organizer (application access policy)? Creates nothing."""
    if not endpoint.organizer:
        return Check(ok=False, detail="No organizer account is configured.",
                     what_to_do="Set the organizer account of this FHIR base URL in the portal.")

    def probe() -> Check:
        response = GraphClient(tenant_id).request("GET", f"/users/{endpoint.organizer}/onlineMeetings/{PROBE_MEETING}")
        if response.status_code == 403:
            return Check(ok=False, detail="Teams refuses to create meetings for the organizer account.",
                         what_to_do="Grant the Teams application access policy to the organizer account "
                         "(Grant-CsApplicationAccessPolicy, see infra/tenant-setup.ps1); it takes up to 30 minutes "
                         "to apply.")
        if response.status_code in (200, 404):
            return Check(ok=True, detail="The connector may create meetings for the organizer account.")
        return Check(ok=False, detail=f"Microsoft Graph answered HTTP {response.status_code}.",
                     what_to_do="Try again in a few minutes; if it lasts, check the Microsoft 365 service health.")
    return _guarded(probe, "Try again in a few minutes; if it lasts, check the Microsoft 365 service health.")


def patient_link_check(config: ConfigRepository, tenant_id: str, endpoint: FhirEndpoint) -> Check:
    """Whether patients get the virtual-appointment link, or the meeting link since Graph refused it."""
    notice = patient_link_notice(config.join_link_choice(tenant_id, endpoint.id))
    if notice is None:
        return Check(ok=True, detail="Patients get the virtual-appointment link (browser join on phones).")
    return Check(ok=False, detail=notice["message"],
                 what_to_do="Check that the app registration has VirtualAppointment.Read.All with admin consent "
                 "(README, Graph permissions); the connector asks Graph again on its own. Until then patients on "
                 "phones may be asked to open the Teams app.")


def next_run(now: datetime) -> datetime | None:
    """When the reminder timer fires next (NCRONTAB: seconds first)."""
    try:
        return croniter(get_settings().sms_schedule, now, second_at_beginning=True).get_next(datetime)
    except (ValueError, KeyError):
        return None


def run_check(endpoint: FhirEndpoint, sms_on: bool, record: RunRecord | None, now: datetime) -> Check:
    """Red when the last run failed, had failures, or is much older than the schedule allows."""
    if not sms_on:
        return Check(ok=True, detail="Texts are off for this FHIR base URL (no number, departments or consents).")
    if record is None:
        return Check(ok=False, detail="The reminder job has not run for this FHIR base URL yet.",
                     what_to_do="Wait for the next run; if none is recorded within 15 minutes, check that the "
                     "function app is running (Azure portal → Function App → Overview).")
    codes = ", ".join(record.error_codes) or "none"
    if record.outcome == "failed":
        return Check(ok=False, detail=f"The last run could not read Cerner (error codes: {codes}).",
                     what_to_do="Check Cerner reachability below; the next run retries on its own. If it lasts, "
                     "check the system account's access in Cerner Code Console.")
    if record.failed:
        return Check(ok=False, detail=f"{record.failed} text(s) failed in the last run (error codes: {codes}).",
                     what_to_do="Check the number's verification and Azure Communication Services' status.")
    if now - record.run_at > timedelta(hours=1):
        return Check(ok=False, detail="The last run is more than an hour old.",
                     what_to_do="Check that the function app is running (Azure portal → Function App).")
    return Check(ok=True, detail="The last run went through.")


def _rate(delivered: int, sent: int) -> float | None:
    return round(delivered / sent, 3) if sent else None


def number_status(number: str, linked: list[str], verification: str, messages: list[dict[str, Any]],
                  opt_outs: int, now: datetime) -> NumberStatus:
    """A number's verification and delivery over 24 hours and 7 days."""
    day = [m for m in messages if m["sent_at"] >= now - timedelta(days=1)]
    delivered = [m for m in messages if m.get("status") == "delivered"]
    delivered_day = [m for m in day if m.get("status") == "delivered"]
    rate_day, rate_week = _rate(len(delivered_day), len(day)), _rate(len(delivered), len(messages))
    state = verification or "unknown"
    if state == "unknown":  # linked, but not generated in the portal: nobody recorded its verification here
        verified = Check(ok=False, detail="Toll-free verification: not recorded (this number was not generated "
                         "in the portal).", what_to_do=VERIFICATION_STEPS["unverified"].replace(
                             ", then mark it as pending here", "") + " Check its state there.")
    else:
        verified = Check(ok=state == "verified", detail=f"Toll-free verification: {state}.",
                         what_to_do="" if state == "verified" else VERIFICATION_STEPS[state])
    low = [rate for rate in (rate_day, rate_week) if rate is not None and rate < LOW_DELIVERY_RATE]
    delivery = Check(ok=not low, detail="No texts in the last 7 days." if not messages else
                     f"{len(delivered)} of {len(messages)} texts delivered in the last 7 days.",
                     what_to_do="Carriers are not delivering most texts: check the toll-free verification and "
                     "the failed messages' error codes in the SMS report." if low else "")
    return NumberStatus(number=number, linked_endpoints=linked, verification=verified, verification_state=state,
                        sent_24h=len(day), delivered_24h=len(delivered_day), delivery_rate_24h=rate_day,
                        sent_7d=len(messages), delivered_7d=len(delivered), delivery_rate_7d=rate_week,
                        delivery=delivery, opt_outs=opt_outs)


def email_status(sender: str, emailing: bool, messages: list[dict[str, Any]], now: datetime) -> EmailStatus:
    """The emails of the last 7 days: delivery rates (red below 80 %, like a number's) and the sender."""
    day = [m for m in messages if m["sent_at"] >= now - timedelta(days=1)]
    delivered = [m for m in messages if m.get("status") == "delivered"]
    delivered_day = [m for m in day if m.get("status") == "delivered"]
    rate_day, rate_week = _rate(len(delivered_day), len(day)), _rate(len(delivered), len(messages))
    low = [rate for rate in (rate_day, rate_week) if rate is not None and rate < LOW_DELIVERY_RATE]
    if emailing and not sender:
        delivery = Check(ok=False, detail="A FHIR base URL sends by email, but no sender address is set.",
                         what_to_do="Set EMAIL_SENDER_ADDRESS (the Bicep deployment sets it when it links an "
                         "email domain to Azure Communication Services); until then those patients get nothing.")
    elif low:
        delivery = Check(ok=False, detail=f"{len(delivered)} of {len(messages)} emails delivered in the last 7 days.",
                         what_to_do="Most emails bounce or are filtered: check the sender domain's DNS records "
                         "(SPF, DKIM) in Azure Communication Services and the failed emails in the messages report.")
    else:
        delivery = Check(ok=True, detail="No emails in the last 7 days." if not messages else
                         f"{len(delivered)} of {len(messages)} emails delivered in the last 7 days.")
    return EmailStatus(sender=sender, sent_24h=len(day), delivered_24h=len(delivered_day), delivery_rate_24h=rate_day,
                       sent_7d=len(messages), delivered_7d=len(delivered), delivery_rate_7d=rate_week,
                       failed_7d=len([m for m in messages if m.get("status") == "failed"]),
                       opted_out_7d=len([m for m in messages if m.get("status") == "opted_out"]), delivery=delivery)


def licence_check(tenant_id: str) -> Check:
    def probe() -> Check:
        state = licence_state(tenant_id)
        if state.licensed:
            return Check(ok=True, detail=f"Licensed: {', '.join(state.skus)}.")
        return Check(ok=False, detail="No active licence found.",
                     what_to_do=f"Activate one of {', '.join(accepted_skus())} in the Microsoft 365 admin center.")
    return _guarded(probe, "Try again in a few minutes.")


def status_report(tenant_id: str, now: datetime, accounts: TableAccounts | None = None) -> StatusReport:
    """Every check of the organization, network checks in parallel."""
    accounts = accounts or default_accounts()
    config = ConfigRepository(accounts)
    endpoints, region = config.endpoints(tenant_id), config.region(tenant_id)
    consents = config.sms_consents(tenant_id).complete
    runs = RunRepository(accounts)
    with ThreadPoolExecutor(max_workers=8) as pool:
        probes = {e.id: (pool.submit(cerner_check, e), pool.submit(smart_check, e),
                         pool.submit(teams_check, tenant_id, e)) for e in endpoints}
        licence = pool.submit(licence_check, tenant_id)
        upcoming = next_run(now)
        rows = []
        for endpoint in endpoints:
            sms_on = bool(endpoint.sms_number and endpoint.departments and consents)
            record = runs.last(tenant_id, endpoint.id)
            cerner, smart, teams = (future.result() for future in probes[endpoint.id])
            rows.append(EndpointStatus(
                id=endpoint.id, name=endpoint.display_name or endpoint.environment, environment=endpoint.environment,
                sms_on=sms_on, last_run=record, last_run_check=run_check(endpoint, sms_on, record, now),
                next_run=upcoming if sms_on else None, cerner=cerner, smart=smart, teams_access=teams,
                patient_link=patient_link_check(config, tenant_id, endpoint)))
        numbers = _numbers(accounts, tenant_id, region, endpoints, now)
        emails = [m for m in MessageLog(accounts).between(region, [e.id for e in endpoints], now - timedelta(days=7),
                                                          now + timedelta(minutes=1)) if m.get("channel") == "email"]
        email = email_status(get_settings().email_sender_address,
                             any(e.channel != "sms" for e in endpoints if e.departments), emails, now)
        report = StatusReport(generated_at=now, ok=True, endpoints=rows, numbers=numbers, email=email,
                              licence=licence.result())
    report.problems = problems(report)
    report.ok = not report.problems
    return report


def _numbers(accounts: TableAccounts, tenant_id: str, region: str, endpoints: list[FhirEndpoint],
             now: datetime) -> list[NumberStatus]:
    linked: dict[str, list[FhirEndpoint]] = {}
    for endpoint in endpoints:
        if endpoint.sms_number:
            linked.setdefault(endpoint.sms_number, []).append(endpoint)
    verification = {r.number: r.verification for r in NumberRepository(accounts).all(tenant_id)
                    if r.status == "provisioned"}
    optouts, log = OptOutStore(LedgerRepository(accounts)), MessageLog(accounts)
    statuses = []
    for number in sorted(set(linked) | set(verification)):
        users = linked.get(number, [])
        messages = [m for m in log.between(region, [e.id for e in users], now - timedelta(days=7),
                                           now + timedelta(minutes=1)) if m.get("channel", "sms") == "sms"]
        statuses.append(number_status(number, [e.display_name or e.environment for e in users],
                                      verification.get(number, ""), messages,
                                      len(optouts.opted_out(region, number)), now))
    return statuses


def problems(report: StatusReport) -> list[Problem]:
    """Every red item, named, with what to do next."""
    found = []
    for endpoint in report.endpoints:
        for label, check in (("Last reminder run", endpoint.last_run_check), ("Cerner", endpoint.cerner),
                             ("SMART discovery", endpoint.smart), ("Teams access", endpoint.teams_access),
                             ("Patient join link", endpoint.patient_link)):
            if not check.ok:
                found.append(Problem(item=f"{endpoint.name}: {label}", detail=check.detail,
                                     what_to_do=check.what_to_do))
    for number in report.numbers:
        for label, check in (("toll-free verification", number.verification), ("delivery", number.delivery)):
            if not check.ok:
                found.append(Problem(item=f"{number.number}: {label}", detail=check.detail,
                                     what_to_do=check.what_to_do))
    if not report.email.delivery.ok:
        found.append(Problem(item="Email: delivery", detail=report.email.delivery.detail,
                             what_to_do=report.email.delivery.what_to_do))
    if not report.licence.ok:
        found.append(Problem(item="Licence", detail=report.licence.detail, what_to_do=report.licence.what_to_do))
    return found


def status_view(credentials: auth.Credentials, output: str, now: datetime | None = None) -> dict[str, Any] | str:
    """The status as JSON-ready data or a page, for every portal role (like the reports)."""
    caller = auth.authenticate(credentials)
    report = status_report(caller.tenant_id, now or datetime.now(UTC))
    if output == "json":
        return report.model_dump(mode="json")
    return render("status.html", report=report, caller=caller)
