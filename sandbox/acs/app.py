"""The ACS stand-in as a Starlette app."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from sandbox.acs.email import get_operation as get_email_operation
from sandbox.acs.email import send_email
from sandbox.acs.inbox import inbox_address, inbox_index
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
    outbox_phone,
    sandbox_numbers,
    sandbox_reply,
    sandbox_verification,
)
from sandbox.acs.signing import ApiHandler, signed
from sandbox.acs.sms import get_delivery_report, optouts_route, send_sms
from sandbox.acs.state import AcsState


def build_app(state: AcsState) -> Starlette:
    """The ACS stand-in as an ASGI app bound to `state`."""

    def api(path: str, name: str, handler: ApiHandler, method: str, needs_api_version: bool = True) -> Route:
        return Route(path, signed(state, name, handler, needs_api_version), methods=[method], name=name)

    routes = [
        api("/sms", "sms.send", send_sms, "POST"),
        api("/sms/optouts:check", "sms.optouts.check", optouts_route("check"), "POST"),
        api("/sms/optouts:add", "sms.optouts.add", optouts_route("add"), "POST"),
        api("/sms/optouts:remove", "sms.optouts.remove", optouts_route("remove"), "POST"),
        api("/deliveryReports/{message_id}", "sms.deliveryReport", get_delivery_report, "GET"),
        api("/emails:send", "email.send", send_email, "POST"),
        api("/emails/operations/{operation_id}", "email.operation", get_email_operation, "GET"),
        api("/availablePhoneNumbers/countries/{country_code}/:search", "numbers.search", search_numbers, "POST"),
        api("/availablePhoneNumbers/:purchase", "numbers.purchase", purchase_numbers, "POST"),
        api("/availablePhoneNumbers/searchResults/{search_id}", "numbers.searchResult", get_search_result, "GET",
            needs_api_version=False),
        api("/phoneNumbers/operations/{operation_id}", "numbers.operation", get_operation, "GET",
            needs_api_version=False),
        api("/phoneNumbers", "numbers.list", list_numbers, "GET"),
        api("/phoneNumbers/{phone_number}", "numbers.get", get_number, "GET"),
        Route("/", home, methods=["GET"]),
        Route("/outbox", outbox_index, methods=["GET"]),
        Route("/outbox/{phone}.json", outbox_json, methods=["GET"]),
        Route("/outbox/{phone}", outbox_phone, methods=["GET"]),
        Route("/inbox", inbox_index, methods=["GET"]),
        Route("/inbox/{address}", inbox_address, methods=["GET"]),
        Route("/_sandbox/reply", sandbox_reply, methods=["POST"]),
        Route("/_sandbox/numbers", sandbox_numbers, methods=["GET"]),
        Route("/_sandbox/verification", sandbox_verification, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.acs = state
    return app
