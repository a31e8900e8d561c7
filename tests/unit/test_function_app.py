"""Cold start: importing function_app (what a cold instance does before the first request) loads no heavy SDK, and
the first /api/health (liveness) loads neither the settings model nor a storage or HTTP client."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Each of these costs a cold instance tens to hundreds of milliseconds; they load where first needed instead.
HEAVY_SDKS = ("msal", "azure.identity", "azure.communication", "azure.data.tables", "jinja2", "phonenumbers",
              "cryptography.hazmat", "jwt", "pydantic", "pydantic_settings", "httpx", "azure.core")
# Our own modules that pull those in: handlers import their shared/ service on first call (functions/lazy.py).
OWN_SERVICES = ("shared.settings", "shared.tokens", "shared.http", "shared.storage", "shared.health")


def loaded_after(probe: str) -> list[str]:
    """The modules a fresh interpreter holds after running `probe`."""
    result = subprocess.run([sys.executable, "-c", probe + "; print(json.dumps(sorted(sys.modules)))"], cwd=ROOT,
                            capture_output=True, text=True, check=True, timeout=120)
    return json.loads(result.stdout.strip().splitlines()[-1])


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == name or m.startswith(name + ".") for name in HEAVY_SDKS + OWN_SERVICES)]


def test_importing_function_app_loads_no_heavy_sdk():
    """A fresh interpreter imports function_app; none of the heavy SDKs may be in sys.modules afterwards."""
    modules = loaded_after("import json, sys, function_app")
    assert "function_app" in modules and "functions.portal" in modules  # the whole app was really imported
    assert heavy(modules) == []


def test_the_first_liveness_answer_loads_no_heavy_sdk():
    """A fresh interpreter imports function_app and answers /api/health 200 without loading settings or SDKs."""
    probe = ("import json, sys, azure.functions as func, function_app; "
             "f = next(f for f in function_app.app.get_functions() if f.get_function_name() == 'health'); "
             "r = f.get_user_function()(func.HttpRequest('GET', 'http://localhost/api/health', body=b'')); "
             "assert r.status_code == 200, r.status_code")
    assert heavy(loaded_after(probe)) == []
