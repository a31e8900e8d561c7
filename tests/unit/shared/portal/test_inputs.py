"""Request bodies: size limit, JSON, object, and field errors that name the field."""

from __future__ import annotations

import json

import pytest

from shared.errors import InvalidInput, PayloadTooLarge
from shared.portal.endpoints import EndpointInput
from shared.portal.inputs import MAX_BODY_BYTES, parse_body
from shared.portal.sms import EndpointSmsInput


def body(**fields) -> bytes:
    return json.dumps({"base_url": "https://fhir.example/r4/t", "environment": "test",
                       "organizer": "va@contoso.example", **fields}).encode()


def test_a_valid_body_parses_and_departments_are_deduplicated():
    parsed = parse_body(EndpointInput, body(departments=["1", "2", "1"], display_name="  Clinic  "))
    assert parsed.departments == ["1", "2"] and parsed.display_name == "Clinic"


@pytest.mark.parametrize("raw,message", [
    (b"", "The request body must be a JSON object."),
    (b"null", "The request body must be a JSON object."),
    (b"[1]", "The request body must be a JSON object."),
    (b"{", "The request body is not valid JSON."),
    (b"\xff\xfe", "The request body is not valid JSON."),
])
def test_not_a_json_object_is_a_clear_400(raw, message):
    with pytest.raises(InvalidInput) as failure:
        parse_body(EndpointInput, raw)
    assert failure.value.message == message and failure.value.status == 400


def test_more_than_64_kib_is_refused_before_parsing():
    with pytest.raises(PayloadTooLarge) as failure:
        parse_body(EndpointInput, b" " * (MAX_BODY_BYTES + 1))
    assert failure.value.status == 413


@pytest.mark.parametrize("fields,fragment", [
    ({"environment": "prod"}, "environment: Input should be 'test' or 'production'"),
    ({"organizer": "someone"}, "organizer: Value error, must be the Teams account's user principal name"),
    ({"departments": "1,2"}, "departments: Input should be a valid list"),
    ({"display_name": 5}, "display_name: Input should be a valid string"),
    ({"extra": True}, "extra: Extra inputs are not permitted"),
])
def test_field_errors_name_the_field(fields, fragment):
    with pytest.raises(InvalidInput) as failure:
        parse_body(EndpointInput, body(**fields))
    assert fragment in failure.value.message


def test_organizer_may_be_an_object_id():
    parsed = parse_body(EndpointInput, body(organizer="7b1c2d3e-4f50-4a61-8b72-9c83d4e5f603"))
    assert parsed.organizer == "7b1c2d3e-4f50-4a61-8b72-9c83d4e5f603"


def test_sms_settings_defaults_and_normalisation():
    settings = parse_body(EndpointSmsInput, b'{"reminder_offsets": [15, 60, 15, 1440]}')
    assert settings.reminder_offsets == [1440, 60, 15]
    assert (settings.sms_number, settings.confirmations_on, settings.default_language) == ("", True, "en")


@pytest.mark.parametrize("fields,fragment", [
    ({"quiet_hours": "24:00-08:00"}, "quiet_hours"), ({"quiet_hours": "08:00-08:00"}, "quiet_hours"),
    ({"time_zone": "Central"}, "time_zone"),
    ({"reminder_offsets": [10081]}, "reminder_offsets.0"), ({"reminder_offsets": [1, 2, 3, 4, 5, 6]},
                                                            "reminder_offsets"),
    ({"sms_number": "+1 800 555 0100"}, "sms_number"), ({"confirmations_on": "true"}, "confirmations_on"),
])
def test_sms_settings_errors_name_the_field(fields, fragment):
    with pytest.raises(InvalidInput) as failure:
        parse_body(EndpointSmsInput, json.dumps(fields).encode())
    assert f"{fragment}:" in failure.value.message
