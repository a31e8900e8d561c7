"""Provider SMART EHR launch, its callback, and the one-time Microsoft link."""

import azure.functions as func

from functions.lazy import lazy
from functions.responses import friendly_errors, query, redirect_response, request_cookie

launch = lazy("shared.launch")

bp = func.Blueprint()


@bp.route(route="launch/provider", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@friendly_errors(provider_page=True)
def launch_provider(req: func.HttpRequest) -> func.HttpResponse:
    """PowerChart opens this with `iss` and `launch`: on to Cerner's authorize endpoint."""
    outcome = launch.ProviderLaunch().start(query(req))
    return redirect_response(outcome.location, outcome.cookies)


@bp.route(route="launch/callback", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@friendly_errors(provider_page=True)
def launch_callback(req: func.HttpRequest) -> func.HttpResponse:
    """Cerner's redirect back: on to the visit, or to the one-time Microsoft sign-in."""
    outcome = launch.ProviderLaunch().callback(query(req), request_cookie(req, launch.LAUNCH_COOKIE.name))
    return redirect_response(outcome.location, outcome.cookies)


@bp.route(route="launch/microsoft/callback", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@friendly_errors(provider_page=True)
def launch_microsoft_callback(req: func.HttpRequest) -> func.HttpResponse:
    """Microsoft's redirect back after the one-time sign-in: link the EHR user, then the visit."""
    outcome = launch.ProviderLaunch().microsoft_callback(query(req), request_cookie(req, launch.LINK_COOKIE.name))
    return redirect_response(outcome.location, outcome.cookies)
