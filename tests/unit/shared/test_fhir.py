"""Oracle Health FHIR R4 → the connector's small models: Cerner's sample payloads, references, names, languages,
and which phone number is the patient's mobile."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.fhir import appointment_from_fhir, patient_from_fhir
from shared.sms.phone import to_e164

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures"
if not FIXTURES.is_dir():  # a checkout beside the team's shared/ folder
    FIXTURES = Path("/work/shared/fixtures")


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


# --- Appointment -------------------------------------------------------------------------------------------------


def test_cerners_sample_appointment_maps_to_the_model():
    appointment = appointment_from_fhir(fixture("cerner-appointment.json"))
    assert appointment.id == "4822366" and appointment.version == "2"
    assert appointment.start == datetime(2020, 1, 23, 22, 10, tzinfo=UTC)
    assert appointment.end == datetime(2020, 1, 23, 23, 10, tzinfo=UTC)
    assert appointment.service_type == "Surgery Rapid"
    assert (appointment.patient_id, appointment.patient_display) == ("12724066", "Smart II, Nancy")
    assert appointment.location_ids == ["32216049"]
    assert appointment.practitioner_ids == [], "a participant without a reference is nobody"
    assert appointment.cancelled


@pytest.mark.parametrize(("status", "cancelled"), [("booked", False), ("arrived", False), ("cancelled", True),
                                                   ("noshow", True), ("entered-in-error", True)])
def test_which_statuses_count_as_cancelled(status, cancelled):
    assert appointment_from_fhir({"id": "1", "status": status}).cancelled is cancelled


@pytest.mark.parametrize("reference", [
    "Practitioner/12742069",
    "https://fhir-ehr.cerner.com/r4/ec2458f2/Practitioner/12742069",
    "Practitioner/12742069/_history/3",
])
def test_practitioner_references_relative_absolute_or_versioned_give_the_id(reference):
    resource = {"id": "1", "status": "booked", "participant": [{"actor": {"reference": reference}}]}
    assert appointment_from_fhir(resource).practitioner_ids == ["12742069"]


def test_participants_are_sorted_by_their_reference_type_and_several_practitioners_are_kept():
    resource = {"id": "1", "status": "booked", "participant": [
        {"actor": {"reference": "Practitioner/1"}}, {"actor": {"reference": "Patient/7", "display": "Doe, Jo"}},
        {"actor": {"reference": "Practitioner/2"}}, {"actor": {"reference": "Location/9"}}, {"actor": None},
    ]}
    appointment = appointment_from_fhir(resource)
    assert appointment.practitioner_ids == ["1", "2"] and appointment.location_ids == ["9"]
    assert (appointment.patient_id, appointment.patient_display) == ("7", "Doe, Jo")


def test_service_type_falls_back_to_the_first_codings_display_and_a_bare_appointment_has_defaults():
    coded = {"id": "1", "status": "booked", "serviceType": [{"coding": [{"display": "Video Visit"}]}]}
    assert appointment_from_fhir(coded).service_type == "Video Visit"
    bare = appointment_from_fhir({"id": 5, "status": "proposed"})
    assert (bare.id, bare.start, bare.patient_id, bare.service_type, bare.version) == ("5", None, "", "", "")


# --- Patient: name and language ----------------------------------------------------------------------------------


def test_cerners_sample_patient_maps_to_the_model():
    patient = patient_from_fhir(fixture("cerner-patient.json"))
    assert patient.id == "12724067" and patient.display_name == "SMART, JOE", "the official name, not the old one"
    assert patient.language == "en", "the BCP-47 coding, not Cerner's code set"
    assert patient.mobile == "", "a home phone is not a mobile"


def test_a_name_without_text_is_given_then_family_and_the_first_name_stands_in_for_an_official_one():
    assert patient_from_fhir({"id": "1", "name": [{"given": ["Ana", "Maria"], "family": "Silva"}]}).display_name \
        == "Ana Maria Silva"
    assert patient_from_fhir({"id": "1"}).display_name == ""


def test_the_preferred_language_wins_and_only_bcp47_codes_count():
    patient = {"id": "1", "communication": [
        {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en"}]}},
        {"language": {"coding": [{"system": "https://fhir.cerner.com/x/codeSet/36", "code": "151"},
                                 {"system": "urn:ietf:bcp:47", "code": "es"}]}, "preferred": True},
    ]}
    assert patient_from_fhir(patient).language == "es"
    only_cerner = {"id": "1", "communication": [{"language": {"coding": [{"system": "x", "code": "151"}]}}]}
    assert patient_from_fhir(only_cerner).language == ""


# --- Patient: which number is the mobile -------------------------------------------------------------------------


def mobile_of(*telecom: dict) -> str:
    return patient_from_fhir({"id": "1", "telecom": list(telecom)}).mobile


def phone(value: str, **fields) -> dict:
    return {"system": "phone", "value": value, **fields}


def test_rank_comes_as_a_string_and_the_best_rank_wins():
    assert mobile_of(phone("8165550102", use="mobile", rank="2"), phone("8165550101", use="mobile", rank="1")) \
        == "8165550101"


def test_ranks_compare_as_numbers_not_as_text():
    assert mobile_of(phone("8165550110", use="mobile", rank="10"), phone("8165550109", use="mobile", rank="9")) \
        == "8165550109"


def test_a_missing_or_unreadable_rank_comes_after_a_ranked_mobile():
    assert mobile_of(phone("8165550100", use="mobile"), phone("8165550103", use="mobile", rank="3")) == "8165550103"
    assert mobile_of(phone("8165550100", use="mobile", rank="first"), phone("8165550104", use="mobile", rank=4)) \
        == "8165550104"


def test_a_better_ranked_home_phone_does_not_beat_a_mobile():
    assert mobile_of(phone("8165550001", use="home", rank="1"), phone("8165550105", use="mobile", rank="2")) \
        == "8165550105"


def test_without_use_a_phone_is_not_known_to_be_a_mobile_but_an_sms_contact_point_is():
    assert mobile_of(phone("8165550106")) == ""
    assert mobile_of(phone("8165550106"), {"system": "sms", "value": "8165550107"}) == "8165550107"


def test_an_ended_number_an_empty_value_and_an_email_are_never_the_mobile():
    assert mobile_of(phone("8165550108", use="mobile", rank="1", period={"start": "2019-01-01",
                                                                          "end": "2020-01-01"}),
                     phone("", use="mobile", rank="1"),
                     {"system": "email", "value": "jo@example.org", "use": "mobile"},
                     phone("8165550111", use="mobile", rank="5", period={"start": "2019-01-01"})) == "8165550111"


@pytest.mark.parametrize("national", ["(816) 555-0105", "(816)555-0105", "816-555-0105", "816.555.0105",
                                      "8165550105", "1 816 555 0105", "+1 816-555-0105"])
def test_national_formats_are_kept_as_written_and_become_one_e164_number(national):
    chosen = mobile_of(phone(national, use="mobile"))
    assert chosen == national
    assert to_e164(chosen) == "+18165550105"


@pytest.mark.parametrize("unusable", ["555-0105", "0105", "not a number", "+1 816 555 01"])
def test_numbers_too_short_or_not_numbers_have_no_e164_form(unusable):
    assert to_e164(mobile_of(phone(unusable, use="mobile"))) is None


def test_the_mapping_does_not_change_cerners_resource():
    resource = fixture("cerner-patient.json")
    before = copy.deepcopy(resource)
    patient_from_fhir(resource)
    assert resource == before
