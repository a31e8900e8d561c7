"""Status checks: when the last run, a number's verification and its delivery turn red, and what to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.portal import status
from shared.storage.config import FhirEndpoint
from shared.storage.runs import RunRecord

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
ENDPOINT = FhirEndpoint(base_url="https://fhir-ehr-code.cerner.com/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d",
                        environment="test", sms_number="+18005550100", departments=["1"])


def run(**fields) -> RunRecord:
    return RunRecord(**{"run_at": NOW - timedelta(minutes=3), "outcome": "ok", **fields})


def test_a_failed_run_is_red_with_its_error_codes_and_a_next_step():
    check = status.run_check(ENDPOINT, True, run(outcome="failed", error_codes=["dependency_failed"]), NOW)
    assert not check.ok and "dependency_failed" in check.detail and "Cerner" in check.what_to_do


@pytest.mark.parametrize("record,ok", [
    (None, False), (run(), True), (run(failed=2, error_codes=["HTTP 400"]), False),
    (run(run_at=NOW - timedelta(hours=2)), False),
])
def test_the_last_run_is_green_only_when_recent_and_without_failures(record, ok):
    assert status.run_check(ENDPOINT, True, record, NOW).ok is ok


def test_an_endpoint_without_texts_needs_no_run():
    assert status.run_check(ENDPOINT, False, None, NOW).ok


def message(state: str, hours_ago: float) -> dict:
    return {"status": state, "sent_at": NOW - timedelta(hours=hours_ago)}


def test_delivery_rates_over_24_hours_and_7_days_and_a_lapsed_verification():
    messages = [message("delivered", 1), message("failed", 2), message("delivered", 30), message("delivered", 100)]
    number = status.number_status("+18005550100", ["Test"], "unverified", messages, 3, NOW)
    assert (number.sent_24h, number.delivered_24h, number.delivery_rate_24h) == (2, 1, 0.5)
    assert (number.sent_7d, number.delivered_7d, number.delivery_rate_7d) == (4, 3, 0.75)
    assert not number.delivery.ok and number.opt_outs == 3
    assert not number.verification.ok and "toll-free verification" in number.verification.what_to_do


def test_a_verified_number_delivering_well_is_green_and_no_texts_is_not_a_rate():
    good = status.number_status("+18005550100", [], "verified", [message("delivered", 1)], 0, NOW)
    assert good.verification.ok and good.delivery.ok and good.delivery_rate_24h == 1.0
    quiet = status.number_status("+18005550100", [], "verified", [], 0, NOW)
    assert quiet.delivery.ok and quiet.delivery_rate_7d is None


def test_every_red_item_is_a_problem_with_what_to_do():
    red = status.Check(ok=False, detail="down", what_to_do="fix it")
    green = status.Check(ok=True, detail="fine")
    endpoint = status.EndpointStatus(id="e", name="Test", environment="test", sms_on=True, last_run_check=red,
                                     cerner=green, smart=green, teams_access=red, patient_link=green)
    email = status.email_status("DoNotReply@x.azurecomm.net", True, [message("failed", 1)], NOW)
    report = status.StatusReport(generated_at=NOW, ok=True, endpoints=[endpoint], numbers=[], email=email,
                                 licence=green)
    found = status.problems(report)
    assert [p.item for p in found] == ["Test: Last reminder run", "Test: Teams access", "Email: delivery"]
    assert all(p.what_to_do for p in found)


def test_email_delivery_is_counted_like_a_numbers_with_failures_and_opt_outs_apart():
    messages = [message("delivered", 1), message("failed", 2), message("opted_out", 30), message("delivered", 100),
                message("sent", 3)]
    email = status.email_status("DoNotReply@x.azurecomm.net", True, messages, NOW)
    assert (email.sent_24h, email.delivered_24h, email.delivery_rate_24h) == (3, 1, 0.333)
    assert (email.sent_7d, email.delivered_7d, email.failed_7d, email.opted_out_7d) == (5, 2, 1, 1)
    assert not email.delivery.ok and "DKIM" in email.delivery.what_to_do
    good = status.email_status("DoNotReply@x.azurecomm.net", True, [message("delivered", 1)], NOW)
    assert good.delivery.ok and good.delivery_rate_7d == 1.0


def test_an_endpoint_sending_email_without_a_sender_address_is_red_and_no_email_at_all_is_green():
    unsent = status.email_status("", True, [], NOW)
    assert not unsent.delivery.ok and "EMAIL_SENDER_ADDRESS" in unsent.delivery.what_to_do
    assert status.email_status("", False, [], NOW).delivery.ok, "nobody sends by email: nothing to fix"


def test_the_next_run_follows_the_ncrontab_schedule():
    assert status.next_run(NOW) == NOW + timedelta(minutes=5)  # "0 */5 * * * *" by default


def test_a_linked_number_not_generated_in_the_portal_has_an_unknown_verification_to_check_in_azure():
    number = status.number_status("+18005550100", ["Test"], "", [], 0, NOW)
    assert number.verification_state == "unknown" and not number.verification.ok
    assert "Azure portal" in number.verification.what_to_do and "mark it" not in number.verification.what_to_do
