"""ACS's rules for numbers and messages: E.164, toll-free reach, segments, error bodies."""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import phonenumbers
from starlette.responses import JSONResponse

DEMO_NUMBER = "+18005550100"
TOLL_FREE_AREA_CODES = ("800", "833", "844", "855", "866", "877", "888")
TOLL_FREE_REACHABLE_REGIONS = frozenset({"US", "CA", "PR"})
TOLL_FREE_COUNTRIES = frozenset({"US", "CA"})
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
MAX_MESSAGE_CHARS = 2048
MAX_RECIPIENTS = 100
CLOCK_SKEW = timedelta(minutes=15)
SEARCH_HOLD = timedelta(minutes=16)
RESOURCE_TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sandbox/providers/"
    "microsoft.communication/communicationservices/sandbox-acs"
)
SIGNED_HEADERS_REQUIRED = frozenset({"x-ms-date", "host", "x-ms-content-sha256"})
DELIVERED_DETAIL = "No error."
OPTED_OUT_DETAIL = "Sender blocked for given recipient"
REPEATABILITY_DATE_ERROR = (
    "Request sent with Invalid DateTime value for repeatability-first-sent. Expected is DateTime ,RFC1123 pattern."
)
NO_RETRY_STATUSES = frozenset({400, 403, 413})
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
URL = re.compile(r"https?://[^\s<>\"']+")
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)


def utc_now() -> datetime:
    """Real time, in UTC."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """An ACS timestamp: UTC with microseconds and a Z."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_message_id(direction: str, moment: datetime) -> str:
    """A message id shaped like ACS's: direction, time stamp and a uuid."""
    return f"{direction}_{moment.strftime('%Y%m%d%H%M%S')}{uuid.uuid4()}"


def is_e164(number: object) -> bool:
    """Whether `number` is an E.164 phone number as ACS accepts it (+1 numbers have exactly 10 digits)."""
    if not isinstance(number, str) or not _E164.match(number):
        return False
    return len(number) == 12 if number.startswith("+1") else True


def toll_free_reaches(number: str) -> bool:
    """Whether a US toll-free sender can text `number` (US, CA and PR only; other NANP countries excluded)."""
    if not number.startswith("+1"):
        return False
    region = phonenumbers.region_code_for_number(phonenumbers.parse(number))
    return region is None or region in TOLL_FREE_REACHABLE_REGIONS


def segment_count(message: str) -> int:
    """SMS segments a carrier bills: GSM-7 160/153 characters, otherwise UCS-2 70/67."""
    single, multi = (160, 153) if set(message) <= _GSM7 else (70, 67)
    return 1 if len(message) <= single else math.ceil(len(message) / multi)


def normalize_phone(raw: str) -> str:
    """A phone number from a URL path in E.164 form ('+' restored when a browser or client dropped it)."""
    digits = raw.strip().replace(" ", "")
    return digits if digits.startswith("+") else f"+{digits}"


def acs_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error response with the ACS body shape."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def status_code_name(status: int) -> str:
    """'Bad Request' → 'BadRequest': the error code ACS puts beside an HTTP status."""
    try:
        return "".join(word.capitalize() for word in HTTPStatus(status).phrase.split())
    except ValueError:
        return "Error"
