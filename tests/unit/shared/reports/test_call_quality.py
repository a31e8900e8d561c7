"""Call quality from Graph call records: who is staff or patient, the worst audio stream, CQD's poor-call limits."""

from __future__ import annotations

import pytest

from shared.reports import call_quality as cq

TENANT = "9b5f1a1e-0000-4000-8000-000000000001"
SERVER = {"@odata.type": "#microsoft.graph.callRecords.serviceEndpoint", "userAgent": {"role": "conferencing"}}


def stream(jitter: str = "PT0.004S", loss: float = 0.002, rtt: str = "PT0.045S", **extra) -> dict:
    return {"streamDirection": "callerToCallee", "averageJitter": jitter, "averagePacketLossRate": loss,
            "averageRoundTripTime": rtt, **extra}


def person(identity: dict) -> dict:
    return {"@odata.type": "#microsoft.graph.callRecords.participantEndpoint", "identity": identity,
            "userAgent": {"headerValue": "Mozilla/5.0 (iPhone) TeamsWeb"}}


STAFF = person({"user": {"id": "oid-1", "displayName": "Dr. Grey", "tenantId": TENANT}})
PATIENT = person({"guest": {"id": "guest-1", "displayName": "Typed Name"}})


def leg(caller: dict, *streams: dict, label: str = "main-audio", callee: dict = SERVER) -> dict:
    media = [{"label": label, "callerNetwork": {"ipAddress": "10.1.2.3"}, "streams": list(streams)}]
    return {"segments": [{"caller": caller, "callee": callee, "media": media}]}


def record(*sessions: dict) -> dict:
    return {"id": "r1", "joinWebUrl": "https://teams.example/meet/1", "sessions": list(sessions)}


@pytest.mark.parametrize("metrics,poor", [
    ({}, False),
    ({"jitter": "PT0.030S"}, False),  # at a limit is not over it
    ({"jitter": "PT0.031S"}, True),
    ({"loss": 0.1}, False),
    ({"loss": 0.11}, True),
    ({"rtt": "PT0.5S"}, False),
    ({"rtt": "PT0.501S"}, True),
    ({"averageAudioDegradation": 1.2}, True),
    ({"averageRatioOfConcealedSamples": 0.08}, True),
])
def test_a_stream_is_poor_past_any_cqd_audio_limit(metrics, poor):
    assert cq.stream_quality(stream(**metrics)).poor is poor


@pytest.mark.parametrize("value,ms", [("PT0.023S", 23), ("PT1S", 1000), ("PT1M", 60000), (None, 0), ("soon", 0),
                                      (12, 0)])
def test_durations_are_iso_8601_and_unreadable_ones_count_as_zero(value, ms):
    assert cq.milliseconds(value) == pytest.approx(ms)


@pytest.mark.parametrize("endpoint,kind", [
    (STAFF, "staff"),
    (PATIENT, "patient"),
    (person({"user": {"id": "oid-9", "displayName": "Someone", "tenantId": "another-tenant"}}), "patient"),
    (person({"user": {"id": None, "displayName": "Anonymous"}}), "patient"),
    (SERVER, None),
    ({}, None),
])
def test_members_of_the_organization_are_staff_everyone_else_is_the_patient_side(endpoint, kind):
    assert cq.participant_kind(endpoint, TENANT) == kind


def test_each_kind_keeps_its_worst_audio_stream_and_the_call_is_poor_when_any_stream_is():
    calls = record(
        leg(STAFF, stream(), stream(jitter="PT0.012S")),
        leg(PATIENT, stream(loss=0.03), stream(jitter="PT0.052S", loss=0.14, rtt="PT0.62S")),
        leg(PATIENT, stream(jitter="PT0.9S", loss=0.9, rtt="PT9S"), label="main-video"),  # video is not judged
    )
    fields = cq.quality_fields([calls], TENANT)
    assert fields == {"poor_call": True, "staff_jitter_ms": 12, "staff_packet_loss_percent": 0.2,
                      "staff_round_trip_ms": 45, "patient_jitter_ms": 52, "patient_packet_loss_percent": 14.0,
                      "patient_round_trip_ms": 620}


def test_a_good_call_over_several_records_keeps_nothing_but_numbers():
    first, second = record(leg(STAFF, stream())), record(leg(PATIENT, stream(), callee=SERVER))
    fields = cq.quality_fields([first, second], TENANT)
    assert fields["poor_call"] is False and fields["patient_round_trip_ms"] == 45
    assert all(isinstance(value, bool | int | float) for value in fields.values())


def test_a_leg_whose_server_is_the_caller_is_read_from_the_callee():
    fields = cq.quality_fields([record(leg(SERVER, stream(loss=0.2), callee=PATIENT))], TENANT)
    assert fields["poor_call"] is True and fields["patient_packet_loss_percent"] == 20.0
    assert "staff_jitter_ms" not in fields


@pytest.mark.parametrize("row,needed", [
    ({"status": "completed", "meeting_id": "m"}, True),
    ({"status": "completed", "meeting_id": "m", "poor_call": False}, False),
    ({"status": "completed"}, False),
    ({"status": "no_show", "meeting_id": "m"}, False),
])
def test_quality_is_read_once_for_completed_visits_with_a_meeting(row, needed):
    assert cq.needs_quality(row) is needed
