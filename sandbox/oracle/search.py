"""Cerner's Appointment search rules: one actor parameter, a date or date range, status, _count, paging."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.oracle.resources import actor_ids, parse_instant

ACTOR_PARAMS = ("_id", "patient", "practitioner", "location")
ACTOR_TYPES = {"patient": "Patient", "practitioner": "Practitioner", "location": "Location"}
DEFAULT_COUNT = 20
MAX_COUNT = 100
DATE_VALUE = re.compile(
    r"^(?P<prefix>eq|ne|gt|lt|ge|le|sa|eb|ap)?"
    r"(?P<date>\d{4}-\d{2}-\d{2})(?P<time>T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$"
)
LOWER_PREFIXES = ("ge", "gt")
UPPER_PREFIXES = ("le", "lt")


class SearchError(ValueError):
    """A search Cerner would answer with 400 and this message."""


@dataclass(frozen=True)
class DateRange:
    """Appointments must start at/after `lower` and end at/before `upper` (or start exactly at `exact`)."""

    lower: datetime | None = None
    upper: datetime | None = None
    upper_inclusive: bool = False
    exact: datetime | None = None

    def contains(self, start: datetime, end: datetime) -> bool:
        """Whether an appointment lies wholly within the range."""
        if self.exact is not None:
            return start == self.exact
        if self.lower is not None and start < self.lower:
            return False
        if self.upper is None:
            return True
        return end <= self.upper if self.upper_inclusive else end < self.upper


@dataclass(frozen=True)
class AppointmentQuery:
    """A validated Appointment search."""

    actor: str
    ids: tuple[str, ...]
    dates: DateRange | None
    statuses: tuple[str, ...]
    count: int


def single(params: list[tuple[str, str]], name: str) -> str | None:
    """The value of a parameter that may appear at most once."""
    values = [value for key, value in params if key == name]
    if len(values) > 1:
        raise SearchError(f"the '{name}' parameter may only be provided once; use a comma separated list")
    return values[0] if values else None


def comma_list(value: str) -> tuple[str, ...]:
    """Non-empty items of a comma separated list."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


def actor_parameter(params: list[tuple[str, str]]) -> tuple[str, tuple[str, ...]]:
    """Exactly one of _id | patient | practitioner | location, with its ids."""
    given = [name for name in ACTOR_PARAMS if single(params, name) is not None]
    if not given:
        raise SearchError("no supported search parameters provided: one of '_id', 'patient', 'practitioner' or "
                          "'location' must be set")
    if len(given) > 1:
        raise SearchError("no supported search parameters provided: '_id', 'patient', 'practitioner' and "
                          f"'location' may not be combined (got {', '.join(given)})")
    ids = comma_list(single(params, given[0]) or "")
    if not ids:
        raise SearchError(f"the '{given[0]}' parameter must not be empty")
    return given[0], ids


def parse_date(value: str) -> tuple[str, datetime, bool]:
    """(prefix, moment, has_time) of one date value; a time needs a timezone."""
    match = DATE_VALUE.match(value)
    if match is None:
        raise SearchError(f"invalid date '{value}': use YYYY-MM-DD or a dateTime with a timezone")
    prefix = match["prefix"] or ""
    if prefix not in ("", "eq", *LOWER_PREFIXES, *UPPER_PREFIXES):
        raise SearchError(f"the date prefix '{prefix}' is not supported")
    if match["time"]:
        return prefix, parse_instant(match["date"] + match["time"]).astimezone(UTC), True
    return prefix, datetime.fromisoformat(match["date"]).replace(tzinfo=UTC), False


def bound(prefix: str, moment: datetime, has_time: bool) -> DateRange:
    """A one-sided range for ge/gt/le/lt; whole days when there is no time."""
    day = timedelta(0) if has_time else timedelta(days=1)
    if prefix == "ge":
        return DateRange(lower=moment)
    if prefix == "gt":
        return DateRange(lower=moment + day if not has_time else moment + timedelta(microseconds=1))
    if prefix == "lt":
        return DateRange(upper=moment)
    return DateRange(upper=moment + day, upper_inclusive=has_time)


def date_range(values: list[str]) -> DateRange:
    """Once (with or without a prefix) or twice as a closed ge/gt + le/lt pair."""
    parsed = [parse_date(value) for value in values]
    if len(parsed) == 1:
        prefix, moment, has_time = parsed[0]
        if prefix in ("", "eq"):
            return DateRange(exact=moment) if has_time else DateRange(lower=moment, upper=moment + timedelta(days=1))
        return bound(prefix, moment, has_time)
    prefixes = sorted(prefix for prefix, _, _ in parsed)
    if len(parsed) != 2 or prefixes[0] not in LOWER_PREFIXES or prefixes[1] not in UPPER_PREFIXES:
        raise SearchError("the 'date' parameter may be provided once, or twice with prefixes that create a closed "
                          "range (ge/gt and le/lt)")
    lower, upper = sorted((bound(*item) for item in parsed), key=lambda r: r.lower is None)
    return DateRange(lower=lower.lower, upper=upper.upper, upper_inclusive=upper.upper_inclusive)


def page_size(raw: str | None) -> int:
    """_count, default 20, at most 100."""
    if raw is None:
        return DEFAULT_COUNT
    if not raw.isdigit() or int(raw) < 1:
        raise SearchError("_count must be a positive integer")
    return min(int(raw), MAX_COUNT)


def appointment_query(params: list[tuple[str, str]]) -> AppointmentQuery:
    """Validate an Appointment search as Cerner does."""
    actor, ids = actor_parameter(params)
    dates = [value for key, value in params if key == "date"]
    if actor != "_id" and not dates:
        raise SearchError("the 'date' parameter must be set when searching by patient, practitioner or location")
    statuses = comma_list(single(params, "status") or "")
    count = page_size(single(params, "_count"))
    return AppointmentQuery(actor, ids, date_range(dates) if dates and actor != "_id" else None, statuses, count)


def matches(resource: dict[str, Any], query: AppointmentQuery) -> bool:
    """Whether an Appointment answers the query."""
    if query.actor == "_id":
        return resource["id"] in query.ids
    if not set(actor_ids(resource, ACTOR_TYPES[query.actor])) & set(query.ids):
        return False
    if query.statuses and resource["status"] not in query.statuses:
        return False
    if resource["status"] == "proposed" or "start" not in resource:
        return False
    assert query.dates is not None
    return query.dates.contains(parse_instant(resource["start"]), parse_instant(resource["end"]))


def find_appointments(appointments: list[dict[str, Any]], query: AppointmentQuery) -> list[dict[str, Any]]:
    """Matching appointments sorted by start (then id)."""
    found = [resource for resource in appointments if matches(resource, query)]
    return sorted(found, key=lambda r: (r.get("start", ""), r["id"]))


def encode_page(params: list[tuple[str, str]], offset: int) -> str:
    """Opaque pageContext carrying the search and where the next page starts."""
    raw = json.dumps({"p": params, "o": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_page(context: str) -> tuple[list[tuple[str, str]], int]:
    """The search and offset inside a pageContext; SearchError when it is not ours."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(context + "=" * (-len(context) % 4)))
        return [(str(k), str(v)) for k, v in raw["p"]], int(raw["o"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise SearchError("invalid pageContext") from None
