"""In Chromium: when Graph refuses the virtual-appointment link, the portal tells the administrator what it means."""

from __future__ import annotations

import httpx
import pytest

from sandbox import config
from sandbox.entra import ADMIN_UPN
from shared.storage.config import ConfigRepository, endpoint_id_for
from tests.integration.launching import new_appointment
from tests.integration.test_visits import sealed_link

pytestmark = pytest.mark.e2e


def test_portal_shows_that_patients_get_the_meeting_link_and_what_it_means_on_phones(
        sandbox, oracle, entra, graph, accounts, new_context, screenshots):
    graph.refuse_app_only_join_link = True
    entra.auto_sign_in_upn = ADMIN_UPN
    try:
        appointment, _name, _mobile = new_appointment(oracle)
        opened = httpx.get(sealed_link(sandbox, appointment), follow_redirects=False)
        assert opened.status_code == 302 and "/meet/" in opened.headers["location"]

        admin = new_context().new_page()
        admin.goto(f"{sandbox.world.host_url}/api/portal/auth/signin")
        admin.wait_for_url(f"{sandbox.world.host_url}/api/portal")
        notice = admin.locator("#patient-link-notices")
        notice.get_by_text("On a phone").wait_for()
        admin.screenshot(path=screenshots / "portal-patient-link-notice.png", full_page=True)
        assert "Contoso Health (test)" in notice.text_content()
        assert appointment not in notice.text_content()
    finally:
        graph.refuse_app_only_join_link = False
        entra.auto_sign_in_upn = None
        ConfigRepository(accounts).forget_join_link_choice(config.ENTRA_TENANT_ID,
                                                           endpoint_id_for(sandbox.world.fhir_base()))
