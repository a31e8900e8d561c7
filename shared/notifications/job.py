"""The confirmation and reminder job: one run at a given `now` over every FHIR endpoint with SMS switched on."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfoNotFoundError

from azure.core.exceptions import AzureError

from shared import telemetry
from shared.email.address import normalized
from shared.errors import ConnectorError, DependencyFailed, DependencyTimeout, NotSignedIn
from shared.fhir import Appointment, FhirClient, Patient
from shared.join import visit_key, visit_keys
from shared.notifications.courier import Courier, Outbound, new_row
from shared.notifications.dispatch import Dispatcher
from shared.notifications.fanout import SLICE_EXPIRES, Slice, enqueue, fans_out, parse_slice
from shared.notifications.optouts import OPTED_OUT, OptOutStore, email_keys, email_scope, phone_keys
from shared.notifications.planning import LedgerRow, Policy, Send, Slot, iso, plan_appointment
from shared.notifications.report import RunReport
from shared.notifications.windows import search_windows
from shared.settings import Region, Settings, get_settings
from shared.smart import backend_services
from shared.sms.phone import reachable_from_toll_free, to_e164
from shared.sms.texts import pick_language
from shared.storage.accounts import TableAccounts, default_accounts
from shared.storage.config import ConfigRepository, FhirEndpoint
from shared.storage.ledger import LedgerRepository, day_partition
from shared.storage.messages import MessageLog
from shared.storage.runs import RunRecord, RunRepository
from shared.storage.usage import UsageRepository
from shared.tokens import require_safe_keys, sealer

SEARCH_MARGIN = timedelta(minutes=5)  # clock skew between us and Cerner
ROWS_BEFORE = timedelta(days=1)  # ledger days read before today: a confirmed appointment may have moved
PURGE_AFTER = timedelta(hours=2)  # ledger rows go this long after their appointment ended
PATIENT_BATCH = 50
FHIR_BACKOFF = (0.2, 1.0)
DEFAULT_MAX_SECONDS = 180.0  # well inside functionTimeout (5 min) and before the next occurrence
FHIR_REQUESTS_PER_ENDPOINT = 4  # one Cerner tenant never has more of our requests at once (from one instance)
PLANNING_THREADS = 16  # endpoints planned at once

logger = logging.getLogger("connector.notifications")
T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class Target:
    """An endpoint the job polls, with its organization and data region."""

    tenant_id: str
    endpoint: FhirEndpoint
    region: Region


SMS_CHANNELS = frozenset({"sms", "both", "email_if_no_mobile"})
EMAIL_CHANNELS = frozenset({"email", "both", "email_if_no_mobile"})


def channels(endpoint: FhirEndpoint, settings: Settings) -> tuple[str, ...]:
    """The channels an endpoint's notifications go by: SMS with a linked number, email with a sender address."""
    found = []
    if endpoint.channel in SMS_CHANNELS and endpoint.sms_number:
        found.append("sms")
    if endpoint.channel in EMAIL_CHANNELS and settings.email_sender_address:
        found.append("email")
    return tuple(found)


def eligible_endpoints(config: ConfigRepository, settings: Settings | None = None) -> list[Target]:
    """Endpoints with departments and a channel to send by, of organizations that gave both consents."""
    settings = settings or get_settings()
    by_tenant: dict[str, list[FhirEndpoint]] = defaultdict(list)
    for tenant_id, endpoint in config.all_endpoints():
        if channels(endpoint, settings) and endpoint.departments:
            by_tenant[tenant_id].append(endpoint)
    targets: list[Target] = []
    for tenant_id, endpoints in by_tenant.items():
        if config.sms_consents(tenant_id).complete:
            region = config.region(tenant_id)
            targets += [Target(tenant_id, endpoint, region) for endpoint in endpoints]
    return targets


