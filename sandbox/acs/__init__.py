"""Azure Communication Services stand-in: HMAC-signed SMS, opt-outs, phone-number LROs, Event Grid reports, outbox."""

from sandbox.acs.app import build_app
from sandbox.acs.numbers import (
    get_number,
    get_operation,
    get_search_result,
    list_numbers,
    purchase_numbers,
    search_numbers,
)
from sandbox.acs.pages import (
    home,
    outbox_index,
    outbox_json,
    outbox_json_for,
    outbox_phone,
    sandbox_numbers,
    sandbox_reply,
    sandbox_verification,
)
from sandbox.acs.phones import (
    CLOCK_SKEW,
    DELIVERED_DETAIL,
    DEMO_NUMBER,
    MAX_MESSAGE_CHARS,
    MAX_RECIPIENTS,
    NO_RETRY_STATUSES,
    OPTED_OUT_DETAIL,
    REPEATABILITY_DATE_ERROR,
    RESOURCE_TOPIC,
    SEARCH_HOLD,
    SIGNED_HEADERS_REQUIRED,
    START_WORDS,
    STOP_WORDS,
    TOLL_FREE_AREA_CODES,
    TOLL_FREE_COUNTRIES,
    TOLL_FREE_REACHABLE_REGIONS,
    acs_error,
    is_e164,
    normalize_phone,
    segment_count,
    toll_free_reaches,
)
from sandbox.acs.records import Delivery, InboundMessage, NumberSearch, Operation, OutboxMessage, OwnedNumber
from sandbox.acs.signing import ApiHandler, hmac_problem
from sandbox.acs.sms import get_delivery_report, send_sms
from sandbox.acs.state import AcsState

__all__ = [
    "CLOCK_SKEW", "DELIVERED_DETAIL", "DEMO_NUMBER", "MAX_MESSAGE_CHARS", "MAX_RECIPIENTS", "NO_RETRY_STATUSES",
    "OPTED_OUT_DETAIL", "REPEATABILITY_DATE_ERROR", "RESOURCE_TOPIC", "SEARCH_HOLD", "SIGNED_HEADERS_REQUIRED",
    "START_WORDS", "STOP_WORDS", "TOLL_FREE_AREA_CODES", "TOLL_FREE_COUNTRIES", "TOLL_FREE_REACHABLE_REGIONS",
    "AcsState", "ApiHandler", "Delivery", "InboundMessage", "NumberSearch", "Operation", "OutboxMessage",
    "OwnedNumber", "acs_error", "build_app", "get_delivery_report", "get_number", "get_operation",
    "get_search_result", "hmac_problem", "home", "is_e164", "list_numbers", "normalize_phone", "outbox_index",
    "outbox_json", "outbox_json_for", "outbox_phone", "purchase_numbers", "sandbox_numbers", "sandbox_reply",
    "sandbox_verification", "search_numbers", "segment_count", "send_sms", "toll_free_reaches",
]
