"""A simulated day of SMS confirmations and reminders: 3 FHIR endpoints, 60 appointments, the real stand-ins.

The host's timer fires every 5 simulated minutes; the job runs in this process (with the Oracle Health clock driven
by the test) at those of its minutes where the outcome can change (see run_minutes) and once an hour besides, with
retried, overlapping and skipped runs, FHIR 500s and timeouts, and ACS 429s and 5xx. The patients' phones (the
ACS outbox) must show every expected text exactly once, in the patient's language, in its window, and the runs in
between must send nothing.

The day runs on fixed clocks, whatever today is: the two days whose night New York's clocks change (spring forward,
fall back), so quiet hours and the local times in the texts are checked on standard and daylight time and across both
changes. (An ordinary day would add several minutes to the suite and nothing these two do not already cover.)
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from sandbox.oracle.state import utc_now
from shared.join import visit_key
from shared.notifications import run_notifications
from shared.notifications.optouts import optout_partition
from shared.notifications.report import RunReport
from shared.sms.phone import to_e164
from shared.storage.config import ConfigRepository, SmsConsents
from shared.storage.ledger import LedgerRepository, day_partition
from shared.storage.schema import SCHEMA
from shared.tokens import sealer
from tests.integration.reminders_world import (
    AppSettings,
    Booking,
    book,
    demo_sitting_out,
    open_organization,
    open_site,
    others_sitting_out,
)
from tests.waiting import PATIENCE, wait_until

# The cap is a safety net for a hung run, not a speed goal (bench/bench_reminders.py measures the job's speed).
pytestmark = pytest.mark.timeout(3000)

H = 60
DAY_MINUTES = 27 * H + 30
TIMER = 5  # the host's timer fires every 5 minutes
SKIPPED = range(11 * H + 5, 11 * H + 30)  # the host was down: no runs in here
RETRIED_AT = {2 * H, 8 * H + 20}  # the same run twice in a row
OVERLAPPING_AT = {0, 4 * H, 15 * H}  # two runs at once
NY, LA, CHICAGO = ZoneInfo("America/New_York"), ZoneInfo("America/Los_Angeles"), ZoneInfo("America/Chicago")
# A year ahead of any machine's clock: the ACS stand-in checks repeatabilityFirstSent against its real-time clock
# (a first-sent time in the past by more than its window is refused), and the host's own timer (real time) must
# never see these appointments. Patient links count minutes from 2024 in three bytes, so they reach 2055.
YEAR = 2050

SITES = {
    "ny": dict(region="emea", number="+18335550111", time_zone="America/New_York", quiet_hours="21:00-08:00",
               reminder_offsets=[1440, 15], confirmations_on=True, default_language="en", area="312"),
    "la": dict(region="emea", number="+18445550122", time_zone="America/Los_Angeles", quiet_hours="",
               reminder_offsets=[120, 15], confirmations_on=True, default_language="es", area="415"),
    "chi": dict(region="americas", number="+18555550133", time_zone="America/Chicago", quiet_hours="",
                reminder_offsets=[60], confirmations_on=False, default_language="pt-BR", area="617"),
    "noconsent": dict(region="americas", number="+18665550144", time_zone="America/Chicago", quiet_hours="",
                      reminder_offsets=[60, 15], confirmations_on=True, default_language="en", area="646"),
    "nonumber": dict(region="emea", number="", time_zone="America/Chicago", quiet_hours="",
                     reminder_offsets=[60, 15], confirmations_on=True, default_language="en", area="718"),
}
ZONES = {name: ZoneInfo(site["time_zone"]) for name, site in SITES.items()}
TEXTS = {  # how each kind of text begins or reads, per language (shared/sms/texts.py)
    "en": {"confirmation": "is booked for", "reschedule": "has moved to", "cancellation": "was cancelled",
           "reminder": "Reminder:"},
    "es": {"confirmation": "esta programada para", "reschedule": "cambio al", "cancellation": "fue cancelada",
           "reminder": "Recordatorio:"},
    "pt-BR": {"confirmation": "esta marcada para", "reschedule": "mudou para", "cancellation": "foi cancelada",
              "reminder": "Lembrete:"},
}


@dataclass
class Visit:
    """One appointment of the day and the texts its patient must get: (kind, minute it becomes due)."""

    label: str
    site: str
    start: int
    expected: list[tuple[str, int]]
    language: str | None = "en"
    phone: str = "mobile"  # mobile | none | abroad | blocked
    booked_at: int | None = None
    status: str = "booked"
    moves: list[tuple[int, int]] = field(default_factory=list)
    cancel_at: int | None = None
    stop_at: int | None = None
    booking: Booking | None = None

    def start_at(self, minute: float) -> int:
        """The start (in day minutes) as Cerner shows it at that minute."""
        return next((new for at, new in reversed(self.moves) if at <= minute), self.start)

    @property
    def expected_language(self) -> str:
        return self.language or SITES[self.site]["default_language"]


def six_am(day: date) -> datetime:
    """06:00 in New York on that date, when the simulated day begins (03:00 in Los Angeles), in UTC."""
    return datetime.combine(day, time(6), tzinfo=NY).astimezone(UTC)


def clock_changes(year: int) -> list[date]:
    """The dates whose following night New York's clocks change (in March, then in November)."""
    days = [date(year, 1, 1) + timedelta(days=n) for n in range(365)]
    return [d for d in days if six_am(d).astimezone(NY).utcoffset() != six_am(d + timedelta(days=1)).astimezone(
        NY).utcoffset()]


