"""What the portal shows of a phone number at each stage of its generation."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.portal.sms import NumberRecord


def record(status: str, **fields) -> NumberRecord:
    return NumberRecord(id="0123456789abcdef", country="US", status=status, updated_at=datetime.now(UTC), **fields)


def test_progress_moves_through_three_steps():
    assert record("searching").public([])["progress"] == {
        "step": 1, "of": 3, "label": "Searching for an available toll-free number…"}
    assert record("purchasing", number="+18335550201").public([])["progress"]["step"] == 2
    done = record("provisioned", number="+18335550201").public([])
    assert done["progress"]["label"] == "Provisioned, not linked to a FHIR base URL yet."
    assert done["verification"] == "unverified" and done["reaches"] == ["US", "CA", "PR"]
    assert "Brazil" in done["reach_note"]


def test_a_linked_and_verified_number_says_so():
    shown = record("provisioned", number="+18335550201", verification="verified").public(["a", "b"])
    assert shown["progress"]["label"] == "Provisioned, linked to 2 FHIR base URLs."
    assert shown["what_to_do"] == "Verified: carriers deliver texts from this number."


def test_a_failed_operation_says_what_to_do_and_never_shows_the_operation_token():
    shown = record("failed", error="Azure Communication Services could not complete the purchase (X).",
                   operation="secret-ish-token").public([])
    assert shown["what_to_do"] == "Generate a new phone number to try again."
    assert "secret-ish-token" not in str(shown)
