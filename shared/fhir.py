"""Oracle Health FHIR R4 reads → small pydantic models (Appointment, Patient); nothing here is ever stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel

from shared.ehr_hosts import require_trusted
from shared.errors import DependencyFailed, NotFound, NotSignedIn
from shared.http import client, dependency

FHIR_JSON = "application/fhir+json"


class Appointment(BaseModel):
    """What the connector needs of an Appointment."""

    id: str
    status: str
    start: datetime | None = None
    end: datetime | None = None
    service_type: str = ""
    patient_id: str = ""
    patient_display: str = ""
    practitioner_ids: list[str] = []
    location_ids: list[str] = []
    version: str = ""

    @property
    def cancelled(self) -> bool:
        return self.status in ("cancelled", "noshow", "entered-in-error")


class Patient(BaseModel):
    """What the connector needs of a Patient, read just in time."""

    id: str
    display_name: str = ""
    mobile: str = ""
    email: str = ""
    language: str = ""


def _reference_id(reference: str, resource_type: str) -> str | None:
    prefix = f"{resource_type}/"
    tail = reference.split("/_history/")[0]
    index = tail.rfind(prefix)
    return tail[index + len(prefix):] if index >= 0 else None


def appointment_from_fhir(resource: dict[str, Any]) -> Appointment:
    """Map a FHIR R4 Appointment to the model, by participant actor types."""
    appointment = Appointment(
        id=str(resource.get("id", "")),
        status=str(resource.get("status", "")),
        start=resource.get("start"),
        end=resource.get("end"),
        version=str(resource.get("meta", {}).get("versionId", "")),
    )
    service_types = resource.get("serviceType") or []
    if service_types:
        first = service_types[0]
        appointment.service_type = first.get("text") or next(
            (c.get("display", "") for c in first.get("coding", [])), "")
    for participant in resource.get("participant", []):
        actor = participant.get("actor") or {}
        reference = str(actor.get("reference", ""))
        if (patient := _reference_id(reference, "Patient")) is not None:
            appointment.patient_id, appointment.patient_display = patient, actor.get("display", "")
        elif (practitioner := _reference_id(reference, "Practitioner")) is not None:
            appointment.practitioner_ids.append(practitioner)
        elif (location := _reference_id(reference, "Location")) is not None:
            appointment.location_ids.append(location)
    return appointment


def _preferred_language(resource: dict[str, Any]) -> str:
    communications = resource.get("communication") or []
    ordered = sorted(communications, key=lambda c: not c.get("preferred", False))
    for communication in ordered:
        for coding in communication.get("language", {}).get("coding", []):
            if coding.get("system") == "urn:ietf:bcp:47" and coding.get("code"):
                return coding["code"]
    return ""


def _mobile(resource: dict[str, Any]) -> str:
    phones = [t for t in resource.get("telecom") or [] if t.get("system") in ("phone", "sms") and t.get("value")]
    phones = [t for t in phones if not (t.get("period") or {}).get("end")]
    # Cerner sends rank as a string; mobile first, then the best-ranked phone with an sms system.
    def order(telecom: dict[str, Any]) -> tuple[int, int]:
        rank = str(telecom.get("rank", "99"))
        return (0 if telecom.get("use") == "mobile" or telecom.get("system") == "sms" else 1,
                int(rank) if rank.isdigit() else 99)

    mobiles = [t for t in sorted(phones, key=order) if t.get("use") == "mobile" or t.get("system") == "sms"]
    return mobiles[0]["value"] if mobiles else ""


def _email(resource: dict[str, Any]) -> str:
    """The patient's current email address: home before work, then Cerner's rank."""
    emails = [t for t in resource.get("telecom") or [] if t.get("system") == "email" and t.get("value")]
    emails = [t for t in emails if not (t.get("period") or {}).get("end") and t.get("use") != "old"]

    def order(telecom: dict[str, Any]) -> tuple[int, int]:
        rank = str(telecom.get("rank", "99"))
        return (0 if telecom.get("use") in (None, "home") else 1, int(rank) if rank.isdigit() else 99)

    return sorted(emails, key=order)[0]["value"].strip() if emails else ""


def patient_from_fhir(resource: dict[str, Any]) -> Patient:
    names = resource.get("name") or []
    official = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    display = official.get("text") or " ".join([*official.get("given", []), official.get("family", "")]).strip()
    return Patient(id=str(resource.get("id", "")), display_name=display, mobile=_mobile(resource),
                   email=_email(resource), language=_preferred_language(resource))


class FhirClient:
    """Reads from one FHIR base URL with one bearer token (a launching user's or the system account's)."""

    def __init__(self, base_url: str, access_token: str):
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {access_token}", "Accept": FHIR_JSON}

    def _get(self, url: str, params: dict[str, str] | None = None, what: str = "FHIR base URL") -> dict[str, Any]:
        # The bearer token goes only to a trusted EHR host, whatever a stored URL or a Bundle says.
        require_trusted(url, what)
        with dependency("fhir"):
            response = client("fhir").get(url, params=params, headers=self.headers)
        return self._json(response)

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        if response.status_code == 401:
            raise NotSignedIn("Your Cerner session has ended.",
                              next_step="Close this window and click Teams again in PowerChart.")
        if response.status_code == 404:
            raise NotFound("Cerner has no such record.",
                           next_step="Check the appointment in PowerChart and launch again.")
        if response.status_code != 200:
            raise DependencyFailed(f"Cerner answered HTTP {response.status_code}.",
                                   next_step="Try again in a minute. If it keeps happening, tell IT.")
        try:
            return response.json()
        except ValueError as exc:
            raise DependencyFailed("Cerner's answer was not understood.") from exc

    def appointment(self, appointment_id: str) -> Appointment:
        return appointment_from_fhir(self._get(f"{self.base_url}/Appointment/{appointment_id}"))

    def patient(self, patient_id: str) -> Patient:
        return patient_from_fhir(self._get(f"{self.base_url}/Patient/{patient_id}"))

    def patients(self, patient_ids: list[str]) -> dict[str, Patient]:
        """Several patients in one search (`_id` with a comma list), as Cerner allows."""
        found: dict[str, Patient] = {}
        for resource in self._search("Patient", {"_id": ",".join(patient_ids)}):
            patient = patient_from_fhir(resource)
            found[patient.id] = patient
        return found

    def appointments(self, params: dict[str, str | list[str]]) -> Iterator[Appointment]:
        """Appointment search, following `next` links (never building page URLs ourselves)."""
        for resource in self._search("Appointment", params):
            yield appointment_from_fhir(resource)

    def _search(self, resource_type: str, params: dict) -> Iterator[dict[str, Any]]:
        url: str | None = f"{self.base_url}/{resource_type}"
        query: dict | None = params
        what = "FHIR base URL"
        while url:
            bundle = self._get(url, query, what)
            for entry in bundle.get("entry", []):
                resource = entry.get("resource") or {}
                if resource.get("resourceType") == resource_type:
                    yield resource
            url = next((str(link.get("url", "")) for link in bundle.get("link", []) if link.get("relation") == "next"),
                       None)
            query, what = None, "paging (next) link"