SPRING_FORWARD, FALL_BACK = clock_changes(YEAR)
DAYS = {  # name → (when the day begins, its index: tenants, ids and phone numbers differ per day)
    "spring-forward": (six_am(SPRING_FORWARD), 0),
    "fall-back": (six_am(FALL_BACK), 1),
}


def minute_at(begin: datetime, days_later: int, hour: int, zone: ZoneInfo = NY) -> int:
    """The day minute of a local wall-clock hour (on the day `days_later` after the first), across clock changes."""
    local = datetime.combine(begin.astimezone(zone).date() + timedelta(days=days_later), time(hour), tzinfo=zone)
    return round((local - begin).total_seconds() / 60)


def day_visits(begin: datetime) -> list[Visit]:
    quiet_ends_tomorrow = minute_at(begin, 1, 8)  # New York's quiet hours end at 08:00: 26 h later, or 25 or 27
    ny_day = [(4 * H, "en"), (6 * H, "es"), (8 * H, "pt-BR"), (10 * H, None), (13 * H, "es"), (14 * H + 30, "en")]
    la_day = [(2 * H + 30, "en"), (5 * H, "es"), (7 * H, "pt-BR"), (9 * H, None), (12 * H, "en"), (14 * H, "es"),
              (16 * H, "pt-BR"), (18 * H, "en"), (20 * H, "es"), (22 * H, None)]
    chi_day = [(3 * H, "pt-BR"), (6 * H, "en"), (9 * H, "es"), (13 * H, None), (18 * H, "en"), (2 * H, "es"),
               (4 * H + 30, "en"), (11 * H, "pt-BR"), (15 * H, None), (20 * H, "es")]
    return [
        # New York: quiet hours 21:00-08:00 (the day starts at 06:00 there), reminders 24 h and 15 min before.
        Visit("ny early, inside quiet hours", "ny", 60, [("confirmation", 0), ("reminder", 45)]),
        *[Visit(f"ny at {s // H}h{s % H:02d}", "ny", s, [("confirmation", 2 * H), ("reminder", s - 15)], lang)
          for s, lang in ny_day],
        Visit("ny tomorrow", "ny", 27 * H, [("confirmation", 2 * H), ("reminder", 3 * H), ("reminder", 27 * H - 15)],
              "es"),
        # When the clocks fall back, quiet hours end only at the 15-minute reminder's due time: the confirmation
        # sent then stands in for it (no two texts at once).
        Visit("ny booked at 22:00 for tomorrow", "ny", 27 * H + 15,
              [("confirmation", quiet_ends_tomorrow), *([("reminder", 27 * H)] * (quiet_ends_tomorrow < 27 * H))],
              "pt-BR", booked_at=16 * H),
        Visit("ny booked at 02:00 for 03:30", "ny", 21 * H + 30, [("confirmation", 20 * H), ("reminder", 21 * H + 15)],
              booked_at=20 * H),
        Visit("ny moved", "ny", 6 * H, [("confirmation", 2 * H), ("reschedule", 4 * H), ("reminder", 9 * H - 15)], "es",
              moves=[(4 * H, 9 * H)]),
        Visit("ny moved to tomorrow", "ny", 5 * H,
              [("confirmation", 2 * H), ("reschedule", 3 * H), ("reminder", 25 * H - 15)], moves=[(3 * H, 25 * H)]),
        Visit("ny moved and back", "ny", 7 * H,
              [("confirmation", 2 * H), ("reschedule", 3 * H), ("reschedule", 5 * H), ("reminder", 7 * H - 15)],
              "pt-BR", moves=[(3 * H, 8 * H), (5 * H, 7 * H)]),
        Visit("ny cancelled", "ny", 8 * H, [("confirmation", 2 * H), ("cancellation", 5 * H)], "es", cancel_at=5 * H),
        Visit("ny cancelled before it was confirmed", "ny", 10 * H, [], cancel_at=H),
        Visit("ny booked as cancelled", "ny", 9 * H, [], status="cancelled"),
        Visit("ny without a mobile", "ny", 5 * H, [], phone="none"),
        Visit("ny mobile abroad", "ny", 5 * H, [], phone="abroad"),
        Visit("ny replies STOP", "ny", 9 * H, [("confirmation", 2 * H)], stop_at=3 * H),
        Visit("ny blocked by the carrier", "ny", 9 * H + 30, [], phone="blocked"),
        Visit("ny reminder lost in skipped runs", "ny", 11 * H + 20, [("confirmation", 2 * H)]),
        Visit("ny reminder late after skipped runs", "ny", 11 * H + 40,
              [("confirmation", 2 * H), ("reminder", 11 * H + 25)]),
        # Los Angeles: no quiet hours (the day starts at 03:00 there), reminders 2 h and 15 min before.
        Visit("la soon", "la", 60, [("confirmation", 0), ("reminder", 45)], None),
        *[Visit(f"la at {s // H}h{s % H:02d}", "la", s,
                [("confirmation", 0), ("reminder", s - 2 * H), ("reminder", s - 15)], lang) for s, lang in la_day],
        Visit("la booked at midday", "la", 10 * H, [("confirmation", 6 * H + 7), ("reminder", 8 * H),
                                                    ("reminder", 10 * H - 15)], "pt-BR", booked_at=6 * H + 7),
        Visit("la booked at short notice", "la", 12 * H + 20, [("confirmation", 12 * H + 2)], "es",
              booked_at=12 * H + 2),
        Visit("la cancelled after a reminder", "la", 7 * H + 30,
              [("confirmation", 0), ("reminder", 5 * H + 30), ("cancellation", 6 * H)], cancel_at=6 * H),
        Visit("la moved later", "la", 4 * H,
              [("confirmation", 0), ("reschedule", 2 * H), ("reminder", 4 * H), ("reminder", 6 * H - 15)], "es",
              moves=[(2 * H, 6 * H)]),
        Visit("la tomorrow", "la", 25 * H, [("confirmation", 0), ("reminder", 23 * H), ("reminder", 25 * H - 15)]),
        # Chicago: confirmations off, one reminder an hour before.
        Visit("chi soon", "chi", 30, [("reminder", 0)], None),
        *[Visit(f"chi at {s // H}h{s % H:02d}", "chi", s, [("reminder", s - H)], lang) for s, lang in chi_day],
        Visit("chi moved", "chi", 4 * H, [("reminder", 3 * H), ("reminder", 5 * H)], moves=[(3 * H + 20, 6 * H)]),
        Visit("chi cancelled", "chi", 9 * H + 30, [("reminder", 8 * H + 30)], "es", cancel_at=8 * H + 40),
        Visit("chi booked at midday", "chi", 10 * H + 40, [("reminder", 10 * H + 3)], "es", booked_at=10 * H + 3),
        # No SMS consent / no linked number: nothing, ever.
        *[Visit(f"no consent {n}", "noconsent", s, []) for n, s in enumerate((3 * H, 5 * H, 8 * H, 12 * H))],
        *[Visit(f"no number {n}", "nonumber", s, []) for n, s in enumerate((3 * H, 5 * H, 8 * H, 12 * H))],
    ]


