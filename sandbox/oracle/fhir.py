"""Cerner Millennium FHIR R4 endpoints: metadata, reads and searches behind Bearer tokens."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from sandbox.oracle.http import auth_base, fhir_base, fhir_response, operation_outcome, origin
from sandbox.oracle.oauth import oracle, unknown_tenant
from sandbox.oracle.search import (
    SearchError,
    appointment_query,
    comma_list,
    decode_page,
    encode_page,
    find_appointments,
    single,
)
from sandbox.oracle.state import OracleState

READABLE_TYPES = ("Appointment", "Patient", "Practitioner", "Location")
SMART_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def capability_statement(state: OracleState, request: Request, tenant: str) -> dict[str, Any]:
    """A small CapabilityStatement in the shape of Cerner's R4 metadata."""
    base, oauth = fhir_base(state, request, tenant), auth_base(state, request, tenant)
    resources = [{"type": kind, "interaction": [{"code": "read"}, {"code": "search-type"}]} for kind in READABLE_TYPES]
    return {
        "resourceType": "CapabilityStatement",
        "url": f"{base}/metadata",
        "name": "CernerCapabilityStatement",
        "title": "Cerner Capability Statement",
        "status": "active",
        "publisher": "Cerner",
        "date": "2024-01-01",
        "description": "Cerner implementation of FHIR on top of Millennium",
        "kind": "instance",
        "implementation": {"description": "Cerner implementation of FHIR on top of Millennium", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "documentation": "Cerner implementation of FHIR on top of Millennium",
            "security": {
                "extension": [{"url": SMART_OAUTH_URIS, "extension": [
                    {"url": "token", "valueUri": f"{oauth}/token"},
                    {"url": "authorize", "valueUri": f"{oauth}/personas/provider/authorize"},
                    {"url": "revoke", "valueUri": f"{oauth}/token/revoke"},
                ]}],
                "cors": True,
                "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                         "code": "SMART-on-FHIR"}], "text": "OAuth2 using SMART-on-FHIR profile"}],
            },
            "resource": resources,
        }],
    }


async def metadata_r4(request: Request) -> Response:
    """GET /r4/{tenant}/metadata (no token needed)."""
    state, tenant = oracle(request), request.path_params["tenant"]
    if tenant not in state.tenants:
        return unknown_tenant(tenant)
    return fhir_response(capability_statement(state, request, tenant))


async def metadata_dstu2(request: Request) -> Response:
    """GET /dstu2/{tenant}/metadata: the older Conformance, FHIR 1.0.2."""
    state, tenant = oracle(request), request.path_params["tenant"]
    if tenant not in state.tenants:
        return unknown_tenant(tenant)
    base = f"{origin(state, request)}/dstu2/{tenant}"
    return fhir_response({
        "resourceType": "Conformance", "name": "Cerner Conformance Statement", "status": "active",
        "publisher": "Cerner", "date": "2024-01-01", "kind": "instance", "fhirVersion": "1.0.2",
        "acceptUnknown": "no", "format": ["json"], "implementation": {"description": "Cerner DSTU2", "url": base},
        "rest": [{"mode": "server", "resource": [{"type": kind, "interaction": [{"code": "read"}]}
                                                 for kind in READABLE_TYPES]}],
    })


def bearer_challenge(request: Request, error: str | None = None) -> dict[str, str]:
    """WWW-Authenticate for a refused FHIR request."""
    value = f'Bearer realm="{request.url.hostname}"'
    return {"WWW-Authenticate": f'{value}, error="{error}"' if error else value}


