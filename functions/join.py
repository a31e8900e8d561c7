"""Patient join link from the SMS."""

import azure.functions as func

from functions.lazy import lazy
from functions.responses import friendly_errors, html_response, redirect_response

joining = lazy("shared.join")

bp = func.Blueprint()


@bp.route(route="join/{*token}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@friendly_errors
def patient_join(req: func.HttpRequest) -> func.HttpResponse:
    """To the Teams lobby, or a kind page in the patient's language."""
    outcome = joining.join(req.route_params.get("token", ""), req.headers.get("accept-language", ""))
    if outcome.location:
        return redirect_response(outcome.location)
    return html_response(outcome.html, status=outcome.status)
