"""What `start_sandbox` started: the world, the dev CA, the stand-ins, servers and processes, and how to stop them.

Its own module so that what `start_sandbox` runs (such as the demo seed) can use it without importing sandbox.run.
"""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sandbox import config
from sandbox.devca import DevCA
from sandbox.functions_host.host import HostKeys
from sandbox.servers import RunningServer


@dataclass
class Sandbox:
    """Everything `start_sandbox` started; `stop()` ends it all."""

    world: config.World
    ca: DevCA
    settings_env: dict[str, str]
    state_dir: Path
    standins: dict[str, object] = field(default_factory=dict)
    servers: list[RunningServer] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)
    # The Functions host's master key (admin API) and Event Grid system key, made up per run.
    host_keys: HostKeys = field(default_factory=HostKeys.generate)

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        for server in self.servers:
            server.stop()

    def urls(self) -> dict[str, str]:
        """What a newcomer opens."""
        world = self.world
        return {
            "PowerChart (start a provider launch here)": f"{world.oracle_url}/powerchart",
            "Admin portal": f"{world.host_url}/api/portal",
            "Patient phone (SMS outbox)": f"{world.acs_url}/outbox",
            "Patient mailbox (email inbox; Fiona Fakename has only a home phone)": f"{world.acs_url}/inbox",
            "Usage report (sign in as an administrator)": f"{world.host_url}/api/portal/reports/usage",
            "Health (readiness: keys, storage, dependencies)": f"{world.host_url}/api/health/ready",
        }
