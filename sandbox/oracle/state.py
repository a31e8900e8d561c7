"""State of the Oracle Health stand-in: clients, launches, codes, tokens, FHIR data, clock and faults."""

from __future__ import annotations

import copy
import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.config import (
    CERNER_PROD_TENANT,
    CERNER_TEST_TENANT,
    SMART_CLIENT_ID,
    SMART_SYSTEM_CLIENT_ID,
    SMART_SYSTEM_SECRET,
    world,
)
from sandbox.oracle import resources
from sandbox.oracle.seed import ID_BASES, Seeded, seed, seed_tenant
from sandbox.oracle.switches import ENDPOINTS, Forgery, Received, TenantSwitches, new_signing_key

LAUNCH_LIFETIME = timedelta(minutes=5)
CODE_LIFETIME = timedelta(seconds=60)
USER_TOKEN_SECONDS = 570
SYSTEM_TOKEN_SECONDS = 300


def utc_now() -> datetime:
    """Real time, in UTC."""
    return datetime.now(UTC)


@dataclass
class Client:
    """A registered OAuth client: public (no secret, no keys), Basic-secret or JWKS (private_key_jwt)."""

    client_id: str
    redirect_uris: list[str] = field(default_factory=list)
    secret: str | None = None
    jwks: dict[str, Any] | None = None


@dataclass
class Launch:
    """EHR launch context made when PowerChart renders a "Teams" link."""

    launch_id: str
    tenant: str
    practitioner_id: str
    patient_id: str | None
    encounter_id: str | None
    appointment_id: str | None
    expires_at: datetime
    used: bool = False


@dataclass
class AuthCode:
    """An authorization code and everything the token request is checked against."""

    code: str
    client_id: str
    tenant: str
    redirect_uri: str | None
    scopes: list[str]
    launch: Launch
    code_challenge: str | None
    nonce: str | None
    expires_at: datetime
    used: bool = False
    access_token: str | None = None


@dataclass
class AccessToken:
    """An opaque bearer token for one tenant."""

    token: str
    tenant: str
    client_id: str
    scopes: list[str]
    expires_at: datetime
    practitioner_id: str | None = None
    revoked: bool = False


@dataclass
class Gate:
    """The next `parties` requests whose path contains `path_substring` wait for each other, then go on together."""

    path_substring: str
    barrier: threading.Barrier
    remaining: int


@dataclass
class Fault:
    """A planned failure or delay for requests whose path (with query) contains `path_substring`."""

    path_substring: str
    remaining: int
    status: int = 500
    seconds: float = 0.0


@dataclass
class TenantData:
    """FHIR resources of one Millennium tenant."""

    resources: dict[str, dict[str, dict[str, Any]]]
    encounters: dict[str, str]
    usernames: dict[str, str]
    next_id: int


