"""ACS phone-number search and purchase through the real SDK, one polling step per call (never waiting).

Each long-running operation is started, then resumed from its continuation token on every status request of
the portal, which does exactly one status call: the browser's polling drives the operation on, so no request
blocks for the minutes real ACS can take, and no background worker is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.core.polling import LROPoller
from azure.core.polling.base_polling import LROBasePolling, OperationFailed

from shared.errors import DependencyFailed
from shared.settings import get_settings
from shared.sms.acs import acs_client

if TYPE_CHECKING:
    from azure.communication.phonenumbers import PhoneNumbersClient

Status = Literal["running", "succeeded", "failed"]


@dataclass(frozen=True)
class Step:
    """Where an operation stands after one step; `token` resumes it, `result` is the search result when done."""

    status: Status
    token: str = ""
    result: Any = None
    error_code: str = ""


class _NotYet(Exception):
    """Raised instead of sleeping between two polls."""


class StepPolling(LROBasePolling):
    """LRO polling that makes at most one status request per run and returns instead of waiting."""

    def _delay(self) -> None:
        raise _NotYet

    def run(self) -> None:
        try:
            super().run()
        except _NotYet:
            return


def numbers_client() -> PhoneNumbersClient:
    """The process's phone-numbers SDK client (same credential and call counting as SMS)."""
    from azure.communication.phonenumbers import PhoneNumbersClient  # the first number operation loads the SDK

    return acs_client(PhoneNumbersClient)


def _polling(final_via_location: bool) -> StepPolling:
    options = {"final-state-via": "location"} if final_via_location else None
    return StepPolling(0, lro_options=options, path_format_arguments={"endpoint": get_settings().acs_endpoint})


def _step(begin: Callable[..., LROPoller]) -> Step:
    """Start or resume an operation and take one step, mapping SDK outcomes to a Step or a typed error."""
    try:
        poller = begin()
        poller.wait()
    except HttpResponseError as exc:
        if isinstance(exc.inner_exception, OperationFailed):
            code = getattr(exc.error, "code", None) or "OperationFailed"
            return Step("failed", error_code=str(code)[:64])
        raise DependencyFailed(f"Azure Communication Services answered HTTP {exc.status_code}.",
                               next_step="Try again in a minute. If it keeps happening, tell IT.") from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise DependencyFailed("Azure Communication Services could not be reached.",
                               next_step="Try again in a minute.") from exc
    # done() only says the polling thread ended; whether the operation finished is the polling method's to say.
    if not poller.polling_method().finished():
        return Step("running", poller.continuation_token())
    return Step("succeeded", poller.continuation_token(), poller.result())


def _toll_free_search(country_code: str, **options: Any) -> Step:
    """Start or resume a search for one toll-free number that can send and receive SMS."""
    from azure.communication.phonenumbers import (  # the first number operation loads the SDK, not cold start
        PhoneNumberAssignmentType,
        PhoneNumberCapabilities,
        PhoneNumberCapabilityType,
        PhoneNumberType,
    )

    capabilities = PhoneNumberCapabilities(calling=PhoneNumberCapabilityType.NONE,
                                           sms=PhoneNumberCapabilityType.INBOUND_OUTBOUND)
    return _step(lambda: numbers_client().begin_search_available_phone_numbers(
        country_code, PhoneNumberType.TOLL_FREE, PhoneNumberAssignmentType.APPLICATION, capabilities,
        polling=_polling(True), **options))


def start_search(country_code: str) -> Step:
    """Search one toll-free number that can send and receive SMS (STOP replies must reach us)."""
    return _toll_free_search(country_code, quantity=1)


def continue_search(token: str) -> Step:
    # The SDK wants the search arguments even when resuming; the continuation token alone decides what is polled.
    return _toll_free_search("US", continuation_token=token)


def start_purchase(search_id: str) -> Step:
    return _step(lambda: numbers_client().begin_purchase_phone_numbers(search_id, polling=_polling(False)))


def continue_purchase(token: str) -> Step:
    return _step(lambda: numbers_client().begin_purchase_phone_numbers(
        "", polling=_polling(False), continuation_token=token))
