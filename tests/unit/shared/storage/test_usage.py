"""Usage rows written in batches by the SMS job: one transaction per partition, merged into what is there."""

from datetime import UTC, datetime, timedelta

import pytest

from shared.storage.accounts import TableAccounts
from shared.storage.usage import UsageRepository

ENDPOINT = "0123456789abcdef"
START = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


@pytest.fixture()
def usage(azurite_settings) -> UsageRepository:
    return UsageRepository(TableAccounts(azurite_settings))


def test_batched_marks_merge_into_rows_other_events_wrote(usage):
    """A visit the provider already joined keeps that time when the job marks its SMS."""
    joined = START + timedelta(minutes=1)
    usage.record("americas", ENDPOINT, "visit-joined", START, {"provider_joined_at": joined},
                 keep_first=("provider_joined_at",))
    writes = usage.record_many("americas", [(ENDPOINT, "visit-joined", START, {"sms_sent": True}),
                                            (ENDPOINT, "visit-new", START, {"sms_sent": True, "department": "32"})])
    assert writes == 1
    row = usage.get("americas", ENDPOINT, "visit-joined", START)
    assert row["sms_sent"] is True and row["provider_joined_at"] == joined
    assert usage.get("americas", ENDPOINT, "visit-new", START)["department"] == "32"


def test_one_transaction_per_partition_and_hundred_rows(usage):
    """150 visits on one day and one on the next: three writes, and every visit is marked."""
    visits = [(ENDPOINT, f"visit-{n}", START + timedelta(minutes=n), {"sms_sent": True}) for n in range(150)]
    visits.append((ENDPOINT, "visit-tomorrow", START + timedelta(days=1), {"sms_sent": True}))
    assert usage.record_many("emea", visits) == 3
    assert all(usage.get("emea", ENDPOINT, key, start)["sms_sent"] for _, key, start, _ in visits)


def test_a_visit_named_twice_in_a_batch_is_one_row(usage):
    """Two first texts of one visit in a run (a confirmation and a reminder) do not break the transaction."""
    writes = usage.record_many("apac", [(ENDPOINT, "visit-twice", START, {"sms_sent": True}),
                                        (ENDPOINT, "visit-twice", START, {"department": "7"})])
    assert writes == 1
    row = usage.get("apac", ENDPOINT, "visit-twice", START)
    assert row["sms_sent"] is True and row["department"] == "7"


def test_a_row_read_ahead_keeps_its_first_times_and_its_older_key(usage):
    """The visit page reads the row while Graph answers, then records with what it read."""
    joined = START + timedelta(minutes=1)
    usage.record("americas", ENDPOINT, "visit-old-key", START, {"provider_joined_at": joined})
    found = usage.find("americas", ENDPOINT, ("visit-new-key", "visit-old-key"), START)
    assert found[0] == "visit-old-key", "a row made before a hash key rotation is found under its key"
    usage.record("americas", ENDPOINT, ("visit-new-key", "visit-old-key"), START,
                 {"provider_joined_at": START + timedelta(minutes=9), "meeting_id": "m1"},
                 keep_first=("provider_joined_at",), found=found)
    row = usage.get("americas", ENDPOINT, "visit-old-key", START)
    assert row["provider_joined_at"] == joined and row["meeting_id"] == "m1"
    assert usage.get("americas", ENDPOINT, "visit-new-key", START) == {}
