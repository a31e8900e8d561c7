"""Liveness (is the worker up) and readiness (keys safe, every storage account and dependency answering)."""

import azure.functions as func

from functions.lazy import lazy
from functions.responses import friendly_errors, json_response, with_security_headers

health_checks = lazy("shared.health")

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness: 200 as soon as the worker answers; needs neither the settings nor the network, so it is cheap."""
    # HSTS always: browsers ignore it over plain http, and reading PUBLIC_BASE_URL would load the settings model.
    return with_security_headers(json_response({"ok": True, "check": "liveness"}), over_https=True)


@bp.route(route="health/ready", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@friendly_errors(check_keys=False)
def health_ready(req: func.HttpRequest) -> func.HttpResponse:
    """Readiness: 200 when the keys are safe and every storage account and dependency answers, else 503 naming them."""
    report = health_checks.check_health()
    body = report.model_dump()
    if not report.ok:
        body["failing"] = report.failing
    return json_response(body, status=200 if report.ok else 503)
