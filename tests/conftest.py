"""Suite-wide fixtures: a dev CA trusted by every client in this process, Azurite, the whole sandbox."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from sandbox.devca import DevCA, make_dev_ca
from sandbox.run import Sandbox, start_sandbox
from sandbox.seed import sandbox_settings
from shared.storage.accounts import TableAccounts
from tests.integration.launching import PROVIDER, Cerner

# Every port a test session opens is shifted by this, so two suites (two checkouts) can run side by side.
_BASE_OFFSET = int(os.environ.get("SANDBOX_TEST_PORT_OFFSET", "1000"))

_CA_DIR = Path(__file__).resolve().parent.parent / ".sandbox" / f"test-ca-{os.getpid()}"
_CA = make_dev_ca(_CA_DIR)
# Set before any client is built, so httpx, requests (msal, Azure SDKs) trust the stand-ins' https.
os.environ.update(_CA.trust_env())


@pytest.fixture(scope="session")
def dev_ca() -> DevCA:
    """The dev CA whose bundle this test process trusts."""
    return _CA


@pytest.fixture(scope="session")
def azurite_settings(tmp_path_factory):
    """Settings pointing at a private Azurite (all accounts) started for this test session."""
    from sandbox import config
    from sandbox.run import start_azurite
    from shared.settings import Settings

    world = config.world(offset=_BASE_OFFSET + 500)
    process = start_azurite(world, tmp_path_factory.mktemp("azurite"))
    try:
        env = world.app_settings()
        yield Settings(**{name.lower(): value for name, value in env.items()})
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory, dev_ca) -> Sandbox:
    offset = _BASE_OFFSET
    # The reminder timer runs when a test asks (POST /admin/functions/...), not every 5 minutes behind its back.
    quiet_timer = {"SMS_SCHEDULE": "0 0 0 1 1 *"}
    # Roles are read again from Entra every 2 s rather than 5 min, so a test sees a removed role take effect.
    quick_role_checks = {"PORTAL_ROLE_CHECK_SECONDS": "2"}
    running = start_sandbox(offset=offset, state_dir=tmp_path_factory.mktemp("sandbox"), ca=dev_ca,
                            settings={**quiet_timer, **quick_role_checks})
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def accounts(sandbox) -> TableAccounts:
    """Table access as the app has it, for assertions on what was stored."""
    return TableAccounts(sandbox_settings(sandbox))


@pytest.fixture()
def oracle(sandbox):
    return sandbox.standins["oracle"]


@pytest.fixture()
def entra(sandbox):
    return sandbox.standins["entra"]


@pytest.fixture()
def graph(sandbox):
    return sandbox.standins["graph"]


@pytest.fixture()
def acs(sandbox):
    return sandbox.standins["acs"]


@pytest.fixture()
def browser():
    """A real HTTP client that follows redirects and keeps cookies, like a browser."""
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        yield client


@pytest.fixture()
def signed_in_provider(entra):
    """The provider's Microsoft sign-in completes without the account picker."""
    entra.auto_sign_in_upn = PROVIDER
    yield
    entra.auto_sign_in_upn = None


@pytest.fixture()
def cerner(sandbox, oracle, accounts) -> Cerner:
    """A fresh switchable Cerner tenant, registered for the demo organization; its own FHIR base URL, so the app's
    discovery and JWKS caches start empty for this test only."""
    from sandbox import config
    from sandbox.seed import ORGANIZER_UPN
    from shared.storage.config import ConfigRepository, FhirEndpoint

    tenant = oracle.add_tenant()
    base_url = sandbox.world.fhir_base(tenant)
    endpoint = FhirEndpoint(base_url=base_url, environment="test", display_name="Switched tenant",
                            departments=oracle.seeded[tenant].locations, organizer=ORGANIZER_UPN)
    repository = ConfigRepository(accounts)
    repository.save_endpoint(config.ENTRA_TENANT_ID, endpoint, "tests")
    yield Cerner(tenant, base_url, endpoint, sandbox.world.oracle_other_host_url)
    repository.delete_endpoint(config.ENTRA_TENANT_ID, endpoint.id)


JOIN_LINK_MODES = ("virtual-appointment link", "meeting link")


@pytest.fixture(params=JOIN_LINK_MODES)
def join_link_mode(request, graph, accounts) -> str:
    """Run a patient join both ways: Graph gives the virtual-appointment link, or refuses it to app-only tokens."""
    from sandbox import config
    from shared.storage.config import ConfigRepository

    repository = ConfigRepository(accounts)

    def forget() -> None:
        for endpoint in repository.endpoints(config.ENTRA_TENANT_ID):
            repository.forget_join_link_choice(config.ENTRA_TENANT_ID, endpoint.id)

    forget()
    graph.refuse_app_only_join_link = request.param == "meeting link"
    yield request.param
    graph.refuse_app_only_join_link = False
    forget()


@pytest.fixture()
def app_settings(monkeypatch):
    """Set app settings (environment variables) for in-process handlers; the settings and sealer are re-read."""
    from shared.runtime import reset_process_state

    def apply(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        reset_process_state()

    yield apply
    monkeypatch.undo()
    reset_process_state()


class Telemetry:
    """What shared.telemetry emitted during a test, read from in-memory OpenTelemetry readers."""

    def __init__(self) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))

    def points(self) -> list[tuple[str, dict, float]]:
        """Every data point so far: (metric name, attributes, sum or count)."""
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        value = point.value if hasattr(point, "value") else point.count
                        found.append((metric.name, dict(point.attributes or {}), value))
        return found

    def value(self, name: str, **attributes: str) -> float:
        """The counter's sum (or the histogram's count) for exactly these attributes; 0 if never emitted."""
        return sum(value for metric, found, value in self.points() if metric == name and found == attributes)


@pytest.fixture()
def telemetry():
    """shared.telemetry sending to in-memory readers for this test only."""
    from shared import telemetry as module

    readers = Telemetry()
    module.use_providers(readers.meter_provider, readers.tracer_provider)
    yield readers
    module.use_providers()


@pytest.fixture(scope="module")
def admin(sandbox):
    """The demo organization's Global Administrator, signed in to the portal (CSRF token at hand)."""
    from sandbox.entra import ADMIN_UPN
    from tests.integration.portal_client import sign_in

    portal = sign_in(sandbox, ADMIN_UPN)
    yield portal
    portal.http.close()


@pytest.fixture(scope="module")
def fhir_server(sandbox):
    """A FHIR server on localhost (allowed in the sandbox) whose bases pass or fail chosen checks."""
    from sandbox.servers import free_port, serve
    from tests.integration.portal_client import fhir_server_app

    port = free_port()
    server = serve(fhir_server_app(), port, sandbox.ca)
    yield f"https://localhost:{port}"
    server.stop()
