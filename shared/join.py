"""Patient join from the SMS link: open the sealed token, check the visit window, go to the lobby."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from shared import telemetry
from shared.errors import ConnectorError, NotFound
from shared.fhir import Appointment, FhirClient
from shared.microsoft.graph import GraphClient
from shared.microsoft.meetings import JoinLinkMemory, patient_join_url
from shared.pages import render
from shared.settings import get_settings
from shared.smart.backend_services import system_token
from shared.sms.texts import pick_language
from shared.storage.accounts import default_accounts
from shared.storage.config import ConfigRepository, FhirEndpoint
from shared.storage.usage import UsageRepository
from shared.tokens import TokenInvalid, sealer

PAGES = {
    "en": {
        "invalid": ("This link isn't valid", "Check that you opened the whole link from your text message. "
                    "If it still doesn't work, call your clinic."),
        "expired": ("This link has expired", "Your appointment has ended. If you need another appointment, "
                    "call your clinic."),
        "cancelled": ("This appointment was cancelled", "Call your clinic to book a new appointment."),
        "early": ("It's a little early", "Your appointment is on {start}. Come back at {opens} to join the "
                  "waiting room."),
        "unavailable": ("We can't open your visit right now", "Please try again in a few minutes. If it keeps "
                        "happening, call your clinic."),
    },
    "es": {
        "invalid": ("Este enlace no es válido", "Revise que abrió el enlace completo de su mensaje de texto. "
                    "Si sigue sin funcionar, llame a su clínica."),
        "expired": ("Este enlace ha caducado", "Su cita ya terminó. Si necesita otra cita, llame a su clínica."),
        "cancelled": ("Esta cita fue cancelada", "Llame a su clínica para programar una nueva cita."),
        "early": ("Todavía es temprano", "Su cita es el {start}. Vuelva a las {opens} para entrar a la sala "
                  "de espera."),
        "unavailable": ("No podemos abrir su consulta ahora", "Inténtelo de nuevo en unos minutos. Si el "
                        "problema continúa, llame a su clínica."),
    },
    "pt-BR": {
        "invalid": ("Este link não é válido", "Verifique se você abriu o link completo da mensagem de texto. "
                    "Se ainda não funcionar, ligue para sua clínica."),
        "expired": ("Este link expirou", "Sua consulta já terminou. Se precisar de outra consulta, ligue para "
                    "sua clínica."),
        "cancelled": ("Esta consulta foi cancelada", "Ligue para sua clínica para marcar uma nova consulta."),
        "early": ("Ainda é cedo", "Sua consulta é em {start}. Volte às {opens} para entrar na sala de espera."),
        "unavailable": ("Não conseguimos abrir sua consulta agora", "Tente novamente em alguns minutos. Se "
                        "continuar, ligue para sua clínica."),
    },
}
STATUS = {"invalid": 404, "expired": 410, "cancelled": 410, "early": 200, "unavailable": 503}


@dataclass
class JoinOutcome:
    """Either a redirect to the lobby or a page for the patient."""

    location: str = ""
    html: str = ""
    status: int = 302
    kind: str = "lobby"


def language_from_header(accept_language: str) -> str:
    """The first supported language the browser asks for (q-values respected)."""
    ranked: list[tuple[float, str]] = []
    for part in accept_language.split(",")[:20]:
        code, _, quality = part.strip().partition(";q=")
        try:
            ranked.append((float(quality or 1), code))
        except ValueError:
            continue
    return pick_language(*(code for _q, code in sorted(ranked, key=lambda r: -r[0])))


def patient_page(kind: str, language: str, **values: str) -> JoinOutcome:
    title, text = PAGES[language][kind]
    html = render("patient.html", language=language, title=title, text=text.format(**values))
    return JoinOutcome(html=html, status=STATUS[kind], kind=kind)


def link_for(endpoint: FhirEndpoint, appointment: Appointment) -> str:
    """The short patient link sent by SMS: our own domain, a sealed token, nothing readable."""
    settings = get_settings()
    end = appointment.end or (appointment.start or datetime.now(UTC)) + timedelta(hours=1)
    token = sealer().seal_link(endpoint.id, appointment.id, end + timedelta(hours=settings.link_grace_hours))
    return f"{settings.public_base_url}/api/join/{token}"


def visit_key(endpoint_id: str, appointment_id: str) -> str:
    """The visit's opaque key under the active hash key (new usage rows, ledger rows' `visit`)."""
    return sealer().keyed_hash("visit", endpoint_id, appointment_id)


def visit_keys(endpoint_id: str, appointment_id: str) -> tuple[str, ...]:
    """The visit's keys under every hash key, active first: rows made before a rotation are still found."""
    return sealer().keyed_hashes("visit", endpoint_id, appointment_id)


def ended(appointment: Appointment, now: datetime) -> bool:
    """Fulfilled, a no-show, or past its (current) end plus the grace: the link no longer opens the visit."""
    if appointment.status in ("fulfilled", "noshow"):
        return True
    start = appointment.start or now
    end = appointment.end or start + timedelta(hours=1)
    return now >= end + timedelta(hours=get_settings().link_grace_hours)


def join(token: str, accept_language: str = "", now: datetime | None = None) -> JoinOutcome:
    """Redirect to the lobby, or explain kindly why not (expired, tampered, cancelled, too early)."""
    outcome = _join(token, accept_language, now or datetime.now(UTC))
    telemetry.count("connector.joins", outcome=outcome.kind)
    return outcome


def _join(token: str, accept_language: str, now: datetime) -> JoinOutcome:
    language = language_from_header(accept_language)
    try:
        # An expired link still names its appointment: if that moved later, the link follows it (see ended()).
        endpoint_id, appointment_id, _expires = sealer().open_link(token, now, check_expiry=False)
    except TokenInvalid:
        return patient_page("invalid", language)
    accounts = default_accounts()
    config = ConfigRepository(accounts, reuse_recent_reads=True)
    found = config.find_by_id(endpoint_id)
    if found is None:
        return patient_page("invalid", language)
    tenant_id, endpoint = found
    try:
        fhir = FhirClient(endpoint.base_url, system_token(endpoint.base_url))
        try:
            appointment = fhir.appointment(appointment_id)
        except NotFound:  # deleted in Cerner, or never there: the link is of no use, trying again won't help
            return patient_page("invalid", language)
        start = appointment.start or now
        opens = start - timedelta(minutes=get_settings().join_window_minutes)
        over = ended(appointment, now)
        if over or appointment.cancelled or now < opens:
            # Only pages need the patient's language; the warm path to the lobby reads no Patient.
            language = pick_language(fhir.patient(appointment.patient_id).language, language)
        if over:
            return patient_page("expired", language)
        if appointment.cancelled:
            return patient_page("cancelled", language)
        if now < opens:
            zone = ZoneInfo(endpoint.time_zone)
            return patient_page("early", language, start=start.astimezone(zone).strftime("%d/%m %H:%M"),
                                opens=opens.astimezone(zone).strftime("%H:%M"))
        memory = JoinLinkMemory(config, tenant_id)
        location = patient_join_url(GraphClient(tenant_id), endpoint, appointment, memory)
    except ConnectorError:
        return patient_page("unavailable", language)
    UsageRepository(accounts).record(
        config.region(tenant_id), endpoint.id, visit_keys(endpoint.id, appointment.id), start,
        {"patient_opened_at": now, "scheduled_end": appointment.end,
         "department": appointment.location_ids[0] if appointment.location_ids else ""},
        keep_first=("patient_opened_at",),
    )
    return JoinOutcome(location=location)
