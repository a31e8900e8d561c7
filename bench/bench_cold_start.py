"""Cold start: importing `function_app` and answering the first /api/health, against a bare azure-functions app.

What a cold Flex Consumption instance does before the first launch. Each side runs in a fresh Python process
(imports cold in memory, warm on disk), several times, best run kept; both sides alternate so machine load hits
both alike. /api/health is liveness (no settings, no network); the app settings of a sandbox are in the
environment all the same, as they would be in Azure.

Run: .venv/bin/python -m bench.bench_cold_start   (prints the ratio)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.table import Figure
from sandbox import config

BARE_APP = '''
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="health", methods=["GET"])
def health(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("{\\"ok\\": true}", mimetype="application/json")
'''

# Runs in the fresh process: time from before the import to the first health response, as a worker would.
PROBE = '''
import json, sys, time
started = time.perf_counter()
import azure.functions as func
import function_app
imported = time.perf_counter() - started
health = next(f for f in function_app.app.get_functions() if f.get_function_name() == "health")
request = func.HttpRequest("GET", "http://localhost/api/health", headers={}, body=b"")
response = health.get_user_function()(request)
seconds = time.perf_counter() - started
modules = len(sys.modules)
# What the first provider launch then pays on the cold instance: its service's imports (0 for the bare app).
import importlib
loaded = time.perf_counter()
if hasattr(function_app, "launch"):
    importlib.import_module("shared.launch")
first_launch_imports = time.perf_counter() - loaded
print(json.dumps({"seconds": seconds, "import": imported, "status": response.status_code,
                  "modules": modules, "first_launch_imports": first_launch_imports}))
'''


def probe(app_dir: Path, env: dict[str, str]) -> dict:
    """One cold process: seconds to import the app and answer /api/health."""
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=app_dir, env={**env, "PYTHONPATH": str(app_dir)},
                            capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(env: dict[str, str], runs: int) -> dict[str, dict]:
    """Best of `runs` cold processes for the bare app and for ours, alternating."""
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as bare_dir:
        (Path(bare_dir) / "function_app.py").write_text(BARE_APP)
        best: dict[str, dict] = {}
        for _ in range(runs):
            for name, app_dir in (("bare", Path(bare_dir)), ("ours", config.ROOT)):
                outcome = probe(app_dir, env)
                if name not in best or outcome["seconds"] < best[name]["seconds"]:
                    best[name] = outcome
        return best


def run(offset: int, runs: int = 5) -> list[Figure]:
    """The cold-start figures, each side in fresh processes with a sandbox's app settings in the environment."""
    best = measure({**os.environ, **config.world(offset).app_settings()}, runs)
    if best["ours"]["status"] != 200:
        raise RuntimeError(f"/api/health answered {best['ours']['status']} in the cold-start probe")
    bare, ours = best["bare"]["seconds"], best["ours"]["seconds"]
    bare_import, ours_import = best["bare"]["import"], best["ours"]["import"]
    return [
        Figure("cold start", "import alone: function_app ÷ bare app", round(ours_import / bare_import, 2)),
        Figure("cold start", f"bare app: import + first /api/health (s, best of {runs})", round(bare, 3)),
        Figure("cold start", f"function_app: import + first /api/health (s, best of {runs})", round(ours, 3)),
        Figure("cold start", "function_app ÷ bare app", round(ours / bare, 2), "≤ 1.5", ours / bare <= 1.5),
        Figure("cold start", "modules loaded: function_app ÷ bare app",
               round(best["ours"]["modules"] / best["bare"]["modules"], 2)),
        # Lazy imports move this cost to the first launch; shown so the ratio above hides nothing.
        Figure("cold start", "first launch on that instance: its service's imports (s)",
               round(best["ours"]["first_launch_imports"], 3)),
        Figure("cold start", "function_app + the launch service's imports ÷ bare app",
               round((ours + best["ours"]["first_launch_imports"]) / bare, 2)),
    ]


if __name__ == "__main__":
    from bench.table import print_table

    print_table(run(offset=3200 + int(os.environ.get("SANDBOX_TEST_PORT_OFFSET", "0"))))
