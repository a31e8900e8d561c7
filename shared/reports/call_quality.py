"""Call quality of a visit from the Graph call records of its Teams meeting: per participant kind (staff, patient),
the worst audio stream's jitter, packet loss and round-trip time, and a poor-call flag by Microsoft's Call Quality
Dashboard thresholds. Only these numbers are kept: no IP address, device, user agent or name.

Records are found by polling in the hourly reconcile (not by a change-notification subscription): the reconcile
already visits every finished meeting, records live 30 days while visits are read for 3, and polling needs no public
webhook, validation handshake, clientState secret or subscription renewal (a callRecords subscription lasts at most
a few days).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import isodate

from shared.errors import ConnectorError, NotFound
from shared.microsoft.graph import GraphClient
from shared.storage.config import FhirEndpoint

log = logging.getLogger("connector")

# Microsoft's CQD stream classification: an audio stream is poor when any average crosses its limit
# (https://learn.microsoft.com/microsoftteams/stream-classification-in-call-quality-dashboard#audio-classifier).
POOR_JITTER_MS = 30.0
POOR_PACKET_LOSS = 0.1
POOR_ROUND_TRIP_MS = 500.0
POOR_AUDIO_DEGRADATION = 1.0
POOR_CONCEALED_RATIO = 0.07
KINDS = ("staff", "patient")
EARLY_JOIN = timedelta(hours=2)  # a meeting's call may start well before the visit's scheduled start


@dataclass(frozen=True)
class StreamQuality:
    """One media stream's averages, reduced to the numbers the report shows."""

    jitter_ms: float = 0.0
    packet_loss: float = 0.0  # fraction, 0.1 = 10 %
    round_trip_ms: float = 0.0
    audio_degradation: float = 0.0
    concealed_ratio: float = 0.0

    @property
    def poor(self) -> bool:
        return (self.jitter_ms > POOR_JITTER_MS or self.packet_loss > POOR_PACKET_LOSS
                or self.round_trip_ms > POOR_ROUND_TRIP_MS or self.audio_degradation > POOR_AUDIO_DEGRADATION
                or self.concealed_ratio > POOR_CONCEALED_RATIO)

    @property
    def severity(self) -> float:
        """How far past its limits the stream is (1.0 = at a limit), to pick a participant's worst stream."""
        return max(self.jitter_ms / POOR_JITTER_MS, self.packet_loss / POOR_PACKET_LOSS,
                   self.round_trip_ms / POOR_ROUND_TRIP_MS)


def milliseconds(value: Any) -> float:
    """An ISO 8601 duration ("PT0.023S") in milliseconds; 0 when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return 0.0
    try:
        return isodate.parse_duration(value).total_seconds() * 1000
    except (isodate.ISO8601Error, ValueError):
        return 0.0


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def stream_quality(stream: dict[str, Any]) -> StreamQuality:
    return StreamQuality(
        jitter_ms=milliseconds(stream.get("averageJitter") or stream.get("averageAudioNetworkJitter")),
        packet_loss=_number(stream.get("averagePacketLossRate")),
        round_trip_ms=milliseconds(stream.get("averageRoundTripTime")),
        audio_degradation=_number(stream.get("averageAudioDegradation")),
        concealed_ratio=_number(stream.get("averageRatioOfConcealedSamples")),
    )


def participant_kind(endpoint: dict[str, Any], tenant_id: str) -> str | None:
    """staff for a user of the organization, patient for anyone else; None for Teams' own servers."""
    if "serviceEndpoint" in str(endpoint.get("@odata.type", "")):
        return None
    identity = endpoint.get("identity") or {}
    user = identity.get("user") or {}
    if user.get("id") and user.get("tenantId") == tenant_id:
        return "staff"
    return "patient" if identity else None


def audio_streams_by_kind(record: dict[str, Any], tenant_id: str) -> dict[str, list[StreamQuality]]:
    """Every audio stream of every segment, under the kind of the participant whose leg it is."""
    found: dict[str, list[StreamQuality]] = defaultdict(list)
    for session in record.get("sessions") or []:
        for segment in session.get("segments") or []:
            kind = participant_kind(segment.get("caller") or {}, tenant_id) or participant_kind(
                segment.get("callee") or {}, tenant_id)
            if kind is None:
                continue
            for media in segment.get("media") or []:
                if "audio" in str(media.get("label", "")):
                    found[kind] += [stream_quality(s) for s in media.get("streams") or []]
    return found


def quality_fields(records: list[dict[str, Any]], tenant_id: str) -> dict[str, Any]:
    """The usage-row fields: per kind the worst stream's numbers, and poor_call when any audio stream was poor."""
    streams: dict[str, list[StreamQuality]] = defaultdict(list)
    for record in records:
        for kind, found in audio_streams_by_kind(record, tenant_id).items():
            streams[kind] += found
    fields: dict[str, Any] = {"poor_call": any(s.poor for found in streams.values() for s in found)}
    for kind in KINDS:
        if streams[kind]:
            worst = max(streams[kind], key=lambda s: s.severity)
            fields[f"{kind}_jitter_ms"] = round(worst.jitter_ms)
            fields[f"{kind}_packet_loss_percent"] = round(worst.packet_loss * 100, 1)
            fields[f"{kind}_round_trip_ms"] = round(worst.round_trip_ms)
    return fields


def needs_quality(row: dict[str, Any]) -> bool:
    """A completed visit whose call quality has not been read yet."""
    return row.get("status") == "completed" and row.get("poor_call") is None and bool(row.get("meeting_id"))


class CallRecordFinder:
    """Finds a meeting's call records by joinWebUrl, listing the tenant's records once per reconcile run."""

    def __init__(self, graph: GraphClient, endpoint: FhirEndpoint, since: datetime, now: datetime):
        self.graph, self.endpoint, self.since, self.now = graph, endpoint, since, now
        self._by_url: dict[str, list[str]] | None = None

    def by_url(self) -> dict[str, list[str]]:
        if self._by_url is None:
            self._by_url = defaultdict(list)  # a failed listing is not repeated for every visit of this run
            found = self.graph.call_records_started_between(self.since - EARLY_JOIN, self.now)
            for record in found:
                if record.get("joinWebUrl") and record.get("id"):
                    self._by_url[record["joinWebUrl"]].append(record["id"])
        return self._by_url

    def records_for(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        """The visit's meeting's call records with sessions and segments; none yet when Teams has not written them."""
        try:
            meeting = self.graph.online_meeting(self.endpoint.organizer, row["meeting_id"])
        except NotFound:
            return []
        ids = self.by_url().get(meeting.get("joinWebUrl") or "", [])
        return [self.graph.call_record_with_sessions(record_id) for record_id in ids]


def read_call_quality(finder: CallRecordFinder, row: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    """The call-quality fields of a completed visit; empty while its records are not there (or unreadable)."""
    try:
        records = finder.records_for(row)
    except ConnectorError as error:
        # Without CallRecords.Read.All (or while Graph fails) attendance still settles; quality waits.
        log.warning("call records unavailable: %s (reference %s)", error.code, error.reference)
        return {}
    return quality_fields(records, tenant_id) if records else {}
