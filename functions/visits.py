"""The provider's visit page and its actions."""

import azure.functions as func

from functions.responses import friendly_errors, html_response, request_cookie
from shared.launch import SESSION_COOKIE
from shared.visits import provider_page

bp = func.Blueprint()


@bp.route(route="visits/{visit}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@friendly_errors
def visit_page(req: func.HttpRequest) -> func.HttpResponse:
    """The appointment, its Teams meeting, and the patient's status."""
    return html_response(provider_page(req.route_params["visit"], request_cookie(req, SESSION_COOKIE.name)))
