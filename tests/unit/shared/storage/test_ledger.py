"""The notification ledger against a real Azurite: claims won once, etag-conditional merges, day partitions,
queries by day range and kind, purging after the appointment, and message tags."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.storage.accounts import TableAccounts
from shared.storage.ledger import LedgerRepository, day_partition, message_tag, parse_message_tag

DAY = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)


@pytest.fixture()
def ledger(azurite_settings) -> LedgerRepository:
    return LedgerRepository(TableAccounts(azurite_settings))


@pytest.fixture()
def endpoint() -> str:
    return uuid.uuid4().hex[:16]


def fields(**extra) -> dict:
    return {"kind": "confirmation", "status": "sending", "claimed_at": DAY, **extra}


def test_a_claim_is_won_once_and_returns_the_rows_etag(ledger, endpoint):
    partition = day_partition(endpoint, DAY)
    etag = ledger.create("americas", partition, "row-1", fields())
    assert etag and etag == ledger.get("americas", partition, "row-1").metadata["etag"]
    assert ledger.create("americas", partition, "row-1", fields(status="other")) is None
    assert ledger.claim("americas", partition, "row-1", fields()) is False
    assert ledger.claim("americas", partition, "row-2", fields()) is True
    assert ledger.get("americas", partition, "row-1")["status"] == "sending", "the loser changed nothing"


def test_a_merge_with_the_current_etag_wins_and_returns_the_new_one(ledger, endpoint):
    partition = day_partition(endpoint, DAY)
    first = ledger.create("emea", partition, "row", fields())
    second = ledger.merge("emea", partition, "row", {"status": "sent"}, etag=first)
    row = ledger.get("emea", partition, "row")
    assert second and second != first and second == row.metadata["etag"]
    assert row["status"] == "sent" and row["kind"] == "confirmation", "a merge keeps the other fields"


def test_a_merge_with_a_stale_etag_or_on_a_missing_row_changes_nothing(ledger, endpoint):
    partition = day_partition(endpoint, DAY)
    stale = ledger.create("emea", partition, "row", fields())
    ledger.merge("emea", partition, "row", {"status": "sent"}, etag=stale)
    assert ledger.merge("emea", partition, "row", {"status": "failed"}, etag=stale) is None
    assert ledger.get("emea", partition, "row")["status"] == "sent"
    assert ledger.update("emea", partition, "row", {"status": "failed"}, etag=stale) is False
    assert ledger.merge("emea", partition, "nobody", {"status": "sent"}, etag=stale) is None


def test_a_merge_without_an_etag_is_unconditional(ledger, endpoint):
    partition = day_partition(endpoint, DAY)
    ledger.create("apac", partition, "row", fields())
    ledger.merge("apac", partition, "row", {"status": "sent"})
    assert ledger.merge("apac", partition, "row", {"status": "delivered"})
    assert ledger.get("apac", partition, "row")["status"] == "delivered"


def test_a_batch_of_merges_is_written_whole_or_not_at_all(ledger, endpoint):
    partition = day_partition(endpoint, DAY)
    etags = {row: ledger.create("americas", partition, row, fields()) for row in ("a", "b", "c")}
    assert ledger.merge_many("americas", partition, [(row, {"status": "sent"}, etag) for row, etag in etags.items()])
    assert [ledger.get("americas", partition, row)["status"] for row in etags] == ["sent"] * 3
    # "b" changed since (a delivery report): a batch naming its old etag writes none of its rows.
    fresh = {row: ledger.get("americas", partition, row).metadata["etag"] for row in etags}
    ledger.merge("americas", partition, "b", {"status": "delivered"})
    assert not ledger.merge_many("americas", partition, [(row, {"status": "failed"}, etag)
                                                         for row, etag in fresh.items()])
    assert [ledger.get("americas", partition, row)["status"] for row in etags] == ["sent", "delivered", "sent"]


def test_rows_are_found_by_day_range_and_kind_after_merges(ledger, endpoint):
    for offset, row in ((0, "today"), (1, "tomorrow"), (3, "later")):
        ledger.create("americas", day_partition(endpoint, DAY + timedelta(days=offset)), row, fields())
    ledger.merge("americas", day_partition(endpoint, DAY), "today", {"status": "sent"})
    ledger.create("americas", day_partition(endpoint, DAY), "optout", {"status": "x"}, kind="optout")
    found = ledger.rows_between("americas", endpoint, DAY, DAY + timedelta(days=1))
    assert sorted(r["RowKey"] for r in found) == ["today", "tomorrow"]
    assert [r["RowKey"] for r in ledger.partition_rows("americas", day_partition(endpoint, DAY), "optout")] == \
        ["optout"]
    other = uuid.uuid4().hex[:16]
    assert ledger.rows_between("americas", other, DAY, DAY + timedelta(days=9)) == [], "another endpoint's rows"


def test_only_rows_of_appointments_that_ended_before_the_cutoff_are_purged(ledger, endpoint):
    for row, end in (("over", DAY - timedelta(hours=1)), ("running", DAY + timedelta(hours=1))):
        ledger.create("emea", day_partition(endpoint, DAY), row, fields(appointment_end=end))
    neighbour = uuid.uuid4().hex[:16]
    ledger.create("emea", day_partition(neighbour, DAY), "over", fields(appointment_end=DAY - timedelta(hours=1)))
    assert ledger.purge_before("emea", endpoint, DAY) == 1
    assert ledger.get("emea", day_partition(endpoint, DAY), "over") is None
    assert ledger.get("emea", day_partition(endpoint, DAY), "running") is not None
    assert ledger.get("emea", day_partition(neighbour, DAY), "over") is not None, "only this endpoint's rows"
    assert ledger.purge_before("emea", endpoint, DAY) == 0


def test_the_day_partition_is_the_utc_day_whatever_the_machines_zone(monkeypatch):
    late_evening_in_chicago = datetime(2026, 6, 11, 2, 30, tzinfo=UTC)
    monkeypatch.setenv("TZ", "America/Chicago")
    time.tzset()
    try:
        assert day_partition("ep", late_evening_in_chicago) == "ep-20260611"
        assert day_partition("ep", late_evening_in_chicago.astimezone()) == "ep-20260611"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_message_tag_names_its_row_and_nothing_else_parses():
    assert parse_message_tag(message_tag("ep-20260610", "ab12")) == ("ep-20260610", "ab12")
    for forged in ("", None, "no-separator", "|row", "partition|", "|"):
        assert parse_message_tag(forged) is None, forged
    assert parse_message_tag("p|r|x") == ("p", "r|x"), "the partition never holds a separator"
