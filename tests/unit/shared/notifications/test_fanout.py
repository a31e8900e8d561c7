"""When the reminder timer fans out, and what a queue message may carry."""

from datetime import UTC, datetime

import pytest

from shared.notifications.fanout import BadSlice, Slice, fans_out, parse_slice
from shared.settings import Settings

TENANT = "3c1f7d52-9a61-4b0e-8c55-2f7a1d9e6b40"


@pytest.mark.parametrize(("mode", "departments", "expected"), [
    ("auto", 200, False), ("auto", 201, True), ("never", 10_000, False), ("always", 1, True),
])
def test_the_timer_fans_out_above_the_threshold_or_as_told(mode, departments, expected):
    assert fans_out(departments, Settings(sms_fanout=mode, sms_fanout_departments=200)) is expected


def test_a_slice_round_trips_through_its_message():
    part = Slice(tenant=TENANT, endpoint="a1b2c3d4e5f60718", run_at=datetime(2026, 3, 8, 6, 5, tzinfo=UTC))
    assert parse_slice(part.model_dump_json()) == part
    assert set(part.model_dump()) == {"tenant", "endpoint", "run_at"}  # ids and a time: nothing about a patient


@pytest.mark.parametrize("body", [
    "", "[]", '{"tenant": "not-a-tenant", "endpoint": "a1", "run_at": "2026-03-08T06:05:00Z"}',
    f'{{"tenant": "{TENANT}", "endpoint": "../../etc", "run_at": "2026-03-08T06:05:00Z"}}',
    f'{{"tenant": "{TENANT}", "endpoint": "a1", "run_at": "yesterday"}}',
    f'{{"tenant": "{TENANT}", "endpoint": "a1", "run_at": "2026-03-08T06:05:00Z", "patient": "12724066"}}',
])
def test_anything_else_is_refused_without_echoing_it(body):
    with pytest.raises(BadSlice) as refused:
        parse_slice(body)
    assert refused.value.status == 400
    assert "12724066" not in str(refused.value) and "etc" not in str(refused.value)


def test_the_queue_name_must_be_a_storage_queue_name():
    assert Settings(sms_queue_name="sms-slices").sms_queue_name == "sms-slices"
    for bad in ("SMS", "a", "-x-", "x" * 60):
        with pytest.raises(ValueError):
            Settings(sms_queue_name=bad)
