"""Cold start: importing function_app (what a cold instance does before the first request) loads no heavy SDK."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Each of these costs a cold instance tens to hundreds of milliseconds; they load where first needed instead.
HEAVY_SDKS = ("msal", "azure.identity", "azure.communication", "azure.data.tables", "jinja2", "phonenumbers",
              "cryptography.hazmat", "jwt")


def test_importing_function_app_loads_no_heavy_sdk():
    """A fresh interpreter imports function_app; none of the heavy SDKs may be in sys.modules afterwards."""
    probe = ("import json, sys, function_app; "
             "print(json.dumps(sorted(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
                            timeout=120)
    modules = json.loads(result.stdout.strip().splitlines()[-1])
    assert "function_app" in modules and "functions.portal" in modules  # the whole app was really imported
    loaded = [m for m in modules if any(m == sdk or m.startswith(sdk + ".") for sdk in HEAVY_SDKS)]
    assert loaded == []
