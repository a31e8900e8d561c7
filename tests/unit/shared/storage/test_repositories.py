"""Repositories against a real Azurite: region pinning, schema enforcement, tenant isolation."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from shared.errors import Conflict, SchemaViolation
from shared.settings import REGIONS
from shared.storage import entities
from shared.storage.accounts import RegionNotProvisioned, TableAccounts, is_loopback
from shared.storage.config import ConfigRepository, FhirEndpoint, SmsConsents, normalize_base_url
from shared.storage.ehrusers import EhrUserRepository


@pytest.fixture()
def accounts(azurite_settings) -> TableAccounts:
    return TableAccounts(azurite_settings)


def test_ehr_user_written_for_emea_exists_only_in_the_emea_account(accounts):
    users = EhrUserRepository(accounts)
    endpoint, ehr_user = uuid.uuid4().hex[:16], f"https://fhir.example/r4/t/Practitioner/{uuid.uuid4().int}"
    users.link("emea", endpoint, ehr_user, "entra-oid-1")

    assert users.lookup("emea", endpoint, ehr_user) == "entra-oid-1"
    for region in REGIONS:
        rows = list(accounts.table("ehrusers", region).query_entities("PartitionKey eq @p", parameters={"p": endpoint}))
        assert len(rows) == (1 if region == "emea" else 0), region
        assert users.lookup(region, endpoint, ehr_user) == ("entra-oid-1" if region == "emea" else None)


def test_relinking_replaces_the_entra_object_id(accounts):
    users = EhrUserRepository(accounts)
    users.link("americas", "ep1", "Practitioner/1", "old")
    users.link("americas", "ep1", "Practitioner/1", "new")
    assert users.lookup("americas", "ep1", "Practitioner/1") == "new"


def test_entity_kind_outside_the_schema_is_refused(accounts):
    table = accounts.table("ehrusers", "americas")
    with pytest.raises(SchemaViolation, match="kind"):
        entities.upsert(table, "ehrusers", "patient", "p", "r", {"entra_oid": "x"})


def test_field_outside_the_schema_is_refused_and_nothing_is_written(accounts):
    table = accounts.table("ehrusers", "americas")
    with pytest.raises(SchemaViolation, match="phone"):
        entities.upsert(table, "ehrusers", "ehr_user", "p-schema", "r", {"entra_oid": "x", "phone": "+15555550100"})
    assert entities.get(table, "p-schema", "r") is None


def test_personal_data_tables_need_a_region_and_config_takes_none(accounts):
    with pytest.raises(ValueError):
        accounts.table("ehrusers")
    with pytest.raises(ValueError):
        accounts.table("config", "emea")


def test_unprovisioned_region_is_a_clear_error(azurite_settings):
    settings = azurite_settings.model_copy(update={"table_endpoint_apac": ""})
    with pytest.raises(RegionNotProvisioned, match="apac"):
        TableAccounts(settings).table("ehrusers", "apac")


def test_region_is_chosen_once(accounts):
    config = ConfigRepository(accounts)
    tenant = str(uuid.uuid4())
    assert config.organization(tenant) is None
    config.choose_region(tenant, "emea", "admin-oid")
    assert config.choose_region(tenant, "emea", "admin-oid").region == "emea"
    with pytest.raises(Conflict):
        config.choose_region(tenant, "apac", "admin-oid")
    assert config.organization(tenant).region == "emea"


def test_endpoints_are_isolated_per_tenant_and_found_by_iss(accounts):
    config = ConfigRepository(accounts)
    tenant_a, tenant_b = str(uuid.uuid4()), str(uuid.uuid4())
    base = f"https://fhir-ehr-code.cerner.com/r4/{uuid.uuid4()}"
    config.save_endpoint(tenant_a, FhirEndpoint(base_url=base + "/", environment="test", departments=["1", "2"]), "a")

    assert [e.base_url for e in config.endpoints(tenant_a)] == [base]
    assert config.endpoints(tenant_b) == []
    tenant, endpoint = config.find_by_iss(base.replace("https://fhir-ehr-code", "HTTPS://FHIR-EHR-CODE") + "/")
    assert tenant == tenant_a and endpoint.departments == ["1", "2"] and endpoint.reminder_offsets == [1440, 15]
    with pytest.raises(Conflict):
        config.save_endpoint(tenant_b, FhirEndpoint(base_url=base, environment="test"), "b")
    config.delete_endpoint(tenant_a, endpoint.id)
    assert config.find_by_iss(base) is None


def test_sms_consents_round_trip(accounts):
    config = ConfigRepository(accounts)
    tenant = str(uuid.uuid4())
    assert not config.sms_consents(tenant).complete
    config.save_sms_consents(tenant, SmsConsents(consent_send=True, consent_attendees=True, consent_send_by="a"))
    assert config.sms_consents(tenant).complete


def test_only_loopback_endpoints_use_an_account_key():
    assert is_loopback("http://127.0.0.1:10002/devstoreaccount1")
    assert is_loopback("http://localhost:10002/americas")
    assert not is_loopback("https://stconnectoremea.table.core.windows.net")


def test_base_urls_compare_without_case_or_trailing_slash():
    assert normalize_base_url("HTTPS://Fhir.Example/r4/T/") == "https://fhir.example/r4/T"


def test_a_url_is_added_once_and_an_abandoned_claim_can_be_taken_after_a_while(accounts, monkeypatch):
    config = ConfigRepository(accounts)
    tenant_a, tenant_b = str(uuid.uuid4()), str(uuid.uuid4())
    endpoint = FhirEndpoint(base_url=f"https://fhir.example/r4/{uuid.uuid4()}", environment="test")
    config.add_endpoint(tenant_a, endpoint, "admin:a")
    with pytest.raises(Conflict, match="already registered"):
        config.add_endpoint(tenant_a, endpoint, "admin:a")
    with pytest.raises(Conflict, match="another organization"):
        config.add_endpoint(tenant_b, endpoint, "admin:b")
    # tenant A's writer died between the index row and the endpoint row: the claim is abandoned
    entities.delete(config.table, tenant_a, f"fhir:{endpoint.id}")
    with pytest.raises(Conflict, match="another organization"):
        config.add_endpoint(tenant_b, endpoint, "admin:b")  # not yet: A may still be writing
    monkeypatch.setattr("shared.storage.config.STALE_CLAIM", timedelta(seconds=-1))
    config.add_endpoint(tenant_b, endpoint, "admin:b")
    assert config.find_by_iss(endpoint.base_url)[0] == tenant_b


def test_removing_an_endpoints_links_deletes_every_one_in_its_region_only(accounts):
    users = EhrUserRepository(accounts)
    endpoint, other = uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
    for number in range(130):  # more than one transaction of 100
        users.link("americas", endpoint, f"https://fhir.example/r4/t/Practitioner/{number}", f"oid-{number}")
    users.link("americas", other, "https://fhir.example/r4/t/Practitioner/1", "oid-x")
    assert users.count_links("americas", endpoint) == 130
    assert users.unlink_endpoint("americas", endpoint) == 130
    assert users.count_links("americas", endpoint) == 0 and users.count_links("americas", other) == 1


@pytest.fixture()
def config_cache(monkeypatch):
    """CONFIG_CACHE_SECONDS as deployed (30 s), with this process's recent reads forgotten before and after."""
    from shared.runtime import reset_process_state
    from shared.settings import get_settings

    monkeypatch.setenv("CONFIG_CACHE_SECONDS", "30")
    get_settings.cache_clear()
    reset_process_state()
    yield
    get_settings.cache_clear()
    reset_process_state()