def run_notifications(now: datetime, *, max_seconds: float = DEFAULT_MAX_SECONDS, workers: int = 8,
                      accounts: TableAccounts | None = None,
                      only: Callable[[list[Target]], list[Target]] | None = None) -> RunReport:
    """One run at `now` (UTC, given by the caller): plan every eligible endpoint, send what fits, purge the past.

    Safe to run twice, late, or twice at once: the ledger lets each message out once (see courier.py).
    `only` picks the endpoints this run covers (a fan-out slice); by default, every eligible one.
    """
    started = time.monotonic()
    try:
        report = _run(now, started, max_seconds, workers, accounts or default_accounts(), only)
    except Exception:
        telemetry.count("connector.reminders.runs", outcome="failed")
        telemetry.record("connector.reminders.duration", (time.monotonic() - started) * 1000, outcome="failed")
        raise
    # "carried_over" and "endpoint_errors" runs are the ones the alert watches when they repeat.
    outcome = "carried_over" if report.carried_over else "endpoint_errors" if report.endpoint_errors else "ok"
    telemetry.count("connector.reminders.runs", outcome=outcome)
    telemetry.count("connector.reminders.carried_over", report.carried_over)
    telemetry.record("connector.reminders.duration", (time.monotonic() - started) * 1000, outcome=outcome)
    return report


def run_slice(body: str, now: datetime) -> RunReport:
    """One endpoint's part of a fanned-out run (a queue message), as of the run's time; a stale slice is dropped."""
    part = parse_slice(body)
    if now.astimezone(UTC) - part.run_at.astimezone(UTC) > SLICE_EXPIRES:
        logger.info("SMS slice of the %s run dropped: that run is over", part.run_at.isoformat())
        return RunReport()
    return run_notifications(part.run_at, only=lambda targets: [
        target for target in targets if target.tenant_id == part.tenant and target.endpoint.id == part.endpoint])


def _run(now: datetime, started: float, max_seconds: float, workers: int, accounts: TableAccounts,
         only: Callable[[list[Target]], list[Target]] | None) -> RunReport:
    settings = get_settings()
    require_safe_keys(settings)  # hashes made with a published key could be matched against a list of numbers
    ledger = LedgerRepository(accounts)
    report = RunReport()
    targets = eligible_endpoints(ConfigRepository(accounts), settings)
    if only is not None:
        targets = only(targets)
    elif fans_out(sum(len(target.endpoint.departments) for target in targets), settings):
        report.add("endpoints", len(targets))  # each endpoint's part runs in a queue-triggered function
        report.add("queued", enqueue([Slice(tenant=target.tenant_id, endpoint=target.endpoint.id, run_at=now)
                                      for target in targets], settings))
        return report
    outbounds = prepare_all(targets, now, ledger, report, settings)

    def clock() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    first_texts: list[Outbound] = []  # list.append is atomic: the sending threads share it without a lock
    messages = MessageLog(accounts, deferred=True)  # one transaction per partition after the sends
    courier = Courier(ledger, report, clock, optouts=OptOutStore(ledger), usage=first_texts.append,
                      messages=lambda o, status, at: record_message(messages, o, status, at))

    def rate_for(sender: str) -> int:
        email = sender == settings.email_sender_address
        return settings.email_rate_per_minute if email else settings.sms_rate_per_minute

    try:
        Dispatcher(courier, report, settings.sms_rate_per_minute, started + max_seconds, workers,
                   rate_for=rate_for).run(outbounds)
    finally:  # batched after the sends: a few transactions instead of a read and a write per message
        record_usage(UsageRepository(accounts), first_texts)
        messages.flush()
    record_runs(RunRepository(accounts), targets, report, now)
    return report


def prepare_all(targets: list[Target], now: datetime, ledger: LedgerRepository, report: RunReport,
                settings: Settings) -> list[Outbound]:
    """Plan every endpoint at once (each within its own limit of FHIR requests); their messages, in target order."""
    report.add("endpoints", len(targets))
    if not targets:
        return []
    with ThreadPoolExecutor(min(PLANNING_THREADS, len(targets)), thread_name_prefix="sms-plan") as pool:
        prepared = list(pool.map(lambda target: _prepare_safely(target, now, ledger, report, settings), targets))
    return [outbound for outbounds in prepared for outbound in outbounds]


def record_message(messages: MessageLog, outbound: Outbound, status: str, at: datetime) -> None:
    """Count the message for the SMS report and the status page (its type and outcome, never its recipient)."""
    messages.sent(outbound.region, outbound.endpoint.id, outbound.send.row, outbound.send.slot.kind, status, at,
                  channel=outbound.channel)