class OracleState:
    """Everything the Oracle Health stand-in knows; tests read and steer it directly."""

    def __init__(
        self,
        redirect_uris: list[str] | None = None,
        launch_url: str | None = None,
        *,
        public_url: str | None = None,
        clock: Callable[[], datetime] | None = None,
        tenants: tuple[str, ...] = (CERNER_TEST_TENANT, CERNER_PROD_TENANT),
        seed_data: bool = True,
    ) -> None:
        host = world().host_url
        self.lock = threading.RLock()
        self.clock: Callable[[], datetime] = clock or utc_now
        self.public_url = public_url.rstrip("/") if public_url else None
        self.launch_url = launch_url or f"{host}/api/launch/provider"
        self.tenants = tenants
        self.pkce_advertised = True
        self.pkce_required = True
        self.deny_next_authorization = False
        self.request_counts: Counter[str] = Counter()
        self.generation = 0  # bumped by every change to a resource: cached search matches are then stale
        self._matches: dict[tuple[str, str, str], tuple[int, list[dict[str, Any]]]] = {}
        self.in_flight: Counter[str] = Counter()  # requests being answered now, per tenant
        self.peak_in_flight: Counter[str] = Counter()  # the most at once, per tenant, since reset_peaks()
        self.requests_by_host: Counter[str] = Counter()
        self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = secrets.token_hex(8)
        self.clients: dict[str, Client] = {}
        self.launches: dict[str, Launch] = {}
        self.codes: dict[str, AuthCode] = {}
        self.tokens: dict[str, AccessToken] = {}
        self.seen_jti: dict[tuple[str, str], datetime] = {}
        self.faults: list[Fault] = []
        self.delays: list[Fault] = []
        self.gates: list[Gate] = []
        self.switches: dict[str, TenantSwitches] = {}
        self.received: list[Received] = []
        self.data = {tenant: TenantData({}, {}, {}, 4822400 + ID_BASES.get(tenant, 0)) for tenant in tenants}
        self.seeded: dict[str, Seeded] = {}
        self.register_client(SMART_CLIENT_ID, redirect_uris or [f"{host}/api/launch/callback"])
        self.register_system_client(SMART_SYSTEM_CLIENT_ID, secret=SMART_SYSTEM_SECRET)
        if seed_data:
            seed(self, self.now())

    # ---- clock, keys, clients -------------------------------------------------------------------------

    def now(self) -> datetime:
        """The world's current time (UTC), from the injectable clock."""
        return self.clock()

    def jwks(self, tenant: str | None = None) -> dict[str, Any]:
        """Public JWKS of the id_token signing key (of a tenant with its own key ring, when named)."""
        with self.lock:
            if tenant in self.switches:
                return self.switches[tenant].jwks()
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.signing_key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.key_id, "use": "sig", "alg": "RS256"}]}

    def sign(self, claims: dict[str, Any], tenant: str | None = None) -> str:
        """An RS256 JWT signed with the server's key (a switched tenant's key, or its pending forgery)."""
        with self.lock:
            if tenant in self.switches:
                return self.switches[tenant].sign(claims)
        return jwt.encode(claims, self.signing_key, algorithm="RS256", headers={"kid": self.key_id, "typ": "JWT"})

    # ---- misbehaving tenants and received credentials (security tests) --------------------------------

    def add_tenant(self, tenant: str | None = None) -> str:
        """A new seeded tenant with its own key ring (JWKS at /tenants/{tenant}/jwk), ready to be switched."""
        tenant = tenant or str(uuid.uuid4())
        with self.lock:
            self.tenants = (*self.tenants, tenant)
            self.data[tenant] = TenantData({}, {}, {}, 4822400)
            self.switches[tenant] = TenantSwitches(keys=[new_signing_key()])
            self.seeded[tenant] = seed_tenant(self, tenant, self.now())
        return tenant

    def advertise_elsewhere(self, tenant: str, endpoint: str, other_origin: str) -> None:
        """Publish a tenant's authorize/token/jwks endpoint, or its search `next` links, on another origin."""
        assert endpoint in ENDPOINTS, endpoint
        with self.lock:
            self.switches[tenant].elsewhere[endpoint] = other_origin.rstrip("/")

    def elsewhere(self, tenant: str, endpoint: str) -> str | None:
        """The other origin a tenant advertises for an endpoint, if switched."""
        with self.lock:
            switches = self.switches.get(tenant)
            return switches.elsewhere.get(endpoint) if switches else None

    def rotate_keys(self, tenant: str, keep_previous: bool = True) -> str:
        """Sign a tenant's id_tokens with a new key; its JWKS lists the new key (and the previous ones if kept)."""
        with self.lock:
            switches = self.switches[tenant]
            switches.keys.insert(0, new_signing_key())
            switches.published = switches.published + 1 if keep_previous else 1
            return switches.keys[0][0]

    def forge_next_id_token(self, tenant: str, **forgery: Any) -> None:
        """Make the tenant's next id_token wrong as described (see Forgery)."""
        with self.lock:
            self.switches[tenant].forgery = Forgery(**forgery)

    def record(self, host: str, path: str, *kinds: str) -> None:
        """Remember which credentials reached which host name."""
        with self.lock:
            self.received.extend(Received(host, path, kind) for kind in kinds)

    def received_by(self, host: str) -> list[Received]:
        """Every credential (and authorize visit, JWKS fetch) that reached the stand-in under this host name."""
        with self.lock:
            return [item for item in self.received if item.host == host]

    def register_client(self, client_id: str, redirect_uris: list[str], secret: str | None = None) -> None:
        """Register (or replace) a user-facing SMART app; public unless a secret is given."""
        with self.lock:
            self.clients[client_id] = Client(client_id, list(redirect_uris), secret=secret)

    def register_system_client(
        self, client_id: str, jwks: dict[str, Any] | None = None, secret: str | None = None
    ) -> None:
        """Register a system account: Basic secret and/or a public JWKS for private_key_jwt."""
        with self.lock:
            self.clients[client_id] = Client(client_id, [], secret=secret, jwks=jwks)

    def client(self, client_id: str) -> Client | None:
        """A registered client, or None."""
        with self.lock:
            return self.clients.get(client_id)

    # ---- launches, codes, tokens ----------------------------------------------------------------------

    def create_launch(
        self,
        appointment_id: str | None = None,
        *,
        tenant: str = CERNER_TEST_TENANT,
        practitioner_id: str | None = None,
        patient_id: str | None = None,
    ) -> str:
        """Make a single-use 5-minute launch id for an appointment (or a bare practitioner/patient context)."""
        with self.lock:
            data = self.data[tenant]
            encounter_id = None
            if appointment_id is not None:
                resource = data.resources["Appointment"][appointment_id]
                patient_id = patient_id or next(iter(resources.actor_ids(resource, "Patient")), None)
                practitioner_id = practitioner_id or resources.actor_ids(resource, "Practitioner")[0]
                encounter_id = data.encounters.get(appointment_id)
            practitioner_id = practitioner_id or next(iter(data.resources["Practitioner"]))
            launch = Launch(secrets.token_urlsafe(24), tenant, practitioner_id, patient_id, encounter_id,
                            appointment_id, self.now() + LAUNCH_LIFETIME)
            now = self.now()
            self.launches = {key: old for key, old in self.launches.items() if old.expires_at > now}
            self.launches[launch.launch_id] = launch
            return launch.launch_id

    def take_launch(self, launch_id: str, tenant: str) -> Launch | None:
        """Use a launch once: None when unknown, for another tenant, expired or used already."""
        with self.lock:
            launch = self.launches.get(launch_id)
            if launch is None or launch.tenant != tenant or launch.used or launch.expires_at <= self.now():
                return None
            launch.used = True
            return launch

    def new_code(self, **fields: Any) -> str:
        """Store an authorization code valid for 60 s."""
        with self.lock:
            code = AuthCode(code=secrets.token_urlsafe(32), expires_at=self.now() + CODE_LIFETIME, **fields)
            self.codes[code.code] = code
            return code.code

    def take_code(self, code: str) -> tuple[AuthCode | None, bool]:
        """Look a code up and mark it used; return it and whether it had been used before."""
        with self.lock:
            record = self.codes.get(code)
            if record is None:
                return None, False
            was_used, record.used = record.used, True
            if was_used and record.access_token in self.tokens:
                # A replayed code revokes what it issued (RFC 6749 §4.1.2).
                self.tokens[record.access_token].revoked = True
            return record, was_used

    def issue_token(
        self,
        tenant: str,
        scopes: list[str],
        client_id: str = SMART_SYSTEM_CLIENT_ID,
        *,
        seconds: int = SYSTEM_TOKEN_SECONDS,
        practitioner_id: str | None = None,
    ) -> AccessToken:
        """Mint an opaque access token (tests may call this to skip the OAuth dance)."""
        with self.lock:
            token = AccessToken(secrets.token_urlsafe(32), tenant, client_id, list(scopes),
                                self.now() + timedelta(seconds=seconds), practitioner_id)
            self.tokens[token.token] = token
            return token

    def valid_token(self, token: str, tenant: str) -> AccessToken | None:
        """The token when it is live and belongs to this tenant, else None."""
        with self.lock:
            record = self.tokens.get(token)
            if record is None or record.revoked or record.tenant != tenant or record.expires_at <= self.now():
                return None
            return record

    def remember_jti(self, client_id: str, jti: str, expires_at: datetime) -> bool:
        """Record a client assertion id; False when it was seen before (a replay)."""
        with self.lock:
            now = self.now()
            self.seen_jti = {key: exp for key, exp in self.seen_jti.items() if exp > now - LAUNCH_LIFETIME}
            if (client_id, jti) in self.seen_jti:
                return False
            self.seen_jti[(client_id, jti)] = expires_at
            return True

    # ---- FHIR data ------------------------------------------------------------------------------------

    def _next_id(self, tenant: str) -> str:
        data = self.data[tenant]
        data.next_id += 1
        return str(data.next_id)

    def add_practitioner(self, given: str, family: str, npi: str, username: str, *,
                         practitioner_id: str | None = None, tenant: str = CERNER_TEST_TENANT) -> str:
        """Add a Practitioner; `username` becomes the id_token `sub`."""
        with self.lock:
            practitioner_id = practitioner_id or self._next_id(tenant)
            self._put(tenant, resources.practitioner(practitioner_id, given, family, npi, self.now()))
            self.data[tenant].usernames[practitioner_id] = username
            return practitioner_id

    def add_location(self, name: str, *, location_id: str | None = None, tenant: str = CERNER_TEST_TENANT) -> str:
        """Add a Location (a department the reminder job polls)."""
        with self.lock:
            location_id = location_id or self._next_id(tenant)
            self._put(tenant, resources.location(location_id, name, self.now()))
            return location_id

    def add_patient(self, spec: resources.PatientSpec, *, patient_id: str | None = None,
                    tenant: str = CERNER_TEST_TENANT) -> str:
        """Add a fake Patient described by a PatientSpec."""
        with self.lock:
            patient_id = patient_id or self._next_id(tenant)
            self._put(tenant, resources.patient(tenant, patient_id, spec, self.now()))
            return patient_id

    def add_appointment(self, *, patient_id: str, practitioner_id: str, location_id: str, start: datetime,
                        end: datetime, status: str = "booked", tenant: str = CERNER_TEST_TENANT,
                        appointment_id: str | None = None) -> str:
        """Book a Video Visit between existing patient, practitioner and location; returns its id."""
        with self.lock:
            found = self.data[tenant].resources
            people = resources.participants(tenant, found["Patient"][patient_id],
                                            found["Practitioner"][practitioner_id], found["Location"][location_id])
            appointment_id = appointment_id or self._next_id(tenant)
            resource = resources.appointment(tenant, appointment_id, people, start, end, status, self.now())
            if status == "cancelled":
                resource["cancelationReason"] = resources.cancellation_reason(tenant)
            self._put(tenant, resource)
            self.data[tenant].encounters[appointment_id] = str(97953001 + len(self.data[tenant].encounters))
            return appointment_id

    def reschedule(self, appointment_id: str, start: datetime, end: datetime, *,
                   tenant: str = CERNER_TEST_TENANT) -> None:
        """Move an appointment; bumps meta.versionId."""
        with self.lock:
            resource = self.data[tenant].resources["Appointment"][appointment_id]
            resources.set_period(resource, start, end)
            self._bump(resource)

    def set_status(self, appointment_id: str, status: str, *, tenant: str = CERNER_TEST_TENANT) -> None:
        """Change an appointment's status (booked, arrived, checked-in, fulfilled, noshow, cancelled)."""
        with self.lock:
            resource = self.data[tenant].resources["Appointment"][appointment_id]
            resource["status"] = status
            if status == "cancelled":
                resource["cancelationReason"] = resources.cancellation_reason(tenant)
            resources.set_period(resource, resources.parse_instant(resource["start"]),
                                 resources.parse_instant(resource["end"]))
            self._bump(resource)

    def cancel(self, appointment_id: str, *, tenant: str = CERNER_TEST_TENANT) -> None:
        """Cancel an appointment; bumps meta.versionId."""
        self.set_status(appointment_id, "cancelled", tenant=tenant)

    def resource(self, resource_type: str, resource_id: str, tenant: str = CERNER_TEST_TENANT) -> dict | None:
        """A copy of one stored resource, or None."""
        with self.lock:
            found = self.data[tenant].resources.get(resource_type, {}).get(resource_id)
            return copy.deepcopy(found)

    def all_resources(self, resource_type: str, tenant: str = CERNER_TEST_TENANT) -> list[dict[str, Any]]:
        """Copies of every stored resource of a type."""
        with self.lock:
            return copy.deepcopy(list(self.data[tenant].resources.get(resource_type, {}).values()))

    def page_of(self, resource_type: str, tenant: str, select: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
                start: int, count: int, search: str = "") -> tuple[list[dict[str, Any]], int]:
        """Copies of one page of the resources `select` picks (in its order), and how many it picked in all.

        Only the page is copied, and the pages of one search (`search` names it) reuse its matches until any resource
        changes: a search over thousands of appointments costs one filter, not one per page.
        """
        with self.lock:
            key = (resource_type, tenant, search)
            cached = self._matches.get(key) if search else None
            if cached is None or cached[0] != self.generation:
                cached = (self.generation, select(list(self.data[tenant].resources.get(resource_type, {}).values())))
                if search:
                    if len(self._matches) >= 512:
                        self._matches.pop(next(iter(self._matches)))
                    self._matches[key] = cached
            found = cached[1]
            return copy.deepcopy(found[start:start + count]), len(found)

    def username(self, practitioner_id: str, tenant: str) -> str:
        """The sign-in name of a practitioner (id_token `sub`)."""
        with self.lock:
            return self.data[tenant].usernames.get(practitioner_id, f"user{practitioner_id}")

    def _put(self, tenant: str, resource: dict[str, Any]) -> None:
        self.data[tenant].resources.setdefault(resource["resourceType"], {})[resource["id"]] = resource
        self.generation += 1

    def _bump(self, resource: dict[str, Any]) -> None:
        self.generation += 1
        resource["meta"] = resources.meta(int(resource["meta"]["versionId"]) + 1, self.now())

    # ---- faults and counters --------------------------------------------------------------------------

    def fail_next(self, path_substring: str, status: int = 500, count: int = 1) -> None:
        """Answer the next `count` requests whose path+query contains the substring with `status`."""
        with self.lock:
            self.faults.append(Fault(path_substring, count, status=status))

    def delay_next(self, path_substring: str, seconds: float, count: int = 1) -> None:
        """Hold the next `count` matching requests for `seconds` before answering."""
        with self.lock:
            self.delays.append(Fault(path_substring, count, seconds=seconds))

    def faults_pending(self) -> int:
        """How many injected failures and delays no request has met yet."""
        with self.lock:
            return sum(fault.remaining for fault in (*self.faults, *self.delays))

    def hold_together(self, path_substring: str, parties: int) -> None:
        """Hold the next `parties` matching requests until all of them have arrived (races made to happen)."""
        with self.lock:
            self.gates.append(Gate(path_substring, threading.Barrier(parties), parties))

    def take_gate(self, target: str) -> Gate | None:
        """The gate a request matching it must pass, if any (each gate lets `parties` requests through)."""
        with self.lock:
            for gate in self.gates:
                if gate.remaining > 0 and gate.path_substring in target:
                    gate.remaining -= 1
                    return gate
            return None

    def take_fault(self, target: str, planned: list[Fault]) -> Fault | None:
        """Consume one planned fault matching the target, if any."""
        with self.lock:
            for fault in planned:
                if fault.remaining > 0 and fault.path_substring in target:
                    fault.remaining -= 1
                    return fault
            return None

    def request_started(self, tenant: str) -> None:
        """A request for the tenant came in (held requests count: the client is waiting on them)."""
        with self.lock:
            self.in_flight[tenant] += 1
            self.peak_in_flight[tenant] = max(self.peak_in_flight[tenant], self.in_flight[tenant])

    def request_ended(self, tenant: str) -> None:
        with self.lock:
            self.in_flight[tenant] -= 1

    def reset_peaks(self) -> None:
        """Start counting the most concurrent requests per tenant afresh."""
        with self.lock:
            self.peak_in_flight = Counter(self.in_flight)

    def count_request(self, label: str, host: str = "") -> None:
        """Count one request for a route label like "GET /r4/{tenant}/Appointment", and for the host name used."""
        with self.lock:
            self.request_counts[label] += 1
            self.requests_by_host[host] += 1
