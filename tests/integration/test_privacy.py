"""After the provider and patient flows: no table row, log line or URL holds patient data in clear."""

from __future__ import annotations

import re

import httpx

from sandbox import config
from sandbox.entra import OTHER_ADMIN_UPN
from shared.sms.phone import to_e164
from shared.storage.schema import SCHEMA
from tests.integration.launching import PRACTITIONER, launch_url, new_appointment, todays_appointments
from tests.integration.portal_client import sign_in
from tests.security.portal_world import region_chosen

TENANTS = (config.CERNER_TEST_TENANT, config.CERNER_PROD_TENANT)


def patient_data(oracle) -> set[str]:
    """Every name, phone number, email address, birth date, patient id and appointment id the sandbox knows."""
    values: set[str] = set()
    for tenant in TENANTS:
        for patient in oracle.all_resources("Patient", tenant):
            values.add(patient["id"])
            values.add(patient.get("birthDate", ""))
            for name in patient.get("name", []):
                values.update([name.get("text", ""), name.get("family", ""), *name.get("given", [])])
            for telecom in patient.get("telecom", []):
                if telecom.get("system") == "phone":
                    values.add(re.sub(r"\D", "", telecom["value"]))
                    values.add(to_e164(telecom["value"]) or "")
                if telecom.get("system") == "email":
                    values.update([telecom["value"], telecom["value"].lower(), telecom["value"].split("@")[0]])
        values.update(a["id"] for a in oracle.all_resources("Appointment", tenant))
    return {v for v in values if len(v) >= 4}


def emails_only(oracle, appointment_id: str) -> bool:
    """Whether the appointment's patient has an email address and no mobile (so the link goes by email)."""
    resource = oracle.resource("Appointment", appointment_id, config.CERNER_TEST_TENANT)
    reference = next(p["actor"]["reference"] for p in resource["participant"] if "Patient/" in p["actor"]["reference"])
    telecom = oracle.resource("Patient", reference.split("/")[-1], config.CERNER_TEST_TENANT).get("telecom", [])
    return any(t.get("system") == "email" for t in telecom) and not any(t.get("use") == "mobile" for t in telecom)


def every_entity(accounts) -> list[dict]:
    rows = []
    for account in (None, "americas", "emea", "apac"):
        service = accounts.service(account)
        for table in service.list_tables():
            rows += [{"_table": table.name, **dict(e)} for e in service.get_table_client(table.name).list_entities()]
    return rows


def test_tables_logs_and_urls_hold_no_patient_data(sandbox, oracle, acs, browser, accounts, signed_in_provider):
    # A fresh visit, so the link is really texted now (not deduplicated against an earlier test's send).
    appointment, _name, mobile = new_appointment(oracle, skip=2)
    page = browser.get(launch_url(sandbox, oracle.create_launch(appointment)))
    assert page.status_code == 200, page.text
    send = re.search(r'sendUrl = "([^"]+)"', page.text).group(1)
    texted_before = len(acs.outbox(mobile))
    sent = browser.post(sandbox.world.host_url + send, headers={"accept": "application/json"})
    assert sent.status_code == 200 and sent.json()["repeated"] is False, sent.text
    messages = acs.outbox(mobile)
    assert len(messages) == texted_before + 1, "the patient was texted"
    link = re.search(r"(http://\S+/api/join/[A-Za-z0-9_-]+)", messages[-1].message).group(1)
    joined = httpx.get(link, follow_redirects=False)
    assert joined.status_code == 302, "the patient flow ran: the join answered with its redirect to the lobby"
    assert joined.headers["location"].startswith(f"{sandbox.world.graph_url}/visit/")
    emailed = next(a for a in todays_appointments(oracle, PRACTITIONER) if emails_only(oracle, a))
    page = browser.get(launch_url(sandbox, oracle.create_launch(emailed)))
    send = re.search(r'sendUrl = "([^"]+)"', page.text).group(1)
    assert browser.post(sandbox.world.host_url + send, headers={"accept": "application/json"}).status_code == 200
    for address in acs.mail.addresses():
        for email in acs.mail.mailbox(address):
            for link in re.findall(r"(http://\S+/api/(?:join|unsubscribe)/\S+)", email.plain_text):
                httpx.get(link, follow_redirects=False)

    secrets = patient_data(oracle)
    rows = every_entity(accounts)
    kinds = {(row["_table"], row.get("Kind")) for row in rows}
    assert {"usage", "ledger", "ehrusers"} <= {table for table, _kind in kinds}, "the flows wrote their rows"
    for row in rows:
        table, kind = row["_table"], row.get("Kind")
        assert kind in SCHEMA.get(table, {}), f"{table}/{kind} is not in the schema"
        text = " ".join(str(value) for value in row.values())
        leaked = [value for value in secrets if value in text]
        assert not leaked, f"{table} row holds patient data"

    host_log = (sandbox.state_dir / "host.log").read_text()
    assert "/api/" in host_log, "the host logs requests"
    assert not [value for value in secrets if value in host_log], "the host log holds patient data"

    urls = [str(page.url), *[str(r.url) for r in page.history], link, joined.headers["location"]]
    urls += [r.headers.get("location", "") for r in page.history]
    assert not [value for value in secrets if any(value in url for url in urls)]


def test_the_app_account_holds_no_administrators_object_id_or_name(sandbox, entra, accounts):
    """Who gave the consents and who changed what is kept as an audit reference, never the object id."""
    admin = sign_in(sandbox, OTHER_ADMIN_UPN)
    admins = [user for user in entra.users if set(user.wids) & {config.GLOBAL_ADMIN, config.TEAMS_ADMIN,
                                                                config.GLOBAL_READER, config.REPORTS_READER}]
    identities = {value for user in admins for value in (user.oid, user.name, user.upn)}
    table = accounts.table("config")
    consents = admin.get("sms/consents").json()
    try:
        with region_chosen(accounts, admin):
            saved = admin.send("PUT", "sms/consents", {"consent_send": True, "consent_attendees": False}).json()
            for row in table.list_entities():
                text = " ".join(str(value) for value in dict(row).values())
                assert not [v for v in identities if v in text], f"{row['Kind']} row names an administrator"
            organization = table.get_entity(config.OTHER_TENANT_ID, "organization")
            assert organization["region_chosen_by"].startswith("admin:")
    finally:  # as other tests expect to find this organization
        admin.send("PUT", "sms/consents", {k: consents[k] for k in ("consent_send", "consent_attendees")})
        admin.http.close()
    assert saved["consent_send_by"] == admin.me["actor"] and saved["consent_send_by_you"]
