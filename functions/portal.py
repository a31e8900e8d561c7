"""Admin portal: Microsoft sign-in, the configuration wizard page and its JSON API under /api/portal."""

import functools
import logging
from collections.abc import Callable
from urllib.parse import parse_qs

import azure.functions as func

from functions.lazy import lazy
from functions.responses import (
    friendly_errors,
    html_response,
    json_response,
    query,
    redirect_response,
    request_cookie,
    wants_json,
)
from shared.errors import ConnectorError, NotSignedIn

auth, endpoints, licence, pages = (lazy(f"shared.portal.{name}") for name in ("auth", "endpoints", "licence", "pages"))
records, sms, status, inputs = (lazy(f"shared.portal.{name}") for name in ("records", "sms", "status", "inputs"))

bp = func.Blueprint()
log = logging.getLogger("connector")
ANONYMOUS = func.AuthLevel.ANONYMOUS
Handler = Callable[[func.HttpRequest], func.HttpResponse]


def json_api(handler: Handler) -> Handler:
    """API errors are JSON whatever the Accept header says; the unexpected still goes to friendly_errors."""

    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return handler(req)
        except ConnectorError as error:
            log.warning("portal request failed: %s %s (reference %s)", error.status, error.code, error.reference)
            return json_response(error.as_dict(), status=error.status)

    return friendly_errors(wrapper)


def credentials(req: func.HttpRequest) -> "auth.Credentials":
    return auth.Credentials(request_cookie(req, auth.SESSION_COOKIE.name), req.headers.get("x-csrf-token"))


def form_credentials(req: func.HttpRequest) -> "auth.Credentials":
    """For the sign-out form, which cannot set a header: the token comes as a form field."""
    body = req.get_body()[:inputs.MAX_BODY_BYTES].decode("utf-8", "replace")
    token = req.headers.get("x-csrf-token") or (parse_qs(body).get("csrf_token") or [None])[0]
    return auth.Credentials(request_cookie(req, auth.SESSION_COOKIE.name), token)


# --- pages and sign-in -------------------------------------------------------------------------------------------


@bp.route(route="portal", methods=["GET"], auth_level=ANONYMOUS)
@friendly_errors
def portal_page(req: func.HttpRequest) -> func.HttpResponse:
    """The configuration wizard, or the sign-in page."""
    html = pages.portal_page(credentials(req))
    return html_response(html, headers={"Content-Security-Policy": pages.CONTENT_SECURITY_POLICY})


