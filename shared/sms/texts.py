"""SMS texts per language, kept to GSM-7 so two segments hold the text and the link."""
# ruff: noqa: E501 - message texts read best on one line each

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Literal

Kind = Literal["link", "confirmation", "reschedule", "cancellation", "reminder"]
LANGUAGES = ("en", "es", "pt-BR")
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
TWO_SEGMENTS_GSM7 = 306

TEXTS: dict[str, dict[Kind, str]] = {
    "en": {
        "link": "Your virtual appointment {when}. Join from your phone or computer: {link}",
        "confirmation": "Your virtual appointment is booked for {when}. Join here at that time: {link} Reply STOP to opt out.",
        "reschedule": "Your virtual appointment has moved to {when}. Join here at that time: {link} Reply STOP to opt out.",
        "cancellation": "Your virtual appointment on {when} was cancelled. Please call your clinic to rebook.",
        "reminder": "Reminder: your virtual appointment starts {when}. Join here: {link} Reply STOP to opt out.",
    },
    "es": {
        "link": "Su cita virtual {when}. Unase desde su telefono o computadora: {link}",
        "confirmation": "Su cita virtual esta programada para el {when}. Unase aqui a esa hora: {link} Responda STOP para no recibir mensajes.",
        "reschedule": "Su cita virtual cambio al {when}. Unase aqui a esa hora: {link} Responda STOP para no recibir mensajes.",
        "cancellation": "Su cita virtual del {when} fue cancelada. Llame a su clinica para reprogramarla.",
        "reminder": "Recordatorio: su cita virtual empieza {when}. Unase aqui: {link} Responda STOP para no recibir mensajes.",
    },
    "pt-BR": {
        "link": "Sua consulta virtual {when}. Entre pelo celular ou computador: {link}",
        "confirmation": "Sua consulta virtual esta marcada para {when}. Entre aqui nesse horario: {link} Responda STOP para sair.",
        "reschedule": "Sua consulta virtual mudou para {when}. Entre aqui nesse horario: {link} Responda STOP para sair.",
        "cancellation": "Sua consulta virtual de {when} foi cancelada. Ligue para sua clinica para remarcar.",
        "reminder": "Lembrete: sua consulta virtual comeca {when}. Entre aqui: {link} Responda STOP para sair.",
    },
}

WEEKDAYS = {
    "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    "es": ["lun", "mar", "mie", "jue", "vie", "sab", "dom"],
    "pt-BR": ["seg", "ter", "qua", "qui", "sex", "sab", "dom"],
}


def supported_language(code: str | None) -> str | None:
    """The supported language a BCP 47 code asks for ('pt', 'pt-br', 'es-MX' ...), or None."""
    code = (code or "").strip().replace("_", "-").lower()
    return next((language for language in LANGUAGES if code and code.split("-")[0] == language[:2].lower()), None)


def pick_language(*candidates: str | None) -> str:
    """The first supported language among the candidates, else English."""
    return next((found for c in candidates if (found := supported_language(c))), "en")


def when(start: datetime, language: str) -> str:
    """Local date and time in the language's usual order."""
    day = WEEKDAYS[language][start.weekday()]
    if language == "en":
        return f"{day} {start.month}/{start.day} at {start.strftime('%I:%M %p').lstrip('0')}"
    return f"{day} {start.day}/{start.month} {start.strftime('%H:%M')}"


def to_gsm7(text: str) -> str:
    """Drop accents a GSM-7 phone cannot show, so the message is not sent as costly UCS-2."""
    return "".join(
        ch if ch in GSM7 else unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
        for ch in text
    )


def render_sms(kind: Kind, language: str, start: datetime, link: str) -> str:
    """The SMS text, GSM-7 only, within two segments."""
    text = to_gsm7(TEXTS[pick_language(language)][kind].format(when=when(start, pick_language(language)), link=link))
    if len(text) > TWO_SEGMENTS_GSM7:
        raise ValueError("SMS text longer than two segments")
    return text
