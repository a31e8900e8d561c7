"""The demo configuration `make run` starts with: what an administrator would have entered in the portal."""

from __future__ import annotations

from datetime import UTC, datetime

from sandbox import config
from sandbox.running import Sandbox
from shared.settings import Settings
from shared.storage.accounts import TableAccounts
from shared.storage.config import ConfigRepository, FhirEndpoint, SmsConsents

ORGANIZER_UPN = "virtual.appointments@contoso-health.example"
ADMIN_OID_PLACEHOLDER = "seeded-by-make-run"
DEMO_SMS_NUMBER = "+18005550100"


def sandbox_settings(sandbox: Sandbox) -> Settings:
    """The app's settings as the function app will read them in this sandbox."""
    return Settings(**{name.lower(): value for name, value in sandbox.settings_env.items()})


def seed_demo_configuration(sandbox: Sandbox) -> None:
    """Organization in americas; the test and production FHIR endpoints; SMS consented with a linked number."""
    repository = ConfigRepository(TableAccounts(sandbox_settings(sandbox)))
    tenant = config.ENTRA_TENANT_ID
    repository.choose_region(tenant, "americas", ADMIN_OID_PLACEHOLDER)
    oracle = sandbox.standins["oracle"]
    departments = [str(location["id"]) for location in oracle.all_resources("Location")]
    for cerner_tenant, environment, name in (
        (config.CERNER_TEST_TENANT, "test", "Contoso Health (test)"),
        (config.CERNER_PROD_TENANT, "production", "Contoso Health"),
    ):
        repository.save_endpoint(tenant, FhirEndpoint(
            base_url=sandbox.world.fhir_base(cerner_tenant), environment=environment, display_name=name,
            departments=departments, organizer=ORGANIZER_UPN, sms_number=DEMO_SMS_NUMBER,
            channel="email_if_no_mobile",
        ), ADMIN_OID_PLACEHOLDER)
    now = datetime.now(UTC)
    repository.save_sms_consents(tenant, SmsConsents(
        consent_send=True, consent_send_at=now, consent_send_by=ADMIN_OID_PLACEHOLDER,
        consent_attendees=True, consent_attendees_at=now, consent_attendees_by=ADMIN_OID_PLACEHOLDER,
    ))
