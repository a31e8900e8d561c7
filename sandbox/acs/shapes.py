"""ACS's wire details the state and the routes share: HTTP dates, per-recipient results, report and event bodies."""

from __future__ import annotations

import hmac
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from sandbox.acs.phones import RESOURCE_TOPIC, TOLL_FREE_AREA_CODES, TOLL_FREE_COUNTRIES, iso
from sandbox.acs.records import Delivery


def parse_http_date(value: object) -> datetime | None:
    """An RFC 1123 date with its zone, or None."""
    if not isinstance(value, str):
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else None


def same(given: str, expected: str) -> bool:
    """Constant-time string comparison (signatures, keys)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def failed_item(to: object, status: int, message: str, repeatability: str | None = None) -> dict[str, Any]:
    """A per-recipient result that did not succeed."""
    item: dict[str, Any] = {"to": to, "httpStatusCode": status, "successful": False, "errorMessage": message}
    if repeatability:
        item["repeatabilityResult"] = repeatability
    return item


def inventory_problem(country_code: str, request: dict[str, Any]) -> dict[str, str] | None:
    """Why a number search finds nothing (ACS's error body), or None when it can."""
    kind, area_code = request["phoneNumberType"], request.get("areaCode")
    if kind == "tollFree" and country_code not in TOLL_FREE_COUNTRIES:
        return {"code": "NoInventory", "message": f"No toll-free numbers are available in country {country_code}."}
    if kind == "tollFree" and area_code and area_code not in TOLL_FREE_AREA_CODES:
        return {"code": "NoInventory", "message": "No toll-free numbers are available for the requested area code."}
    if kind == "geographic" and country_code != "US":
        return {"code": "NoInventory", "message": f"No geographic numbers are available in country {country_code}."}
    return None


def report_json(delivery: Delivery, now: datetime) -> dict[str, Any]:
    """A delivery report's data as Event Grid and the report endpoint carry it."""
    delivered = delivery.status == "Delivered"
    return {
        "MessageId": delivery.message_id, "From": delivery.from_, "To": delivery.to,
        "DeliveryStatus": delivery.status, "DeliveryStatusDetails": delivery.detail,
        "ReceivedTimestamp": iso(now),
        "DeliveryAttempts": [{
            "Timestamp": iso(now),
            "SegmentsSucceeded": delivery.segments if delivered else 0,
            "SegmentsFailed": 0 if delivered else delivery.segments,
        }],
        **({"Tag": delivery.tag} if delivery.tag is not None else {}),
    }


def event_envelope(event_type: str, event_id: str, number: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An Event Grid event from the ACS resource about one phone number."""
    return {
        "id": event_id, "topic": RESOURCE_TOPIC, "subject": f"/phonenumber/{number.lstrip('+')}", "data": data,
        "eventType": event_type, "dataVersion": "1.0", "metadataVersion": "1", "eventTime": iso(now),
    }
