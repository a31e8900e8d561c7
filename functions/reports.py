"""Virtual-visits usage report (HTML, JSON, CSV) for the portal's administrators, and the hourly attendance timer."""

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

from functions.lazy import lazy
from functions.responses import friendly_errors, json_response, query, redirect_response, request_cookie, wants_json
from shared.errors import ConnectorError, NotSignedIn

auth = lazy("shared.portal.auth")
reports = lazy("shared.reports")
sms_reports = lazy("shared.reports.sms")
usage_reports = lazy("shared.reports.usage")

bp = func.Blueprint()
log = logging.getLogger("connector")
ANONYMOUS = func.AuthLevel.ANONYMOUS
SIGN_IN_PATH = "/api/portal/auth/signin"


# Under /api/portal because the portal's session cookie is scoped to that path.
@bp.route(route="portal/reports/usage", methods=["GET"], auth_level=ANONYMOUS)
@friendly_errors
def usage_report(req: func.HttpRequest) -> func.HttpResponse:
    """The usage report for 7, 30 or 90 days: a page, JSON, or a CSV download."""
    return report_response(req, lambda credentials, params, output: reports.usage_report_view(
        credentials, params.get("days"), output, params=params))


@bp.route(route="portal/reports/sms", methods=["GET"], auth_level=ANONYMOUS)
@friendly_errors
def sms_report(req: func.HttpRequest) -> func.HttpResponse:
    """Text messages by type and delivery status per day: a page, JSON, or a CSV download."""
    return report_response(req, sms_reports.sms_report_view)


def report_response(req: func.HttpRequest, build: Callable[..., Any]) -> func.HttpResponse:
    """A report as a page, JSON or CSV; signed-out browsers go to sign-in, API clients get the error as JSON."""
    params = query(req)
    output = params.get("format") or ("json" if wants_json(req) else "html")
    try:
        report = build(auth.Credentials(request_cookie(req, auth.SESSION_COOKIE.name)), params, output)
    except NotSignedIn as error:
        if output == "json":
            return json_response(error.as_dict(), status=error.status)
        return redirect_response(SIGN_IN_PATH)
    except ConnectorError as error:
        if output != "json":
            raise
        log.warning("report refused: %s %s (reference %s)", error.status, error.code, error.reference)
        return json_response(error.as_dict(), status=error.status)
    return func.HttpResponse(report.body, mimetype=report.mimetype, charset="utf-8", headers={
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", **report.headers})


@bp.route(route="reports/usage", methods=["GET"], auth_level=ANONYMOUS)
@friendly_errors
def usage_report_moved(req: func.HttpRequest) -> func.HttpResponse:
    """The short address of the report; on to where the portal session cookie is sent."""
    params = urlsplit(req.url).query
    return redirect_response(usage_reports.REPORT_PATH + (f"?{params}" if params else ""))


@bp.timer_trigger(schedule="0 7 * * * *", arg_name="timer", use_monitor=True, run_on_startup=False)
def usage_reconcile(timer: func.TimerRequest) -> None:
    """Hourly: settle finished visits from Teams attendance reports (start, end, lobby wait, no-shows)."""
    summary = reports.reconcile_attendance(datetime.now(UTC))
    if summary.failed or summary.failed_endpoints:
        log.warning("usage reconcile left work for the next run: %s", summary)