def guard(request: Request, resource_type: str) -> Response | None:
    """Refusal for an unknown tenant, a non-JSON Accept, a missing/dead token or a missing scope; else None."""
    state, tenant = oracle(request), request.path_params["tenant"]
    if tenant not in state.tenants:
        return unknown_tenant(tenant)
    accept = request.headers.get("accept", "*/*")
    if "json" not in accept and "*/*" not in accept:
        return operation_outcome(406, "not-supported", "only JSON is supported")
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if presented:
        state.record(request.url.hostname or "", request.url.path, "bearer")
    if scheme.lower() != "bearer" or not presented:
        return operation_outcome(401, "login", "an access token is required", bearer_challenge(request))
    access = state.valid_token(presented.strip(), tenant)
    if access is None:
        return operation_outcome(401, "login", "the access token is invalid, expired or for another tenant",
                                 bearer_challenge(request, "invalid_token"))
    if not any(f"{who}/{resource_type}.read" in access.scopes for who in ("user", "patient", "system")):
        return operation_outcome(403, "forbidden", f"the token has no {resource_type} read scope",
                                 bearer_challenge(request, "insufficient_scope"))
    return None


async def read(request: Request) -> Response:
    """GET /r4/{tenant}/{type}/{id} with ETag W/"<version>"."""
    resource_type, resource_id = request.path_params["type"], request.path_params["id"]
    if resource_type not in READABLE_TYPES:
        return operation_outcome(404, "not-supported", f"{resource_type} is not supported here")
    refused = guard(request, resource_type)
    if refused is not None:
        return refused
    found = oracle(request).resource(resource_type, resource_id, request.path_params["tenant"])
    if found is None:
        return operation_outcome(404, "not-found", f"{resource_type} not found")
    return fhir_response(found, headers={"ETag": f'W/"{found["meta"]["versionId"]}"'})


async def search(request: Request) -> Response:
    """GET /r4/{tenant}/{type}?...: Appointment by Cerner's rules; the others by _id only."""
    resource_type = request.path_params["type"]
    if resource_type not in READABLE_TYPES:
        return operation_outcome(404, "not-supported", f"{resource_type} is not supported here")
    refused = guard(request, resource_type)
    if refused is not None:
        return refused
    try:
        if resource_type == "Appointment":
            return search_appointments(request)
        return search_by_id(request, resource_type)
    except SearchError as bad:
        return operation_outcome(400, "invalid", str(bad))


def search_by_id(request: Request, resource_type: str) -> Response:
    """Patient?_id=a,b (and the like): a batch read."""
    params = list(request.query_params.multi_items())
    ids = comma_list(single(params, "_id") or "")
    if not ids:
        raise SearchError("no supported search parameters provided: '_id' must be set")
    state, tenant = oracle(request), request.path_params["tenant"]
    found = [r for r in (state.resource(resource_type, i, tenant) for i in dict.fromkeys(ids)) if r is not None]
    return fhir_response(bundle(request, resource_type, found, None))


def search_appointments(request: Request) -> Response:
    """Appointment search with opaque pageContext paging."""
    params = [(k, v) for k, v in request.query_params.multi_items()]
    offset = 0
    context = single(params, "pageContext")
    if context is not None:
        params, offset = decode_page(context)
    query = appointment_query(params)
    state, tenant = oracle(request), request.path_params["tenant"]
    size = 10**9 if query.actor == "_id" else query.count
    page, total = state.page_of("Appointment", tenant, lambda every: find_appointments(every, query), offset, size,
                                search=json.dumps(sorted(params)))
    next_url = None
    if offset + size < total:
        base = fhir_base(state, request, tenant)
        moved = state.elsewhere(tenant, "next")
        if moved:
            base = base.replace(origin(state, request), moved, 1)
        next_url = f"{base}/Appointment?" + urlencode(
            {"pageContext": encode_page(params, offset + size), "direction": "NEXT"})
    return fhir_response(bundle(request, "Appointment", page, next_url))


def bundle(request: Request, resource_type: str, found: list[dict[str, Any]], next_url: str | None) -> dict:
    """A searchset Bundle with self and (when there is more) next links."""
    base = fhir_base(oracle(request), request, request.path_params["tenant"])
    query = request.url.query
    links = [{"relation": "self", "url": f"{base}/{resource_type}" + (f"?{query}" if query else "")}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "link": links,
        "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in found],
    }
