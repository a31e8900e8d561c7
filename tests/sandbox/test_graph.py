"""The Graph stand-in answers as Graph does, and its Teams pages run a lobby a provider can admit patients from."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import msal
import pytest

from sandbox.config import ENTRA_CLIENT_ID, ENTRA_CLIENT_SECRET, ENTRA_TENANT_ID, OTHER_TENANT_ID
from sandbox.entra import (
    ORGANIZER_OID,
    ORGANIZER_UPN,
    PROVIDER_OID,
    PROVIDER_UPN,
    SECOND_PROVIDER_OID,
    EntraState,
)
from sandbox.entra import build_app as build_entra_app
from sandbox.graph import GraphState, build_app
from sandbox.servers import free_port, serve

APP_ID = ENTRA_CLIENT_ID


class Clock:
    """A clock the test moves by hand, so attendance durations are exact."""

    def __init__(self) -> None:
        self.now = 1_760_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def world(dev_ca) -> Iterator[dict]:
    entra = EntraState()
    clock = Clock()
    graph = GraphState(entra, clock=clock)
    entra_server = serve(build_entra_app(entra), free_port(), dev_ca)
    graph_server = serve(build_app(graph), free_port(), dev_ca)
    origin = f"https://localhost:{graph_server.port}"
    with httpx.Client(base_url=origin, headers={"Authorization": f"Bearer {entra.mint_app_token()}"}) as client:
        yield {"entra": entra, "graph": graph, "clock": clock, "origin": origin, "client": client,
               "entra_origin": f"https://localhost:{entra_server.port}"}
    graph_server.stop()
    entra_server.stop()


@pytest.fixture
def graph(world) -> GraphState:
    return world["graph"]


@pytest.fixture
def client(world) -> httpx.Client:
    return world["client"]


@pytest.fixture
def origin(world) -> str:
    return world["origin"]


def create(client: httpx.Client, external_id: str | None = None, organizer: str = ORGANIZER_OID,
           **extra: object) -> httpx.Response:
    body = {
        "externalId": external_id or str(uuid.uuid4()),
        "startDateTime": "2026-03-02T15:00:00Z", "endDateTime": "2026-03-02T15:30:00Z",
        "subject": "Virtual appointment",
        "participants": {"attendees": [{"identity": {"user": {"id": PROVIDER_OID}}, "upn": PROVIDER_UPN,
                                        "role": "coorganizer"}]},
        **extra,
    }
    return client.post(f"/v1.0/users/{organizer}/onlineMeetings/createOrGet", json=body)


def meeting_url(meeting_id: str, organizer: str = ORGANIZER_OID) -> str:
    return f"/v1.0/users/{organizer}/onlineMeetings/{meeting_id}"


def test_create_or_get_creates_once_then_returns_the_same_meeting(client, origin):
    external_id = str(uuid.uuid4())

    first, second = create(client, external_id), create(client, external_id)

    assert (first.status_code, second.status_code) == (201, 200)
    meeting = first.json()
    assert second.json()["id"] == meeting["id"] and second.json()["joinWebUrl"] == meeting["joinWebUrl"]
    assert meeting["joinWebUrl"] == f"{origin}/meet/{meeting['id']}"
    assert meeting["externalId"] == external_id and meeting["subject"] == "Virtual appointment"
    assert meeting["participants"]["organizer"]["identity"]["user"]["id"] == ORGANIZER_OID
    assert meeting["participants"]["attendees"][0]["role"] == "coorganizer"
    assert meeting["lobbyBypassSettings"] == {"scope": "organization", "isDialInBypassEnabled": False}
    assert meeting["startDateTime"].startswith("2026-03-02T15:00:00")
    assert {"allowedPresenters", "allowMeetingChat", "allowedLobbyAdmitters", "joinMeetingIdSettings",
            "chatInfo"} <= meeting.keys()


def test_different_external_ids_or_organizers_get_different_meetings(client, graph):
    external_id = str(uuid.uuid4())
    graph.grant_access_policy(SECOND_PROVIDER_OID)
    try:
        one, other = create(client, external_id), create(client)
        by_second_organizer = create(client, external_id, organizer=SECOND_PROVIDER_OID)
    finally:
        graph.revoke_access_policy(SECOND_PROVIDER_OID)
    assert len({one.json()["id"], other.json()["id"], by_second_organizer.json()["id"]}) == 3
    assert by_second_organizer.status_code == 201


def test_organizer_can_be_named_by_upn(client):
    assert create(client, organizer=ORGANIZER_UPN).status_code == 201


def test_organizer_without_access_policy_is_refused_like_graph(client, graph):
    refused = create(client, organizer=PROVIDER_OID)

    error = refused.json()["error"]
    assert refused.status_code == 403 and error["code"] == "Unauthorized"
    assert error["message"] == f"App {APP_ID} is not authorized to Create meeting on behalf of user {PROVIDER_OID}"
    assert {"date", "request-id"} <= error["innerError"].keys()
    graph.grant_access_policy(PROVIDER_OID)
    try:
        assert create(client, organizer=PROVIDER_OID).status_code == 201
    finally:
        graph.revoke_access_policy(PROVIDER_OID)


def test_patch_applies_the_lobby_and_chat_settings(client):
    meeting_id = create(client).json()["id"]
    patch = {"lobbyBypassSettings": {"scope": "organization"}, "allowMeetingChat": "limited",
             "allowedLobbyAdmitters": "organizerAndCoOrganizers", "subject": "Virtual appointment (moved)"}

    patched = client.patch(meeting_url(meeting_id), json=patch)
    dial_in = client.patch(meeting_url(meeting_id), json={"lobbyBypassSettings": {"isDialInBypassEnabled": True}})
    fetched = client.get(meeting_url(meeting_id)).json()

    assert patched.status_code == 200 and patched.json()["allowMeetingChat"] == "limited"
    assert dial_in.status_code == 200
    assert fetched["lobbyBypassSettings"] == {"scope": "organization", "isDialInBypassEnabled": True}
    assert fetched["allowMeetingChat"] == "limited" and fetched["allowedLobbyAdmitters"] == "organizerAndCoOrganizers"
    assert fetched["subject"] == "Virtual appointment (moved)"


def test_patch_replaces_attendees_and_rejects_bad_values(client):
    meeting_id = create(client).json()["id"]
    attendees = {"attendees": [{"identity": {"user": {"id": SECOND_PROVIDER_OID}}, "role": "coorganizer"}]}

    replaced = client.patch(meeting_url(meeting_id), json={"participants": attendees}).json()
    bad_enum = client.patch(meeting_url(meeting_id), json={"allowMeetingChat": "sometimes"})
    unknown = client.patch(meeting_url(meeting_id), json={"chatRestrictions": {}})
    one_time = client.patch(meeting_url(meeting_id), json={"startDateTime": "2026-03-02T16:00:00Z"})

    assert [a["identity"]["user"]["id"] for a in replaced["participants"]["attendees"]] == [SECOND_PROVIDER_OID]
    assert {bad_enum.status_code, unknown.status_code, one_time.status_code} == {400}
    assert bad_enum.json()["error"]["code"] == "BadRequest"


def test_unknown_meeting_is_404(client):
    assert client.get(meeting_url("bm90LWEtbWVldGluZw")).status_code == 404
    assert client.patch(meeting_url("bm90LWEtbWVldGluZw"), json={"subject": "x"}).status_code == 404


def test_missing_or_bad_token_is_401_and_missing_permission_403(world, origin):
    url = f"{origin}/v1.0/subscribedSkus"
    missing = httpx.get(url)
    forged = httpx.get(url, headers={"Authorization": "Bearer not.a.jwt"})
    no_roles = httpx.get(url, headers={"Authorization": f"Bearer {world['entra'].mint_app_token(roles=[])}"})

    assert missing.status_code == forged.status_code == 401
    assert forged.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert no_roles.status_code == 403


def test_delegated_token_acts_only_for_its_user(world, origin):
    token = world["entra"].mint_user_token(PROVIDER_UPN, ["OnlineMeetings.ReadWrite"])
    with httpx.Client(base_url=origin, headers={"Authorization": f"Bearer {token}"}) as delegated:
        for_someone_else = create(delegated, organizer=ORGANIZER_OID)
        for_self = create(delegated, organizer=PROVIDER_OID)
    assert for_someone_else.status_code == 403 and for_self.status_code == 201


def test_virtual_appointment_join_url_opens_the_browser_lobby_page(client, origin):
    meeting = create(client).json()

    response = client.get(meeting_url(meeting["id"]) + "/getVirtualAppointmentJoinWebUrl")
    join_page = httpx.get(response.json()["value"])
    teams_page = httpx.get(meeting["joinWebUrl"])

    assert response.status_code == 200 and response.json()["value"].startswith(f"{origin}/visit/")
    assert response.json()["@odata.context"].endswith("$metadata#Edm.String")
    assert join_page.status_code == 200 and "Join now" in join_page.text and 'id="name"' in join_page.text
    assert teams_page.status_code == 200 and "Virtual appointment" in teams_page.text and "Admit" in teams_page.text


def test_throttling_answers_429_with_retry_after_then_recovers(client, graph):
    graph.throttle_next(1, retry_after=2)
    before = graph.requests["throttled"]

    throttled, recovered = client.get("/v1.0/subscribedSkus"), client.get("/v1.0/subscribedSkus")

    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "2"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert recovered.status_code == 200 and graph.requests["throttled"] == before + 1


def test_injected_fault_hits_only_the_matching_path(client, graph):
    graph.fail_next("createOrGet", 503, count=1)
    assert client.get("/v1.0/subscribedSkus").status_code == 200
    assert create(client).status_code == 503
    assert create(client).status_code == 201


def join_lobby(origin: str, visit_url: str, name: str = "Test Patient") -> str:
    response = httpx.post(f"{visit_url}/join", json={"displayName": name})
    assert response.status_code == 200 and response.json()["state"] == "lobby"
    return response.json()["participantId"]


def test_patient_waits_in_the_lobby_until_the_provider_admits(client, graph, origin):
    meeting_id = create(client).json()["id"]
    visit = client.get(meeting_url(meeting_id) + "/getVirtualAppointmentJoinWebUrl").json()["value"]
    meet = f"{origin}/meet/{meeting_id}"

    patient = join_lobby(origin, visit)
    waiting = httpx.get(f"{visit}/status", params={"participant": patient}).json()
    joined = httpx.post(f"{meet}/join", params={"as": PROVIDER_OID}).json()
    view = httpx.get(f"{meet}/state", params={"as": PROVIDER_OID}).json()
    admitted = httpx.post(f"{meet}/admit/{patient}", json={"as": PROVIDER_OID})
    status = httpx.get(f"{visit}/status", params={"participant": patient}).json()

    assert waiting == {"state": "lobby"} and joined["state"] == "in_meeting"
    assert [p["participantId"] for p in view["lobby"]] == [patient] and view["you"]["canAdmit"] is True
    assert admitted.status_code == 200 and status == {"state": "admitted"}
    events = graph.meeting_events(meeting_id)
    assert [e.kind for e in events] == ["lobby_joined", "joined", "admitted"]
    assert events[0].anonymous and events[2].by == PROVIDER_OID


def test_everyone_scope_lets_guests_bypass_the_lobby(client, origin):
    meeting_id = create(client).json()["id"]
    client.patch(meeting_url(meeting_id), json={"lobbyBypassSettings": {"scope": "everyone"}})
    visit = client.get(meeting_url(meeting_id) + "/getVirtualAppointmentJoinWebUrl").json()["value"]
    assert httpx.post(f"{visit}/join", json={"displayName": "Guest"}).json()["state"] == "admitted"


def test_only_allowed_admitters_can_admit(client, origin):
    meeting_id = create(client).json()["id"]
    client.patch(meeting_url(meeting_id), json={"allowedLobbyAdmitters": "organizerAndCoOrganizers"})
    visit = client.get(meeting_url(meeting_id) + "/getVirtualAppointmentJoinWebUrl").json()["value"]
    meet = f"{origin}/meet/{meeting_id}"
    patient = join_lobby(origin, visit)

    before_joining = httpx.post(f"{meet}/admit/{patient}", params={"as": PROVIDER_OID})
    httpx.post(f"{meet}/join", params={"as": SECOND_PROVIDER_OID})
    colleague = httpx.post(f"{meet}/admit/{patient}", params={"as": SECOND_PROVIDER_OID})

    assert before_joining.status_code == 409
    assert colleague.status_code == 403
    assert httpx.get(f"{visit}/status", params={"participant": patient}).json() == {"state": "lobby"}


def test_patient_needs_a_name_to_join(client):
    meeting_id = create(client).json()["id"]
    visit = client.get(meeting_url(meeting_id) + "/getVirtualAppointmentJoinWebUrl").json()["value"]
    assert httpx.post(f"{visit}/join", json={"displayName": "  "}).status_code == 400


def test_attendance_report_appears_after_the_provider_leaves(world, client, graph, origin):
    clock = world["clock"]
    meeting_id = create(client).json()["id"]
    visit = client.get(meeting_url(meeting_id) + "/getVirtualAppointmentJoinWebUrl").json()["value"]
    meet, reports_url = f"{origin}/meet/{meeting_id}", meeting_url(meeting_id) + "/attendanceReports"
    patient = join_lobby(origin, visit)
    clock.advance(90)
    httpx.post(f"{meet}/join", params={"as": PROVIDER_OID})
    httpx.post(f"{meet}/admit/{patient}", params={"as": PROVIDER_OID})
    clock.advance(600)
    during = client.get(reports_url).json()["value"]

    httpx.post(f"{meet}/leave", params={"as": PROVIDER_OID})

    reports = client.get(reports_url).json()["value"]
    assert during == [] and len(reports) == 1 and "attendanceRecords" not in reports[0]
    report = client.get(f"{reports_url}/{reports[0]['id']}", params={"$expand": "attendanceRecords"}).json()
    records = {r["role"]: r for r in report["attendanceRecords"]}
    assert report["totalParticipantCount"] == 2 and set(records) == {"Presenter", "Attendee"}
    assert records["Attendee"]["totalAttendanceInSeconds"] == 600 and records["Attendee"]["emailAddress"] is None
    assert records["Presenter"]["identity"]["id"] == PROVIDER_OID
    assert httpx.get(f"{visit}/status", params={"participant": patient}).json() == {"state": "ended"}
    listed = client.get(f"{reports_url}/{reports[0]['id']}/attendanceRecords").json()["value"]
    assert len(listed) == 2
    assert [e.kind for e in graph.meeting_events(meeting_id)][-1] == "ended"


def test_end_meeting_closes_the_session_for_everyone(client, graph, origin):
    meeting_id = create(client).json()["id"]
    httpx.post(f"{origin}/meet/{meeting_id}/join")

    assert graph.end_meeting(meeting_id) is True
    assert graph.end_meeting(meeting_id) is False
    reports = client.get(meeting_url(meeting_id) + "/attendanceReports").json()["value"]
    assert len(reports) == 1


def test_subscribed_skus_per_tenant_and_steerable(world, client, graph):
    home = client.get("/v1.0/subscribedSkus").json()["value"]
    other_token = world["entra"].mint_app_token(OTHER_TENANT_ID)
    other = client.get("/v1.0/subscribedSkus", headers={"Authorization": f"Bearer {other_token}"}).json()["value"]
    selected = client.get("/v1.0/subscribedSkus", params={"$select": "skuPartNumber,capabilityStatus"}).json()

    assert "Microsoft_Cloud_for_Healthcare" in {s["skuPartNumber"] for s in home}
    assert "Microsoft_Cloud_for_Healthcare" not in {s["skuPartNumber"] for s in other}
    assert set(selected["value"][0]) == {"skuPartNumber", "capabilityStatus"}
    saved = graph.skus[ENTRA_TENANT_ID]
    graph.skus[ENTRA_TENANT_ID] = []
    try:
        assert client.get("/v1.0/subscribedSkus").json()["value"] == []
    finally:
        graph.skus[ENTRA_TENANT_ID] = saved


def test_token_from_msal_against_the_entra_standin_is_accepted(world, origin):
    app = msal.ConfidentialClientApplication(
        ENTRA_CLIENT_ID, client_credential=ENTRA_CLIENT_SECRET,
        authority=f"{world['entra_origin']}/{ENTRA_TENANT_ID}", instance_discovery=False)
    try:
        token = app.acquire_token_for_client([f"{origin}/.default"])["access_token"]
    finally:
        app.http_client.close()
    response = httpx.get(f"{origin}/v1.0/subscribedSkus", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json()["value"]


def hold_call(world, client, origin, poor: str | None = None) -> str:
    """Patient admitted, ten minutes together, provider leaves: the call record is written; returns the meeting id."""
    meeting_id = create(client).json()["id"]
    if poor:
        world["graph"].poor_network(meeting_id, poor)
    visit = client.get(meeting_url(meeting_id) + "/getVirtualAppointmentJoinWebUrl").json()["value"]
    meet = f"{origin}/meet/{meeting_id}"
    patient = join_lobby(origin, visit)
    httpx.post(f"{meet}/join", params={"as": PROVIDER_OID})
    httpx.post(f"{meet}/admit/{patient}", params={"as": PROVIDER_OID})
    world["clock"].advance(600)
    httpx.post(f"{meet}/leave", params={"as": PROVIDER_OID})
    return meeting_id


def every_page(client: httpx.Client, url: str, params: dict | None = None) -> list[dict]:
    items, pages = [], 0
    while url:
        page = client.get(url, params=params).json()
        items, url, params, pages = items + page["value"], page.get("@odata.nextLink"), None, pages + 1
    return items


def test_call_records_are_listed_by_start_time_and_paged_with_next_links(world, client, graph, origin):
    world["clock"].advance(1)  # after every call of the tests before
    since = datetime.fromtimestamp(world["clock"].now, UTC)
    ids = {hold_call(world, client, origin) for _ in range(3)}
    graph.call_records_page_size = 2
    try:
        window = {"$filter": f"startDateTime ge {since:%Y-%m-%dT%H:%M:%SZ}"}
        first = client.get("/v1.0/communications/callRecords", params=window).json()
        records = every_page(client, "/v1.0/communications/callRecords", window)
    finally:
        graph.call_records_page_size = 60
    assert len(first["value"]) == 2 and first["@odata.nextLink"].startswith(f"{origin}/v1.0/communications/")
    assert {r["joinWebUrl"] for r in records} == {f"{origin}/meet/{meeting_id}" for meeting_id in ids}
    assert all("sessions" not in r and r["type"] == "groupCall" for r in records)
    refused = client.get("/v1.0/communications/callRecords", params={"$filter": "joinWebUrl eq 'x'"})
    assert refused.status_code == 400


def test_a_call_record_expands_sessions_with_segments_paged_and_says_whose_network_was_poor(world, client, graph,
                                                                                            origin):
    world["clock"].advance(1)  # after every call of the tests before
    since = datetime.fromtimestamp(world["clock"].now, UTC)
    meeting_id = hold_call(world, client, origin, poor="patient")
    record_id = next(r["id"] for r in every_page(client, "/v1.0/communications/callRecords", {
        "$filter": f"startDateTime ge {since:%Y-%m-%dT%H:%M:%SZ}"}) if r["joinWebUrl"].endswith(meeting_id))
    graph.sessions_page_size = 1
    try:
        record = client.get(f"/v1.0/communications/callRecords/{record_id}",
                            params={"$expand": "sessions($expand=segments)"}).json()
        rest = every_page(client, record["sessions@odata.nextLink"])
    finally:
        graph.sessions_page_size = 60
    sessions = record["sessions"] + rest
    assert len(record["sessions"]) == 1 and len(sessions) == 2
    legs = {("user" in s["caller"]["identity"]): s["segments"][0]["media"] for s in sessions}
    audio = {staff: next(m for m in media if m["label"] == "main-audio")["streams"] for staff, media in legs.items()}
    assert {s["averagePacketLossRate"] for s in audio[False]} == {0.14}  # the patient's
    assert {s["averagePacketLossRate"] for s in audio[True]} == {0.002}
    assert legs[True][0]["callerNetwork"]["ipAddress"] and sessions[0]["caller"]["userAgent"]["headerValue"]


def test_call_records_need_call_records_read_all_and_stay_in_their_tenant(world, client, origin):
    meeting_id = hold_call(world, client, origin)
    record_id = next(r["id"] for r in every_page(client, "/v1.0/communications/callRecords")
                     if r["joinWebUrl"].endswith(meeting_id))
    without = world["entra"].mint_app_token(roles=["OnlineMeetings.ReadWrite.All"])
    other = world["entra"].mint_app_token(OTHER_TENANT_ID)
    denied = client.get("/v1.0/communications/callRecords", headers={"Authorization": f"Bearer {without}"})
    elsewhere = client.get(f"/v1.0/communications/callRecords/{record_id}",
                           headers={"Authorization": f"Bearer {other}"})
    assert denied.status_code == 403 and elsewhere.status_code == 404


def test_switch_refuses_the_virtual_appointment_link_to_app_tokens_only(world, client, graph):
    """As the current Learn page says: "Application: Not supported"; a signed-in user's token still gets it."""
    meeting = create(client).json()
    url = meeting_url(meeting["id"]) + "/getVirtualAppointmentJoinWebUrl"
    delegated = world["entra"].mint_user_token(ORGANIZER_UPN, ["VirtualAppointment.Read"])
    graph.refuse_app_only_join_link = True
    try:
        refused = client.get(url)
        as_user = client.get(url, headers={"Authorization": f"Bearer {delegated}"})
    finally:
        graph.refuse_app_only_join_link = False
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "Forbidden"
    assert as_user.status_code == 200 and "/visit/" in as_user.json()["value"]
    assert client.get(url).status_code == 200


