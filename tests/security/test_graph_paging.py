"""Graph paging: a next page is fetched only from Microsoft Graph, so the app's Graph token never goes elsewhere."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.config import ENTRA_TENANT_ID
from sandbox.graph.records import AttendanceSession, CallRecord
from shared.errors import DependencyFailed
from shared.microsoft.graph import GraphClient
from tests.security.conftest import OTHER_HOST


@pytest.fixture()
def two_call_records(graph):
    """Two ended calls of the tenant, so the listing has a second page."""
    now = datetime.now(UTC)
    ids = [str(uuid.uuid4()) for _ in range(2)]
    for record_id in ids:
        session = AttendanceSession(record_id, started_at=now - timedelta(minutes=20), ended_at=now)
        graph.call_records[record_id] = CallRecord(record_id, "no-meeting", ENTRA_TENANT_ID, session, frozenset(),
                                                   frozenset())
    yield ids
    for record_id in ids:
        graph.call_records.pop(record_id, None)


def test_a_next_link_to_another_host_is_not_followed_with_the_graph_token(sandbox, graph, oracle, app_env,
                                                                          two_call_records):
    """A Graph answer whose @odata.nextLink points outside Microsoft Graph (token exfiltration through paging)."""
    port = sandbox.world.fhir_base().split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
    before = oracle.requests_by_host[OTHER_HOST]
    graph.call_records_page_size, graph.next_link_origin = 1, f"https://{OTHER_HOST}:{port}"
    try:
        with pytest.raises(DependencyFailed) as refused:
            GraphClient(ENTRA_TENANT_ID).call_records_started_between(
                datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC))
    finally:
        graph.call_records_page_size, graph.next_link_origin = 60, None
    assert "outside Microsoft Graph" in refused.value.message
    assert oracle.requests_by_host[OTHER_HOST] == before, "nothing was sent to the other host"
