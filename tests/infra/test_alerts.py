"""The alert rules and the workbook watch metrics the app really emits, and e-mail the address given at deploy."""

from __future__ import annotations

import re
from typing import Any

from shared.telemetry import METRICS
from tests.infra.conftest import INFRA_DIR

ALERTS = (INFRA_DIR / "modules" / "alerts.bicep").read_text()
MAIN = (INFRA_DIR / "main.bicep").read_text()


def test_every_metric_the_alerts_and_workbook_query_is_one_the_app_emits():
    queried = set(re.findall(r'"(connector\.[a-z_.]+)"', ALERTS))
    assert queried and queried <= set(METRICS), queried - set(METRICS)
    emitted_and_shown = {name for name in METRICS if f'"{name}"' in ALERTS}
    assert emitted_and_shown == set(METRICS), "the workbook shows every metric"


def test_the_alerts_of_the_issue_route_to_the_e_mail_action_group(bicep: dict[str, dict[str, Any]]):
    rules = bicep["modules/alerts.bicep"]["variables"]["rules"]["value"]
    assert {rule["name"] for rule in rules} == {"reminders-failing", "sms-delivery-failures",
                                                "email-delivery-failures", "cerner-graph-failures", "health-503"}
    assert "emailAddress: alertEmail" in ALERTS and "actionGroup.id" in ALERTS
    assert "top 3 by TimeGenerated" in ALERTS and "failurePercent" in ALERTS and '"fhir", "smart", "graph"' in ALERTS
    assert 'ResultCode == "503"' in ALERTS


def test_main_creates_the_alerts_only_with_an_e_mail_and_on_the_telemetry_workspace():
    assert "module alerts 'modules/alerts.bicep' = if (!empty(alertEmail))" in MAIN
    assert "workspaceId: monitoring.outputs.workspaceId" in MAIN


def test_the_email_failure_rate_alert_reads_email_delivery_reports_like_the_sms_one(bicep: dict[str, dict[str, Any]]):
    rules = {rule["name"]: rule for rule in bicep["modules/alerts.bicep"]["variables"]["rules"]["value"]}
    variables = bicep["modules/alerts.bicep"]["variables"]
    sms, email = rules["sms-delivery-failures"], rules["email-delivery-failures"]
    assert {k: v for k, v in email.items() if k not in ("name", "displayName", "description", "query")} == {
        k: v for k, v in sms.items() if k not in ("name", "displayName", "description", "query")}
    email_query = variables["emailDeliveryQuery"]["value"]
    assert '"connector.email.delivered", "connector.email.failed"' in email_query
    assert "connector.sms" not in email_query and 'Properties.stage) != "send"' in email_query
    assert email_query == variables["deliveryQuery"]["value"].replace("connector.sms.", "connector.email.")
