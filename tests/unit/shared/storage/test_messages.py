"""The message log against a real Azurite: the reminder job's deferred rows are written a full transaction (100 rows
of a partition) at a time and the rest at flush, and merge with what a delivery report wrote first."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from shared.storage.accounts import TableAccounts
from shared.storage.messages import MessageLog

AT = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)


def test_deferred_sends_are_written_a_transaction_at_a_time_and_keep_an_earlier_delivery_report(azurite_settings):
    accounts = TableAccounts(azurite_settings)
    endpoint = uuid.uuid4().hex[:16]
    log = MessageLog(accounts, deferred=True)
    MessageLog(accounts).delivered("americas", endpoint, "row-0", "delivered", AT, sent_at=AT)  # the report won
    for n in range(150):
        log.sent("americas", endpoint, f"row-{n}", "confirmation", "sent", AT)
    window = (AT - timedelta(hours=1), AT + timedelta(hours=1))
    assert len(log.between("americas", [endpoint], *window)) == 100, "a full transaction went at once"
    assert log.flush() == 50
    rows = {r["RowKey"]: r for r in log.between("americas", [endpoint], *window)}
    assert len(rows) == 150 and all(r["kind"] == "confirmation" for r in rows.values())
    assert rows["row-0"]["status"] == "delivered" and rows["row-1"]["status"] == "sent"
    assert log.flush() == 0, "flushed once"