def test_guest_continues_on_the_meeting_page_and_waits_in_the_lobby(client, graph, origin):
    meeting = create(client).json()
    meet = meeting["joinWebUrl"]
    page = httpx.get(meet)
    assert 'id="guest-name"' in page.text and "Continue on this browser" in page.text

    assert httpx.post(f"{meet}/guest", json={"displayName": ""}).status_code == 400
    guest = httpx.post(f"{meet}/guest", json={"displayName": "Patient"}).json()
    assert guest["state"] == "lobby"
    assert httpx.get(f"{meet}/guest/status", params={"participant": guest["participantId"]}).json() == {
        "state": "lobby"}
    lobby = httpx.get(f"{meet}/state").json()["lobby"]
    assert [p["displayName"] for p in lobby] == ["Patient"]
    httpx.post(f"{meet}/join")
    httpx.post(f"{meet}/admit/{guest['participantId']}")
    assert httpx.get(f"{meet}/guest/status", params={"participant": guest["participantId"]}).json() == {
        "state": "admitted"}


@pytest.mark.parametrize("role", ["LicenseAssignment.Read.All", "Organization.Read.All", "Directory.Read.All"])
def test_subscribed_skus_accepts_each_documented_application_permission(world, origin, role):
    token = world["entra"].mint_app_token(roles=[role])
    assert httpx.get(f"{origin}/v1.0/subscribedSkus", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize(("operation", "role"), [
    ("createOrGet", "OnlineMeetings.Read.All"),
    ("attendanceReports", "OnlineMeetings.ReadWrite.All"),
    ("subscribedSkus", "User.Read.All"),
])
def test_each_call_refuses_an_application_permission_its_page_does_not_list(world, client, origin, operation, role):
    token = {"Authorization": f"Bearer {world['entra'].mint_app_token(roles=[role])}"}
    meeting = create(client).json()
    if operation == "createOrGet":
        response = create(httpx.Client(base_url=origin, headers=token))
    elif operation == "attendanceReports":
        response = httpx.get(origin + meeting_url(meeting["id"]) + "/attendanceReports", headers=token)
    else:
        response = httpx.get(f"{origin}/v1.0/subscribedSkus", headers=token)
    assert response.status_code == 403
