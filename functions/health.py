"""Liveness and dependency checks."""

import azure.functions as func

from functions.responses import friendly_errors, json_response
from shared.health import check_health

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@friendly_errors(check_keys=False)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """200 when the keys are safe and every storage account and dependency answers, else 503 naming what fails."""
    report = check_health()
    body = report.model_dump()
    if not report.ok:
        body["failing"] = report.failing
    return json_response(body, status=200 if report.ok else 503)
