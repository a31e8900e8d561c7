"""The provider's visit page and its actions: send the link to the patient, live patient status."""

import azure.functions as func

from functions.lazy import lazy
from functions.responses import friendly_errors, html_response, json_response, request_cookie

csrf = lazy("shared.csrf")
launch = lazy("shared.launch")
visits = lazy("shared.visits")

bp = func.Blueprint()


@bp.route(route="visits/{visit}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@friendly_errors(provider_page=True)
def visit_page(req: func.HttpRequest) -> func.HttpResponse:
    """The appointment, its Teams meeting, and the patient's status."""
    page = visits.provider_page(req.route_params["visit"], request_cookie(req, launch.SESSION_COOKIE.name))
    return html_response(page.html, headers={"Content-Security-Policy": page.content_security_policy})


@bp.route(route="visits/{visit}/send-link", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@friendly_errors(provider_page=True)
def visit_send_link(req: func.HttpRequest) -> func.HttpResponse:
    """Text the patient their join link (JSON for the page's script); cross-site requests are refused."""
    caller = visits.StateChange(origin=req.headers.get("origin"), fetch_site=req.headers.get("sec-fetch-site"),
                         csrf_token=req.headers.get(csrf.HEADER))
    session = request_cookie(req, launch.SESSION_COOKIE.name)
    return json_response(visits.send_link(req.route_params["visit"], session, caller))


@bp.route(route="visits/{visit}/status", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@friendly_errors(provider_page=True)
def visit_status(req: func.HttpRequest) -> func.HttpResponse:
    """Has the patient opened the link, how long have they waited, how did the text fare."""
    session = request_cookie(req, launch.SESSION_COOKIE.name)
    return json_response(visits.patient_status(req.route_params["visit"], session))
