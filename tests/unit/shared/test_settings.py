"""Every setting is documented in the README and listed in local.settings.sample.json, and nothing else is."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from sandbox import config
from shared.settings import PUBLISHED_KEYS, Settings, is_loopback_url, parse_key_list

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


def test_every_key_published_in_the_repository_is_known_as_published():
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    published = [b64 for _id, b64 in parse_key_list(sample["SEAL_KEYS"]) + parse_key_list(sample["HASH_KEY"])]
    published += [b64 for _id, b64 in parse_key_list(config.SEAL_KEYS) + parse_key_list(config.HASH_KEY)]
    readme = (ROOT / "README.md").read_text()
    published += [b64 for b64 in re.findall(r"[A-Za-z0-9+/]{43}=", readme) if len(base64.b64decode(b64)) == 32]
    assert published and set(published) <= PUBLISHED_KEYS


def test_sample_keys_are_accepted_on_a_loopback_url_only():
    sample = Settings(seal_keys=config.SEAL_KEYS, seal_active_key_id="k1", hash_key=config.HASH_KEY)
    assert sample.key_problems() == []
    public = sample.model_copy(update={"public_base_url": "https://connector.contoso-health.example"})
    assert public.key_problems() == [
        "SEAL_KEYS key 'k1' is a published sample key; generate your own for a public PUBLIC_BASE_URL.",
        "HASH_KEY is a published sample key; generate your own for a public PUBLIC_BASE_URL.",
    ]


def test_own_keys_behind_a_public_url_are_accepted_and_rotated_hash_keys_parse():
    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    own = Settings(public_base_url="https://connector.contoso-health.example", seal_active_key_id="k2",
                   seal_keys=f"k2:{b64(bytes(range(32)))},k1:{b64(b'a' * 32)}",
                   hash_key=f"h2:{b64(b'n' * 40)},{b64(b'o' * 32)}")
    assert own.key_problems() == []
    assert [key_id for key_id, _key in own.hash_key_ring()] == ["h2", ""]


def test_seal_active_key_id_must_name_a_key():
    settings = Settings(seal_keys=config.SEAL_KEYS, seal_active_key_id="k9", hash_key=config.HASH_KEY)
    assert settings.key_problems() == ["SEAL_ACTIVE_KEY_ID does not name a key in SEAL_KEYS."]


def test_key_ids_are_letters_and_digits_and_distinct():
    key = base64.b64encode(b"k" * 32).decode()
    for seal_keys in (f"k.1:{key}", f"k1:{key},k1:{key}", key):
        problems = Settings(seal_keys=seal_keys, seal_active_key_id="k1", hash_key=config.HASH_KEY).key_problems()
        assert problems and problems[0].startswith("SEAL_KEYS must be a comma list of keyid:base64 entries")


def test_loopback_urls():
    assert is_loopback_url("http://127.0.0.1:7071") and is_loopback_url("http://localhost:7071")
    assert is_loopback_url("http://[::1]:7071") and is_loopback_url("http://127.8.0.1")
    assert not is_loopback_url("https://connector.example") and not is_loopback_url("https://10.0.0.4")
    assert not is_loopback_url("https://127.0.0.1.nip.io")


def test_only_the_deployments_own_tenant_is_allowed_unless_others_are_listed():
    own = "3C1F7D52-9A61-4B0E-8C55-2F7A1D9E6B40"
    settings = Settings(entra_tenant_id=own)
    assert settings.allowed_tenant_ids == {own.lower()}
    assert settings.tenant_allowed(own.lower()) and not settings.tenant_allowed("a8e2b6c4-1d3f-4e5a-9b7c-0f6e2d4c8a10")
    assert not settings.tenant_allowed(None) and not Settings().allowed_tenant_ids
    listed = Settings(entra_tenant_id=own, allowed_tenants=" a8e2b6c4-1d3f-4e5a-9b7c-0f6e2d4c8a10 ,")
    assert listed.allowed_tenant_ids == {"a8e2b6c4-1d3f-4e5a-9b7c-0f6e2d4c8a10"}, "the list replaces the default"
