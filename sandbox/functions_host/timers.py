"""Timer triggers: NCRONTAB schedules, the schedule status the host records per timer, and where each timer stands."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import azure.functions as func
from azure.functions import meta
from azure.functions.timer import TimerRequestConverter
from croniter import croniter

from sandbox.functions_host.functions import FunctionEntry

# .NET's default(DateTime): what the host reports as "Last" before a timer's first run.
NEVER = datetime(1, 1, 1, tzinfo=UTC)


def utc_now() -> datetime:
    """Real time, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class CronSchedule:
    """An NCRONTAB expression: 6 fields with seconds first (5-field cron accepted), evaluated in UTC."""

    expression: str

    def __post_init__(self) -> None:
        fields = len(self.expression.split())
        if fields not in (5, 6) or not croniter.is_valid(self.expression, second_at_beginning=fields == 6):
            raise ValueError(f"'{self.expression}' is not a valid NCRONTAB schedule")

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment`."""
        seconds_first = len(self.expression.split()) == 6
        return croniter(self.expression, moment, second_at_beginning=seconds_first).get_next(datetime)

    def is_frequent(self) -> bool:
        """Whether occurrences are less than a minute apart (then useMonitor defaults to off)."""
        first = self.next_after(utc_now())
        return self.next_after(first) - first < timedelta(minutes=1)


@dataclass(frozen=True)
class ScheduleStatus:
    """What the host records per timer: last run, next occurrence, when the record changed."""

    last_run: datetime
    next_run: datetime
    last_updated: datetime

    def to_json(self) -> dict[str, str]:
        return {
            "Last": self.last_run.isoformat(),
            "Next": self.next_run.isoformat(),
            "LastUpdated": self.last_updated.isoformat(),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, str]) -> ScheduleStatus:
        return cls(*(datetime.fromisoformat(document[key]) for key in ("Last", "Next", "LastUpdated")))


class TimerStatusStore:
    """Schedule status per timer function: one JSON file each in a directory (in memory without one)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self._memory: dict[str, ScheduleStatus] = {}

    def _path(self, function_name: str) -> Path:
        assert self.directory is not None
        return self.directory / (re.sub(r"[^A-Za-z0-9_.-]", "_", function_name).lower() + ".json")

    def load(self, function_name: str) -> ScheduleStatus | None:
        """The recorded status, or None before the first record."""
        if self.directory is None:
            return self._memory.get(function_name)
        path = self._path(function_name)
        return ScheduleStatus.from_json(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None

    def save(self, function_name: str, status: ScheduleStatus) -> None:
        """Record the status (atomically, so a crash never leaves half a file)."""
        if self.directory is None:
            self._memory[function_name] = status
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(function_name)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(status.to_json()), encoding="utf-8")
        temporary.replace(path)


@dataclass
class TimerState:
    """A timer function's schedule and where it stands."""

    entry: FunctionEntry
    schedule: CronSchedule
    use_monitor: bool
    run_on_startup: bool
    status: ScheduleStatus
    next_due: datetime


def timer_request(status: ScheduleStatus, past_due: bool) -> func.TimerRequest:
    """The TimerRequest the worker builds from the host's JSON payload."""
    payload = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": status.to_json(), "IsPastDue": past_due}
    return TimerRequestConverter.decode(meta.Datum(json.dumps(payload), "json"), trigger_metadata={})