@bp.route(route="portal/static/{name}", methods=["GET"], auth_level=ANONYMOUS)
@friendly_errors
def portal_asset(req: func.HttpRequest) -> func.HttpResponse:
    """The wizard's script and style."""
    asset = pages.asset(req.route_params.get("name", ""))
    return func.HttpResponse(asset.body, mimetype=asset.mimetype, headers={
        "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


@bp.route(route="portal/auth/signin", methods=["GET"], auth_level=ANONYMOUS)
@friendly_errors
def portal_sign_in(req: func.HttpRequest) -> func.HttpResponse:
    """On to Microsoft's sign-in (an optional login_hint skips the account picker)."""
    outcome = auth.begin(query(req).get("login_hint"))
    return redirect_response(outcome.location, outcome.cookies)


@bp.route(route="portal/auth/callback", methods=["GET"], auth_level=ANONYMOUS)
@friendly_errors
def portal_sign_in_callback(req: func.HttpRequest) -> func.HttpResponse:
    """Microsoft's redirect back: a session for an administrator, a page naming the role for anyone else."""
    outcome = auth.finish(query(req), request_cookie(req, auth.SIGN_IN_COOKIE.name))
    return redirect_response(outcome.location, outcome.cookies)


@bp.route(route="portal/auth/signout", methods=["POST"], auth_level=ANONYMOUS)
@friendly_errors
def portal_sign_out(req: func.HttpRequest) -> func.HttpResponse:
    """End the portal session and the Microsoft session."""
    outcome = auth.sign_out(form_credentials(req))
    return redirect_response(outcome.location, outcome.cookies, status=303)


# --- JSON API ----------------------------------------------------------------------------------------------------


@bp.route(route="portal/me", methods=["GET"], auth_level=ANONYMOUS)
@json_api
def portal_me(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(auth.authenticate(credentials(req)).public())


@bp.route(route="portal/region", methods=["GET"], auth_level=ANONYMOUS)
@json_api
def portal_region(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(endpoints.region(credentials(req)))


@bp.route(route="portal/region", methods=["PUT"], auth_level=ANONYMOUS)
@json_api
def portal_region_choose(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(endpoints.choose_region(credentials(req), req.get_body()))


@bp.route(route="portal/endpoints", methods=["GET"], auth_level=ANONYMOUS)
@json_api
def portal_endpoints(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(endpoints.list_endpoints(credentials(req)))


@bp.route(route="portal/endpoints", methods=["POST"], auth_level=ANONYMOUS)
@json_api
def portal_endpoint_add(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(endpoints.add(credentials(req), req.get_body()), status=201)


@bp.route(route="portal/endpoints/validate", methods=["POST"], auth_level=ANONYMOUS)
@json_api
def portal_endpoint_validate(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(endpoints.check(credentials(req), req.get_body()))


@bp.route(route="portal/endpoints/{id}", methods=["PUT"], auth_level=ANONYMOUS)
@json_api
def portal_endpoint_update(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(endpoints.update(credentials(req), req.route_params.get("id", ""), req.get_body()))


@bp.route(route="portal/endpoints/{id}", methods=["DELETE"], auth_level=ANONYMOUS)
@json_api
def portal_endpoint_remove(req: func.HttpRequest) -> func.HttpResponse:
    """Without confirm=true a 409 says what would be deleted (the providers' links); with it, removes."""
    return json_response(endpoints.remove(credentials(req), req.route_params.get("id", ""), query(req).get("confirm")))


@bp.route(route="portal/endpoints/{id}/sms", methods=["PUT"], auth_level=ANONYMOUS)
@json_api
def portal_endpoint_sms(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(sms.save_endpoint_sms(credentials(req), req.route_params.get("id", ""), req.get_body()))


@bp.route(route="portal/sms/consents", methods=["GET"], auth_level=ANONYMOUS)
@json_api
def portal_consents(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(sms.consents(credentials(req)))


@bp.route(route="portal/sms/consents", methods=["PUT"], auth_level=ANONYMOUS)
@json_api
def portal_consents_save(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(sms.save_consents(credentials(req), req.get_body()))


@bp.route(route="portal/sms/numbers", methods=["GET"], auth_level=ANONYMOUS)
@json_api
def portal_numbers(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(sms.list_numbers(credentials(req)))


@bp.route(route="portal/sms/numbers", methods=["POST"], auth_level=ANONYMOUS)
@json_api
def portal_number_generate(req: func.HttpRequest) -> func.HttpResponse:
    """Starts generating a number and returns at once (202); poll its Location for progress."""
    started = sms.generate(credentials(req), req.get_body())
    return json_response(started, status=202, headers={"Location": f"/api/portal/sms/numbers/{started['id']}"})


@bp.route(route="portal/sms/numbers/{id}", methods=["GET"], auth_level=ANONYMOUS)
@json_api
def portal_number_status(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(sms.number_status(credentials(req), req.route_params.get("id", "")))


@bp.route(route="portal/sms/numbers/{id}/advance", methods=["POST"], auth_level=ANONYMOUS)
@json_api
def portal_number_advance(req: func.HttpRequest) -> func.HttpResponse:
    """One step of the search or purchase; the browser polls here while it shows progress."""
    return json_response(sms.advance_number(credentials(req), req.route_params.get("id", "")))


@bp.route(route="portal/sms/numbers/{id}", methods=["PUT"], auth_level=ANONYMOUS)
@json_api
def portal_number_verification(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(sms.set_verification(credentials(req), req.route_params.get("id", ""), req.get_body()))


@bp.route(route="portal/records", methods=["GET"], auth_level=ANONYMOUS)
@json_api
def portal_records(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(records.records(credentials(req)))


@bp.route(route="portal/licence", methods=["GET"], auth_level=ANONYMOUS)
@json_api
def portal_licence(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(licence.portal_licence(credentials(req)))


@bp.route(route="portal/status", methods=["GET"], auth_level=ANONYMOUS)
@friendly_errors
def portal_status(req: func.HttpRequest) -> func.HttpResponse:
    """The status page for people, or the same checks as JSON (format=json or Accept: application/json)."""
    output = "json" if query(req).get("format") == "json" or wants_json(req) else "html"
    try:
        body = status.status_view(credentials(req), output)
    except NotSignedIn as error:
        if output == "json":
            return json_response(error.as_dict(), status=error.status)
        return redirect_response("/api/portal/auth/signin")
    except ConnectorError as error:
        if output != "json":
            raise
        return json_response(error.as_dict(), status=error.status)
    if isinstance(body, dict):
        return json_response(body)
    return html_response(body, headers={"Content-Security-Policy": status.CONTENT_SECURITY_POLICY})