def registered(accounts, tenant: str) -> FhirEndpoint:
    endpoint = FhirEndpoint(base_url=f"https://fhir.example/r4/{uuid.uuid4().hex}", environment="test",
                            display_name="Before")
    ConfigRepository(accounts).save_endpoint(tenant, endpoint, "admin")
    return endpoint


def another_instance_renames(accounts, tenant: str, endpoint: FhirEndpoint) -> None:
    """A portal save on another instance: the row changes in the table, this instance is not told."""
    fields = endpoint.model_dump() | {"display_name": "Elsewhere"}
    entities.upsert(accounts.table("config"), "config", "fhir_endpoint", tenant, f"fhir:{endpoint.id}", fields)


def test_request_paths_reuse_a_recent_endpoint_read_and_a_save_here_shows_at_once(accounts, config_cache):
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    endpoint = registered(accounts, tenant)
    requests = ConfigRepository(accounts, reuse_recent_reads=True)
    assert requests.find_by_iss(endpoint.base_url)[1].display_name == "Before"
    another_instance_renames(accounts, tenant, endpoint)
    assert requests.find_by_iss(endpoint.base_url)[1].display_name == "Before", "read less than 30 s ago"
    portal = ConfigRepository(accounts)
    assert portal.endpoint(tenant, endpoint.id).display_name == "Elsewhere", "the portal reads afresh"
    ConfigRepository(accounts).save_endpoint(tenant, endpoint.model_copy(update={"display_name": "Saved"}), "admin")
    assert requests.endpoint(tenant, endpoint.id).display_name == "Saved"


def test_an_endpoint_removed_on_this_instance_is_gone_for_requests_at_once(accounts, config_cache):
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    endpoint = registered(accounts, tenant)
    requests = ConfigRepository(accounts, reuse_recent_reads=True)
    assert requests.find_by_id(endpoint.id) is not None
    ConfigRepository(accounts).delete_endpoint(tenant, endpoint.id)
    assert requests.find_by_id(endpoint.id) is None
    assert requests.endpoint(tenant, endpoint.id) is None


def test_an_unregistered_url_is_not_remembered_as_absent(accounts, config_cache):
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    base_url = f"https://fhir.example/r4/{uuid.uuid4().hex}"
    requests = ConfigRepository(accounts, reuse_recent_reads=True)
    assert requests.find_by_iss(base_url) is None
    endpoint = FhirEndpoint(base_url=base_url, environment="test")
    entities.create(accounts.table("config"), "config", "fhir_index", "fhir_index", endpoint.id,
                    {"tenant_id": tenant, "endpoint_id": endpoint.id, "environment": "test"})
    entities.upsert(accounts.table("config"), "config", "fhir_endpoint", tenant, f"fhir:{endpoint.id}",
                    endpoint.model_dump())  # registered on another instance
    assert requests.find_by_iss(base_url) == (tenant, endpoint.model_copy(update={"display_name": ""}))


def test_with_no_config_cache_every_request_reads_the_table(accounts, config_cache, monkeypatch):
    from shared.settings import get_settings

    monkeypatch.setenv("CONFIG_CACHE_SECONDS", "0")
    get_settings.cache_clear()
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    endpoint = registered(accounts, tenant)
    requests = ConfigRepository(accounts, reuse_recent_reads=True)
    assert requests.endpoint(tenant, endpoint.id).display_name == "Before"
    another_instance_renames(accounts, tenant, endpoint)
    assert requests.endpoint(tenant, endpoint.id).display_name == "Elsewhere"