def record_runs(runs: RunRepository, targets: list[Target], report: RunReport, now: datetime) -> None:
    """Each endpoint's part of this run, for the status page; a storage failure here never fails the run."""
    by_tenant: dict[str, dict[str, RunRecord]] = defaultdict(dict)
    for target in targets:
        counts, codes = report.for_endpoint(target.endpoint.id), report.errors.get(target.endpoint.id, [])
        by_tenant[target.tenant_id][target.endpoint.id] = RunRecord(
            run_at=now, outcome="failed" if counts["endpoint_errors"] else "ok", searched=counts["searched"],
            sent=counts["sent"], failed=counts["failed"], carried_over=counts["carried_over"],
            error_codes=codes[:10])
    for tenant_id, records in by_tenant.items():
        try:
            runs.save_all(tenant_id, records)
        except AzureError as error:
            logger.warning("SMS job could not record its run: %s", type(error).__name__)


def _prepare_safely(target: Target, now: datetime, ledger: LedgerRepository, report: RunReport,
                    settings: Settings) -> list[Outbound]:
    """One endpoint failing (Cerner down, storage hiccup, a bad time zone) must not stop the others."""
    try:
        return EndpointRun(target, now, ledger, report, settings).prepare()
    except (ConnectorError, AzureError, ZoneInfoNotFoundError) as error:
        report.add("endpoint_errors", endpoint=target.endpoint.id)
        code = error.code if isinstance(error, ConnectorError) else type(error).__name__
        report.record_error(target.endpoint.id, code)
        logger.warning("SMS job skipped endpoint %s this run: %s", target.endpoint.id, code)
        return []


def record_usage(usage: UsageRepository, first_texts: list[Outbound]) -> None:
    """Mark the visits that had their first SMS, for the usage report (one batch per data region)."""
    by_region: dict[Region, list] = defaultdict(list)
    for outbound in first_texts:
        appointment = outbound.appointment
        fields: dict = {"sms_sent": True}
        if appointment.end is not None:
            fields["scheduled_end"] = appointment.end
        if appointment.location_ids:
            fields["department"] = appointment.location_ids[0]
        by_region[outbound.region].append((outbound.endpoint.id, visit_keys(outbound.endpoint.id, appointment.id),
                                           appointment.start, fields))
    for region, visits in by_region.items():
        usage.record_many(region, visits)


def is_toll_free(number: str) -> bool:
    """Whether a sending number is toll-free (those reach the US, Canada and Puerto Rico only)."""
    import phonenumbers  # its metadata is large: loaded by the first job run, not on cold start

    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.TOLL_FREE