@dataclass
class DayResult:
    """What the simulated day produced."""

    begin: datetime
    index: int
    visits: list[Visit]
    sites: dict
    numbers: dict[str, str]  # site → its sending number on this day
    received: dict[str, list[tuple[int, str]]]  # phone → (day minute it arrived, text)
    run_minutes: list[int]  # when the job ran
    reports: dict[int, list[RunReport]]  # run minute → the reports of the runs then
    midday_ledger: dict[str, list[dict]]
    log_lines: list[str]


class Day:
    """The world, the clock and the runs."""

    def __init__(self, sandbox, accounts, begin: datetime, index: int):
        self.sandbox, self.accounts, self.begin, self.index = sandbox, accounts, begin, index
        # Each day its own sending numbers: opt-outs and outboxes of an earlier day stay with that day.
        self.numbers = {name: site["number"] and f"{site['number'][:-4]}{index}{site['number'][-3:]}"
                        for name, site in SITES.items()}
        self.oracle, self.acs = sandbox.standins["oracle"], sandbox.standins["acs"]
        self.now = begin
        self.sites: dict = {}
        self.phones: dict[str, Visit] = {}
        self.received: dict[str, list[tuple[int, str]]] = {}
        self.reports: dict[int, list[RunReport]] = {}
        self._seen: dict[str, int] = {}
        self._reports_seen = -1
        self.midday_ledger: dict[str, list[dict]] = {}
        self.lonely = lonely_minute(day_visits(begin))
        self.leftover_faults = self.faults_pending()  # an earlier test's, on paths this day never asks for

    def at(self, minute: float) -> datetime:
        return self.begin + timedelta(minutes=minute)

    def minute(self) -> int:
        return round((self.now - self.begin).total_seconds() / 60)

    # the world ---------------------------------------------------------------------------------------------------

    def open_sites(self) -> None:
        organizations = {"emea": open_organization(self.accounts, "emea"),
                         "americas": open_organization(self.accounts, "americas")}
        no_consent = open_organization(self.accounts, "americas", consented=False)
        for index, (name, site) in enumerate(SITES.items()):
            organization = no_consent if name == "noconsent" else organizations[site["region"]]
            tenant = f"5e7d0c1a-{self.index:04d}-4000-8000-{index:012d}"
            number = self.numbers[name]
            if number:
                self.acs.own_number(number, verification="verified")
            endpoint = {k: site[k] for k in ("time_zone", "quiet_hours", "reminder_offsets", "confirmations_on",
                                              "default_language")}
            self.sites[name] = open_site(self.oracle, self.accounts, self.sandbox.world.fhir_base(tenant), name,
                                         organization, tenant, 7_100_000 + 1_000_000 * self.index + 100_000 * index,
                                         sms_number=number, **endpoint)

    def book(self, visit: Visit, serial: int) -> None:
        area, mobiles, homes = SITES[visit.site]["area"], 1 + 2 * self.index, 2 + 2 * self.index
        mobile = {"mobile": f"{area}5550{mobiles}{serial:02d}", "blocked": f"{area}5550{mobiles}{serial:02d}",
                  "abroad": f"+447911{self.index}234{serial:02d}", "none": None}[visit.phone]
        start = self.at(visit.start)
        visit.booking = book(self.oracle, self.sites[visit.site], start, language=visit.language, mobile=mobile,
                             home=None if mobile else f"{area}5550{homes}{serial:02d}", status=visit.status)
        phone = to_e164(mobile) if mobile else None
        if phone:
            self.phones[phone] = visit
            if visit.phone == "blocked":  # the patient opted out with the carrier; we have not heard of it
                with self.acs.lock:
                    self.acs.opted_out.add((self.numbers[visit.site], phone))

    def events(self, visits: list[Visit]) -> list[tuple[int, str, Visit, int | None]]:
        """World changes in time order: bookings, moves, cancellations, STOP replies."""
        changes = []
        for visit in visits:
            changes += [(at, "move", visit, new) for at, new in visit.moves]
            if visit.cancel_at is not None:
                changes.append((visit.cancel_at, "cancel", visit, None))
            if visit.stop_at is not None:
                changes.append((visit.stop_at, "stop", visit, None))
        return sorted(changes, key=lambda change: change[0])

    def apply(self, kind: str, visit: Visit, new_start: int | None) -> None:
        booking, tenant = visit.booking, self.sites[visit.site].tenant
        if kind == "move":
            self.oracle.reschedule(booking.appointment_id, self.at(new_start), self.at(new_start + 30), tenant=tenant)
        elif kind == "cancel":
            self.oracle.cancel(booking.appointment_id, tenant=tenant)
        elif kind == "stop":
            self.reply(to_e164(booking.mobile), self.numbers[visit.site], "STOP")

    def reply(self, phone: str, number: str, text: str) -> None:
        """The patient texts back; wait until the host's Event Grid function has handled it."""
        received = "Microsoft.Communication.SMSReceived"
        before = len(self.acs.wait_for_events(0, timeout=0, event_type=received))
        response = httpx.post(f"{self.sandbox.world.acs_url}/_sandbox/reply",
                              json={"from": phone, "to": number, "message": text}, timeout=10)
        assert response.status_code == 202
        assert len(self.acs.wait_for_events(before + 1, timeout=PATIENCE, event_type=received)) > before

    # faults ------------------------------------------------------------------------------------------------------

    def faults(self) -> dict[int, Callable[[], None]]:
        """The faults injected at the start of a run, by run minute."""
        return {
            1 * H: lambda: self.oracle.fail_next("/Appointment", 500, count=3),  # one endpoint misses this run
            3 * H: lambda: self.oracle.delay_next("/Patient", 2.5),  # longer than the 2 s timeout: retried
            5 * H: lambda: self.acs.fail_next(429),
            7 * H: lambda: self.acs.fail_next(503, count=2),  # retried in the run, same repeatability id
            self.lonely: lambda: self.acs.fail_next(500, count=3),  # outcome unknown: retried next run
            12 * H + 30: lambda: self.oracle.fail_next("/Patient", 500, count=3),
        }

    def inject(self, minute: int) -> None:
        fault = self.faults().get(minute)
        if fault is not None:
            fault()

    # runs --------------------------------------------------------------------------------------------------------

    def run(self, minute: int) -> bool:
        """Run the job at that minute; True when an injected fault spoiled it or is still waiting for a request (the
        next timer minute must run too, to retry what it spoiled)."""
        self.now = self.at(minute)
        self.inject(minute)
        pending = self.faults_pending()
        if minute in OVERLAPPING_AT:
            threads = [threading.Thread(target=self._run_once) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        else:
            self._run_once()
            if minute in RETRIED_AT:
                self._run_once()
        self.stamp(minute)
        if minute == 6 * H:
            self.midday_ledger = ledger_rows(self.accounts)
        left = self.faults_pending()
        return left > self.leftover_faults or left < pending

    def faults_pending(self) -> int:
        return self.oracle.faults_pending() + self.acs.faults_pending()

    def _run_once(self) -> None:
        minute = self.minute()
        report = run_notifications(self.now, max_seconds=60)
        self.reports.setdefault(minute, []).append(report)  # dict.setdefault and list.append are atomic

    def stamp(self, minute: int) -> None:
        """Note the texts that reached our patients' phones in this run."""
        with self.acs.lock:
            accepted = len(self.acs.reports)
        if accepted == self._reports_seen:
            return
        self._reports_seen = accepted
        for phone in self.phones:
            messages = self.acs.outbox(phone)
            fresh = messages[self._seen.get(phone, 0):]
            self._seen[phone] = len(messages)
            self.received.setdefault(phone, []).extend((minute, m.message) for m in fresh)


def lonely_minute(visits: list[Visit]) -> int:
    """A daytime run that sends exactly one text, so three injected ACS 500s all hit that one text."""
    due = Counter(minute for visit in visits for _kind, minute in visit.expected)
    return next(minute for minute in range(8 * H, 20 * H, 5)
                if due[minute] == 1 and not any(minute < m < minute + 10 for m in due))


def ledger_rows(accounts) -> dict[str, list[dict]]:
    return {region: [dict(e) for e in accounts.table("ledger", region).list_entities()]
            for region in ("americas", "emea", "apac")}


class LogLines(logging.Handler):
    """Every log line of this process while the day runs (the privacy check reads them)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(("sandbox", "uvicorn")):  # the stand-ins are not our app
            self.lines.append(f"{record.name} {record.getMessage()} {record.exc_text or ''}")


@pytest.fixture(scope="module")
def app_settings(sandbox):
    """The job in this process reads the sandbox's settings (a 2 s timeout makes injected delays time out)."""
    settings = AppSettings({**sandbox.settings_env, "HTTP_TIMEOUT_SECONDS": "2"})
    yield
    settings.undo()


@pytest.fixture(scope="module", params=list(DAYS))
def day(request, sandbox, accounts, app_settings) -> Iterator[DayResult]:
    """Run one whole simulated day; the tests below read what it produced. Then its organizations stop texting."""
    oracle = sandbox.standins["oracle"]
    simulation = Day(sandbox, accounts, *DAYS[request.param])
    handler, root = LogLines(), logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    oracle.clock = lambda: simulation.now
    try:
        # The demo organization's and earlier tests' appointments and ledgers belong to real time, not this future
        # (and each run would poll their endpoints for nothing).
        with others_sitting_out(accounts):
            visits = simulate(simulation)
    finally:
        oracle.clock = utc_now
        root.removeHandler(handler)
        root.setLevel(previous_level)
    yield DayResult(simulation.begin, simulation.index, visits, simulation.sites, simulation.numbers,
                     simulation.received, sorted(simulation.reports), simulation.reports, simulation.midday_ledger,
                     handler.lines)
    repository = ConfigRepository(accounts)
    for organization in {site.organization for site in simulation.sites.values()}:  # the day is over
        repository.save_sms_consents(organization, SmsConsents())


def simulate(simulation: Day) -> list[Visit]:
    simulation.open_sites()
    visits = day_visits(simulation.begin)
    for serial, visit in enumerate(visits):
        if visit.booked_at is None:
            simulation.book(visit, serial)
    pending = sorted(((v.booked_at, "book", v, serial) for serial, v in enumerate(visits) if v.booked_at),
                     key=lambda change: change[0])
    changes = sorted([*pending, *simulation.events(visits)], key=lambda change: change[0])
    planned, follow_up = set(run_minutes(simulation.begin, visits, simulation.faults())), False
    for minute in timer_minutes():
        if minute not in planned and not follow_up:
            continue
        while changes and changes[0][0] <= minute:
            at, kind, visit, value = changes.pop(0)
            simulation.now = simulation.at(at)
            simulation.book(visit, value) if kind == "book" else simulation.apply(kind, visit, value)
        follow_up = simulation.run(minute)
    assert not changes, "every change of the day happened before a run"
    return visits


def timer_minutes() -> list[int]:
    """Every minute of the day the host's timer fires (none while the host was down)."""
    return [minute for minute in range(0, DAY_MINUTES + 1, TIMER) if minute not in SKIPPED]


def run_minutes(begin: datetime, visits: list[Visit], faults: Iterable[int]) -> list[int]:
    """The timer minutes at which the job runs: wherever its outcome can change, and once an hour besides.

    Between two moments where something changes (a text falls due, a start passes, a booking changes, quiet hours
    begin or end, the clocks change), a correct job finds nothing new; a run every 5 minutes in between would only
    repeat the one before. So the day runs: for each expected text, the last timer minute before it is due (nothing
    goes early) and the first at or after it (it goes then); the first timer minute at or after every other moment,
    including every due time of every start a visit ever had, also for visits that must get nothing; each retried
    or overlapping run and the one after it; each fault's minute (simulate then runs every timer minute
    until the fault has met a request, and once more: what it spoiled goes then); the first and last minute; and
    every full hour, so long stretches are checked too (test_runs_between_due_times_send_nothing).
    """
    timer = timer_minutes()

    def last_before(moment: int) -> list[int]:
        return [minute for minute in timer if minute < moment][-1:]

    def first_from(moment: int, count: int = 1) -> list[int]:
        return [minute for minute in timer if minute >= moment][:count]

    due = {minute for visit in visits for _kind, minute in visit.expected}
    moments = {minute for visit in visits for minute in (visit.booked_at, visit.cancel_at, visit.stop_at)
               if minute is not None}
    for visit in visits:
        site = SITES[visit.site]
        for start in (visit.start, *(new for _at, new in visit.moves)):
            moments |= {start, *(start - offset for offset in site["reminder_offsets"])}
        moments |= {at for at, _new in visit.moves}
    edges = {minute_at(begin, days_later, hour) for days_later in range(3) for hour in (8, 21)}  # NY quiet hours

    def offset(minute: int, zone: ZoneInfo) -> timedelta | None:
        return (begin + timedelta(minutes=minute)).astimezone(zone).utcoffset()

    changes = {minute for minute in range(TIMER, DAY_MINUTES + 1, TIMER) for zone in ZONES.values()
               if offset(minute, zone) != offset(minute - TIMER, zone)}  # the clocks change
    spoiled = {*RETRIED_AT, *OVERLAPPING_AT}  # (after a fault, simulate runs until it has met a request, and once more)
    runs = {timer[0], timer[-1], 6 * H, *faults, *(minute for minute in timer if minute % H == 0)}
    for moment in due | edges | changes | {SKIPPED.start, SKIPPED.stop}:
        runs |= {*last_before(moment), *first_from(moment)}
    for moment in moments:
        runs |= set(first_from(moment))
    for moment in spoiled:
        runs |= set(first_from(moment, 2))
    return sorted(runs)


# what the patients' phones show ----------------------------------------------------------------------------------


def allowed_minutes(due: int, runs: list[int]) -> list[int]:
    """The run that first sees a text due (and the next one, for a run an injected fault spoiled)."""
    later = [minute for minute in runs if minute >= due]
    return later[:2]


def kind_of(text: str, language: str) -> str | None:
    return next((kind for kind, marker in TEXTS[language].items() if marker in text), None)


def local_time(visit: Visit, begin: datetime, start: int) -> str:
    moment = (begin + timedelta(minutes=start)).astimezone(ZONES[visit.site])
    return moment.strftime("%I:%M %p").lstrip("0") if visit.expected_language == "en" else moment.strftime("%H:%M")


def test_every_expected_text_arrives_exactly_once_in_the_right_language_and_window(day):
    problems = []
    for visit in day.visits:
        if visit.booking.mobile is None or visit.phone != "mobile":
            continue
        got = day.received.get(to_e164(visit.booking.mobile), [])
        kinds = [kind_of(text, visit.expected_language) for _, text in got]
        if kinds != [kind for kind, _ in visit.expected]:
            problems.append(f"{visit.label}: expected {[k for k, _ in visit.expected]}, got {kinds} "
                            f"at {[m for m, _ in got]}")
            continue
        for (kind, due), (minute, text) in zip(visit.expected, got, strict=True):
            start = visit.start_at(minute)
            if minute not in allowed_minutes(due, timer_minutes()) or minute >= start:
                problems.append(f"{visit.label}: {kind} due at {due} arrived at {minute} (start {start})")
            if kind != "cancellation" and "/api/join/" not in text:
                problems.append(f"{visit.label}: {kind} without the join link")
            if local_time(visit, day.begin, start) not in text:
                problems.append(f"{visit.label}: {kind} does not say {local_time(visit, day.begin, start)}: {text}")
            if visit.booking.appointment_id in text:
                problems.append(f"{visit.label}: the appointment id is in the text")
    assert not problems, "\n".join(problems)
    assert sum(len(v.expected) for v in day.visits) >= 90, "the day exercises a real volume of texts"


def test_runs_between_due_times_send_nothing(day):
    """The job also ran where nothing was due (every full hour, and the moments around every start and change)."""
    timer = timer_minutes()
    due = {minute for visit in day.visits for _kind, due in visit.expected for minute in allowed_minutes(due, timer)}
    due |= set(allowed_minutes(2 * H, timer))  # the blocked patient's one try goes with New York's 08:00 texts
    idle = [minute for minute in day.run_minutes if minute not in due]
    assert len(idle) >= 40, "the day has many runs with nothing due"
    sent = {minute: sum(report.counts["sent"] for report in day.reports[minute]) for minute in idle}
    assert not {minute: count for minute, count in sent.items() if count}, "sent while nothing was due"
    arrived = sorted(minute for texts in day.received.values() for minute, _text in texts)
    assert not [minute for minute in arrived if minute in idle], "a text arrived while nothing was due"


def test_nothing_goes_out_without_consent_a_linked_number_a_usable_mobile_or_after_an_opt_out(day, acs):
    def attempts(visit: Visit) -> int:
        """Texts ACS accepted for the visit's phone, delivered or not."""
        phone = to_e164(visit.booking.mobile) if visit.booking.mobile else None
        with acs.lock:
            return len([r for r in acs.reports.values() if phone and r["To"] == phone])

    by_label = {visit.label: visit for visit in day.visits}
    silenced = [visit for visit in day.visits
                if visit.site in ("noconsent", "nonumber") or visit.phone == "abroad" or visit.status == "cancelled"]
    assert len(silenced) >= 4, "the day has visits of every kind that must get nothing"
    for visit in silenced:
        assert attempts(visit) == 0, visit.label
    assert attempts(by_label["ny cancelled before it was confirmed"]) == 0, "never told, so nothing to take back"
    assert attempts(by_label["ny blocked by the carrier"]) == 1, "after the carrier's 'blocked', no more tries"
    assert attempts(by_label["ny replies STOP"]) == 1, "after STOP, no reminder"


def test_runs_stayed_within_acs_limits_and_reported_what_they_did(day, acs):
    assert acs.request_counts["throttled"] == 0, "pacing per number keeps ACS from ever answering 429 by itself"
    totals = Counter()
    for report in (report for reports in day.reports.values() for report in reports):
        totals.update(report.counts)
    assert totals["endpoint_errors"] >= 1 and totals["deferred"] >= 1 and totals["in_flight"] >= 1
    assert totals["carried_over"] >= 1 and totals["retrying"] >= 1, "the injected 429 and 500s were met"
    assert totals["sent"] == sum(len(v.expected) for v in day.visits) + 1, "every send counted (+1 blocked one)"


def test_ledger_rows_are_final_region_pinned_noted_and_purged(day, accounts):
    end = day.begin + timedelta(minutes=DAY_MINUTES)
    ny, la, chi = (day.sites[name].endpoint.id for name in ("ny", "la", "chi"))
    midday = [r for r in day.midday_ledger["emea"] if r["PartitionKey"].startswith(ny)]
    assert {r["detail"] for r in midday if r["status"] == "skipped"} >= {"no_mobile", "unreachable"}
    assert {r["kind"] for r in midday} >= {"confirmation", "reschedule", "cancellation", "reminder"}

    def settled() -> bool:  # delivery reports come back through Event Grid and the host
        ours = [r for r in ledger_rows(accounts)["emea"] if r["PartitionKey"].startswith((ny, la))]
        return all(r["status"] not in ("sending", "sent") for r in ours)

    wait_until(settled, interval=0.2)
    rows = ledger_rows(accounts)
    ours = [r for r in rows["emea"] if r["PartitionKey"].startswith((ny, la))]
    assert ours and set(Counter(r["status"] for r in ours)) <= {"delivered", "skipped", "opted_out", "lost"}
    assert not [r for r in rows["americas"] + rows["apac"] if r["PartitionKey"].startswith((ny, la))]
    assert [r for r in day.midday_ledger["americas"] if r["PartitionKey"].startswith(chi)], "chi's is americas"
    assert not [r for r in day.midday_ledger["emea"] + day.midday_ledger["apac"] if r["PartitionKey"].startswith(chi)]
    assert not [r for r in rows["emea"] + rows["americas"]
                if r.get("appointment_end") and r["appointment_end"] < end - timedelta(hours=2)
                and r["PartitionKey"].startswith((ny, la, chi))], "rows of visits that ended are purged"
    optouts = [r for r in rows["emea"] if r["PartitionKey"] == optout_partition(day.numbers["ny"])]
    assert sorted(r["status"] for r in optouts) == ["opted_out", "opted_out"], "STOP and the carrier's block"


def test_the_usage_report_learns_which_visits_had_a_text(day, accounts):
    endpoints = {name: day.sites[name].endpoint.id for name in ("ny", "la")}
    usage = [dict(e) for e in accounts.table("usage", "emea").list_entities()
             if e["PartitionKey"].startswith(tuple(endpoints.values()))]
    texted = {visit_key(endpoints[v.site], v.booking.appointment_id) for v in day.visits
              if v.site in endpoints and (v.expected or v.phone == "blocked")}
    assert {r["RowKey"] for r in usage if r.get("sms_sent")} == texted


def secrets_of(oracle) -> set[str]:
    """Every name, phone number, birth date, patient id and appointment id the Oracle Health stand-in holds."""
    values: set[str] = set()
    for tenant in oracle.tenants:
        for patient in oracle.all_resources("Patient", tenant):
            values.update([patient["id"], patient.get("birthDate", "")])
            for name in patient.get("name", []):
                values.update([name.get("text", ""), name.get("family", ""), *name.get("given", [])])
            for telecom in patient.get("telecom", []):
                values.update([telecom["value"], to_e164(telecom["value"]) or ""])
        values.update(a["id"] for a in oracle.all_resources("Appointment", tenant))
    return {value for value in values if len(value) >= 4}


def test_tables_and_logs_hold_no_patient_data(day, sandbox, accounts, oracle):
    secrets = secrets_of(oracle)
    assert len(secrets) > 200
    for account in (None, "americas", "emea", "apac"):
        service = accounts.service(account)
        for table in service.list_tables():
            for entity in service.get_table_client(table.name).list_entities():
                assert entity.get("Kind") in SCHEMA.get(table.name, {}), f"{table.name}/{entity.get('Kind')}"
                text = " ".join(str(value) for value in {**entity, "_keys": (entity["PartitionKey"],
                                                                              entity["RowKey"])}.values())
                assert not [s for s in secrets if s in text], f"a {table.name} row holds patient data"
    logs = "\n".join(day.log_lines) + (sandbox.state_dir / "host.log").read_text()
    assert "sms event SMSDeliveryReportReceived: delivered" in logs, "the host handled delivery reports"
    assert not [s for s in secrets if s in logs], "a log line holds patient data"


def test_the_timer_runs_through_the_host(day, sandbox, accounts, oracle, acs):
    """The real path: the host's admin endpoint fires the timer function, which texts a booking made just now."""
    site = day.sites["la"]
    booking = book(oracle, site, utc_now() + timedelta(hours=3), language="es",
                   mobile=f"4155550{1 + 2 * day.index}99")  # serial 99: no visit of the simulated day has it
    row = (day_partition(site.endpoint.id, booking.start),
           sealer().keyed_hash("sms", site.endpoint.id, booking.appointment_id, "confirmation"))
    with demo_sitting_out(accounts):  # this run texts our booking only, and is over when it is recorded
        response = httpx.post(f"{sandbox.world.host_url}/admin/functions/sms_notifications", json={}, timeout=10,
                              headers={"x-functions-key": sandbox.host_keys.master})
        assert response.status_code == 202

        def recorded() -> bool:
            entity = LedgerRepository(accounts).get("emea", *row)
            return bool(entity) and entity["status"] in ("sent", "delivered")

        assert wait_until(recorded, interval=0.1), "the host's run recorded the confirmation"
    [message] = acs.outbox(to_e164(booking.mobile))
    assert message.from_ == day.numbers["la"] and kind_of(message.message, "es") == "confirmation"
