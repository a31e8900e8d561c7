"""Integration records: the Cerner tenant read from the base URL and the steps that carry the record's values."""

from __future__ import annotations

import pytest

from shared.portal.records import cerner_steps, cerner_tenant
from shared.storage.config import FhirEndpoint


@pytest.mark.parametrize("url,tenant", [
    ("https://fhir-ehr.cerner.com/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d", "ec2458f2-1e24-41c8-b71b-0e701af7583d"),
    ("https://fhir-ehr.cerner.com/R4/abc/", "abc"),
    ("https://fhir.example/fhir/api/FHDST", ""),
])
def test_cerner_tenant_comes_from_the_r4_path(url, tenant):
    assert cerner_tenant(url) == tenant


def test_steps_name_every_value_to_enter():
    record = {"provider_launch_url": "https://app/api/launch/provider?environment=production",
              "redirect_uri": "https://app/api/launch/callback", "client_id": "client-1", "scopes": "launch openid",
              "patient_launch_url": "https://app/api/join/"}
    endpoint = FhirEndpoint(base_url="https://fhir-ehr.cerner.com/r4/t1", environment="production")
    text = "\n".join(cerner_steps(record, endpoint))
    for value in (*record.values(), "t1", "production"):
        assert value in text
