"""The status page and the SMS report show the signed-in organization only."""

from __future__ import annotations

from sandbox.entra import OTHER_ADMIN_UPN
from sandbox.seed import DEMO_SMS_NUMBER
from tests.integration.portal_client import sign_in


def test_another_organizations_admin_sees_none_of_our_endpoints_numbers_runs_or_messages(sandbox, accounts):
    """An administrator of another organization reads the status page and the SMS report to learn about ours."""
    other = sign_in(sandbox, OTHER_ADMIN_UPN)
    ours = [row["RowKey"].removeprefix("fhir:") for row in accounts.table("config").query_entities(
        "Kind eq 'fhir_endpoint'") if row["PartitionKey"] != other.me["tenant_id"]]
    rows_before = len(list(accounts.table("config").query_entities("PartitionKey eq @t",
                                                                   parameters={"t": other.me["tenant_id"]})))
    try:
        status = other.http.get("/api/portal/status", params={"format": "json"})
        sms = other.http.get("/api/portal/reports/sms", params={"days": 90, "format": "json"})
        page = other.http.get("/api/portal/status")
    finally:
        other.http.close()
    assert status.status_code == 200 and sms.status_code == 200 and page.status_code == 200
    assert not {e["id"] for e in status.json()["endpoints"]} & set(ours)
    assert DEMO_SMS_NUMBER not in status.text and DEMO_SMS_NUMBER not in page.text
    assert not [e for e in ours if e in status.text or e in page.text or e in sms.text]
    rows_after = len(list(accounts.table("config").query_entities("PartitionKey eq @t",
                                                                  parameters={"t": other.me["tenant_id"]})))
    assert rows_after <= rows_before, "reading stores nothing for the reader's organization"