class EndpointRun:
    """Plan one endpoint: its departments' appointments, their ledger rows, their patients read just in time."""

    def __init__(self, target: Target, now: datetime, ledger: LedgerRepository, report: RunReport,
                 settings: Settings):
        self.target, self.endpoint, self.region = target, target.endpoint, target.region
        self.now, self.ledger, self.report = now, ledger, report
        self.lookahead = timedelta(hours=settings.sms_lookahead_hours)
        self.policy = Policy.for_endpoint(self.endpoint)
        self.optouts = OptOutStore(ledger)
        self.channels = channels(self.endpoint, settings)
        self.sender_address = settings.email_sender_address
        self._visits: dict[str, str] = {}
        self._texted: set[str] = set()  # appointments that had a text before this run
        self._requests = threading.Semaphore(FHIR_REQUESTS_PER_ENDPOINT)

    def prepare(self) -> list[Outbound]:
        """The messages this endpoint sends in this run (ledger closes and skips are written on the way)."""
        appointments = [a for a in self._search() if a.start is not None]
        self.report.add("searched", len(appointments), endpoint=self.endpoint.id)
        rows = self._rows()
        planned: list[tuple[Appointment, Send, str]] = []
        for appointment in appointments:
            visit_rows = [row for key in visit_keys(self.endpoint.id, appointment.id) for row in rows.get(key, [])]
            for channel in self.channels:  # each channel has its own messages and rows, planned alike
                channel_rows = [row for row in visit_rows if row.channel == channel]
                if channel == "sms" and any(row.status in ("sent", "delivered") for row in channel_rows):
                    self._texted.add(appointment.id)
                planned += [(appointment, send, channel) for send in self._plan(appointment, channel_rows, channel)]
        outbounds = self._outbounds(planned)
        self.report.add("purged", self.ledger.purge_before(self.region, self.endpoint.id, self.now - PURGE_AFTER))
        return outbounds

    # reading ---------------------------------------------------------------------------------------------------

    def _search(self) -> list[Appointment]:
        """Appointments that start and end in this run's part of the look-ahead window (windows.py), one search per
        department and date range, several at once (paged; an appointment of two departments counted once)."""
        windows = search_windows(self.now, self.lookahead, self.policy.offsets, SEARCH_MARGIN)
        searches = [(department, window) for department in self.endpoint.departments for window in windows]
        self._fhir(lambda _fhir: None)  # one system token for the searches below (not one each at once)
        pages = self._each(lambda search: self._search_one(*search), searches)
        found = {appointment.id: appointment for page in pages for appointment in page}
        return sorted(found.values(), key=lambda a: (a.start is None, a.start or self.now, a.id))

    def _search_one(self, department: str, window: tuple[datetime, datetime]) -> list[Appointment]:
        params: dict[str, str | list[str]] = {
            "location": department,
            "date": [f"ge{iso(window[0])}", f"lt{iso(window[1])}"],
            "_count": "100",
        }
        return self._fhir(lambda fhir: list(fhir.appointments(params)))

    def _patients(self, patient_ids: list[str]) -> dict[str, Patient]:
        """The patients who get a text this run, read in batches (`_id=a,b,...`, several at once), nothing kept."""
        batches = [patient_ids[index:index + PATIENT_BATCH] for index in range(0, len(patient_ids), PATIENT_BATCH)]
        found = self._each(lambda batch: self._fhir(lambda fhir: fhir.patients(batch)), batches)
        return {patient_id: patient for batch in found for patient_id, patient in batch.items()}

    def _each(self, work: Callable[[T], U], items: list[T]) -> list[U]:
        """work(item) for every item, a few at once (the FHIR semaphore keeps the limit), results in item order."""
        if not items:
            return []
        with ThreadPoolExecutor(min(FHIR_REQUESTS_PER_ENDPOINT, len(items)), thread_name_prefix="sms-fhir") as pool:
            return list(pool.map(work, items))

    def _fhir(self, read: Callable[[FhirClient], T]) -> T:
        """A FHIR read with a fresh-enough system token, retried briefly when Cerner fails or is slow."""
        base = self.endpoint.base_url
        error: ConnectorError | None = None
        for delay in (0.0, *FHIR_BACKOFF):
            refused = isinstance(error, NotSignedIn)  # a refused token is replaced at once, without waiting
            if delay and not refused:
                time.sleep(delay)
            try:
                with self._requests:  # the token request counts too: it goes to the same Cerner tenant
                    token = backend_services.system_token(base, refresh=refused)
                    return read(FhirClient(base, token))
            except (NotSignedIn, DependencyFailed, DependencyTimeout) as failed:
                error = failed
        assert error is not None
        raise error

    def _rows(self) -> dict[str, list[LedgerRow]]:
        """This endpoint's ledger rows around the window, by visit."""
        entities = self.ledger.rows_between(self.region, self.endpoint.id, self.now - ROWS_BEFORE,
                                            self.now + self.lookahead)
        rows: dict[str, list[LedgerRow]] = defaultdict(list)
        for entity in entities:
            if entity.get("visit"):
                rows[entity["visit"]].append(LedgerRow.from_entity(entity))
        return rows

    def _visit(self, appointment: Appointment) -> str:
        """The appointment's opaque visit key (the same one the usage report uses)."""
        if appointment.id not in self._visits:
            self._visits[appointment.id] = visit_key(self.endpoint.id, appointment.id)
        return self._visits[appointment.id]

    def _row_keys(self, appointment: Appointment, slot: Slot, channel: str = "sms") -> tuple[str, ...]:
        """A message's ledger keys (keyed hash of channel, endpoint, appointment, kind and offset or version, start),
        active hash key first."""
        return sealer().keyed_hashes(channel, self.endpoint.id, appointment.id, *slot.key_parts)

    # planning --------------------------------------------------------------------------------------------------

    def _plan(self, appointment: Appointment, rows: list[LedgerRow], channel: str = "sms") -> list[Send]:
        """Plan one appointment on one channel and write what planning decided about its older rows."""
        plan = plan_appointment(appointment, rows, self.policy, self.now,
                                lambda slot: self._row_keys(appointment, slot, channel))
        for row, status, reason in plan.closes:
            self.ledger.merge(self.region, row.partition, row.row, {"status": status, "detail": reason}, etag=row.etag)
        for row in plan.stale_ends:  # moved later: keep its rows until the new end
            self.ledger.merge(self.region, row.partition, row.row, {"appointment_end": appointment.end})
        self.report.add("deferred", plan.deferred)
        self.report.add("in_flight", plan.in_flight)
        return plan.sends

    def _outbounds(self, planned: list[tuple[Appointment, Send, str]]) -> list[Outbound]:
        """Planned messages with their recipients; those that cannot go out are recorded as skipped."""
        if not planned:
            return []
        patients = self._patients(sorted({a.patient_id for a, _, _ in planned if a.patient_id}))
        scopes = {"sms": self.endpoint.sms_number, "email": email_scope(self.endpoint.id)}
        opted_out = {channel: frozenset[str]() for channel in scopes}
        opted_out |= {channel: self.optouts.opted_out(self.region, scopes[channel]) for channel in self.channels}
        outbounds = []
        for appointment, send, channel in planned:
            patient = patients.get(appointment.patient_id)
            if channel == "email":
                to, problem = self._email_recipient(patient, opted_out["email"], opted_out["sms"])
            else:
                to, problem = self._recipient(patient, opted_out["sms"])
            if problem or patient is None:
                self._skip(appointment, send, problem or "no_patient", channel)
                continue
            language = pick_language(patient.language, self.endpoint.default_language)
            partition = send.existing.partition if send.existing else day_partition(self.endpoint.id, send.slot.start)
            first_text = channel == "sms" and appointment.id not in self._texted
            outbounds.append(Outbound(self.region, self.endpoint, appointment, send, partition,
                                      self._visit(appointment), to, language, first_text, channel,
                                      self.sender_address if channel == "email" else ""))
        return outbounds

    def _textable(self, patient: Patient, sms_opted_out: frozenset[str]) -> bool:
        """Whether this endpoint can text the patient: a mobile it reaches, and no STOP from it."""
        return self._recipient(patient, sms_opted_out)[1] == "" if self.endpoint.sms_number else False

    def _email_recipient(self, patient: Patient | None, opted_out: frozenset[str],
                         sms_opted_out: frozenset[str]) -> tuple[str, str]:
        """(address, '') or ('', why the patient gets no email for this message)."""
        if patient is None:
            return "", "no_patient"
        if self.endpoint.channel == "email_if_no_mobile" and self._textable(patient, sms_opted_out):
            return "", "texted_instead"
        address = normalized(patient.email)
        if address is None:
            return "", "no_email"
        if not opted_out.isdisjoint(email_keys(address)):
            return "", OPTED_OUT
        return address, ""

    def _recipient(self, patient: Patient | None, opted_out: frozenset[str]) -> tuple[str, str]:
        """(E.164 mobile, '') or ('', why the patient cannot get this text)."""
        mobile = to_e164(patient.mobile) if patient is not None and patient.mobile else None
        if mobile is None:
            return "", "no_mobile"
        if is_toll_free(self.endpoint.sms_number) and not reachable_from_toll_free(mobile):
            return "", "unreachable"
        if not opted_out.isdisjoint(phone_keys(mobile)):
            return "", OPTED_OUT
        return mobile, ""

    def _skip(self, appointment: Appointment, send: Send, reason: str, channel: str = "sms") -> None:
        """Record once that this message cannot go out, so later runs neither retry it nor re-read the patient."""
        status = OPTED_OUT if reason == OPTED_OUT else "skipped"
        if send.existing is not None:
            self.ledger.merge(self.region, send.existing.partition, send.row, {"status": status, "detail": reason},
                              etag=send.existing.etag)
        else:
            fields = new_row(send.slot, appointment, self._visit(appointment), self.now, channel)
            fields |= {"status": status, "detail": reason}
            self.ledger.create(self.region, day_partition(self.endpoint.id, send.slot.start), send.row, fields)
        self.report.add("skipped")
