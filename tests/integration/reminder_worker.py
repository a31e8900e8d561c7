"""One worker process of the reminder job, as a Functions instance would be: ready, wait for the go, run one minute.

Started by tests with the sandbox's app settings in its environment:
`python -m tests.integration.reminder_worker <UTC minute, ISO 8601>`; prints the run's counts as JSON.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime


def main() -> None:
    from shared.notifications import run_notifications

    now = datetime.fromisoformat(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()  # the go: every worker starts the same minute together
    report = run_notifications(now, max_seconds=60)
    print(json.dumps(dict(report.counts)), flush=True)


if __name__ == "__main__":
    main()
