"""Every setting is documented in the README and listed in local.settings.sample.json, and nothing else is."""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
PLATFORM = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage"}
FIELDS = {name.upper() for name in Settings.model_fields}


def test_readme_table_documents_every_setting_and_no_other():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", section, flags=re.MULTILINE))
    assert documented == FIELDS


def test_sample_local_settings_list_every_setting_and_parse():
    values = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    assert set(values) - PLATFORM == FIELDS
    settings = Settings(**{name.lower(): value for name, value in values.items() if name not in PLATFORM})
    assert settings.seal_active_key_id in settings.seal_key_ring()
    assert len(next(iter(settings.seal_key_ring().values()))) == 32
    assert settings.enabled_regions == ("americas", "emea", "apac")


def test_settings_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("SMS_RATE_PER_MINUTE", "50")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://connector.example/")
    settings = Settings()
    assert settings.sms_rate_per_minute == 50
    assert settings.public_base_url == "https://connector.example"


def test_only_the_deployments_own_tenant_is_allowed_unless_others_are_listed():
    own = "3C1F7D52-9A61-4B0E-8C55-2F7A1D9E6B40"
    settings = Settings(entra_tenant_id=own)
    assert settings.allowed_tenant_ids == {own.lower()}
    assert settings.tenant_allowed(own.lower()) and not settings.tenant_allowed("a8e2b6c4-1d3f-4e5a-9b7c-0f6e2d4c8a10")
    assert not settings.tenant_allowed(None) and not Settings().allowed_tenant_ids
    listed = Settings(entra_tenant_id=own, allowed_tenants=" a8e2b6c4-1d3f-4e5a-9b7c-0f6e2d4c8a10 ,")
    assert listed.allowed_tenant_ids == {"a8e2b6c4-1d3f-4e5a-9b7c-0f6e2d4c8a10"}, "the list replaces the default"
