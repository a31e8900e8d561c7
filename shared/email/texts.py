"""Notification emails per language: a subject, a plain-text and an HTML body with the visit time and the join link.

Nothing else goes in: no name, no clinic, no reason for the visit (the email may be read by anyone with the
mailbox). Every email says how to unsubscribe and carries List-Unsubscribe headers for one-click (RFC 8058).
"""
# ruff: noqa: E501 - message texts read best on one line each

from __future__ import annotations

from datetime import datetime

from shared.email.acs import EmailContent
from shared.pages import render
from shared.sms.texts import Kind, pick_language

SUBJECTS: dict[str, dict[Kind, str]] = {
    "en": {"link": "Your virtual appointment link", "confirmation": "Your virtual appointment is booked",
           "reschedule": "Your virtual appointment has moved", "cancellation": "Your virtual appointment was cancelled",
           "reminder": "Reminder: your virtual appointment"},
    "es": {"link": "El enlace de su cita virtual", "confirmation": "Su cita virtual está programada",
           "reschedule": "Su cita virtual cambió de hora", "cancellation": "Su cita virtual fue cancelada",
           "reminder": "Recordatorio: su cita virtual"},
    "pt-BR": {"link": "O link da sua consulta virtual", "confirmation": "Sua consulta virtual está marcada",
              "reschedule": "Sua consulta virtual mudou de horário", "cancellation": "Sua consulta virtual foi cancelada",
              "reminder": "Lembrete: sua consulta virtual"},
}
LINES: dict[str, dict[Kind, str]] = {
    "en": {"link": "Your virtual appointment is {when}.", "confirmation": "Your virtual appointment is booked for {when}.",
           "reschedule": "Your virtual appointment has moved to {when}.",
           "cancellation": "Your virtual appointment on {when} was cancelled. Please call your clinic to rebook.",
           "reminder": "Reminder: your virtual appointment starts {when}."},
    "es": {"link": "Su cita virtual es el {when}.", "confirmation": "Su cita virtual está programada para el {when}.",
           "reschedule": "Su cita virtual cambió al {when}.",
           "cancellation": "Su cita virtual del {when} fue cancelada. Llame a su clínica para reprogramarla.",
           "reminder": "Recordatorio: su cita virtual empieza el {when}."},
    "pt-BR": {"link": "Sua consulta virtual é em {when}.", "confirmation": "Sua consulta virtual está marcada para {when}.",
              "reschedule": "Sua consulta virtual mudou para {when}.",
              "cancellation": "Sua consulta virtual de {when} foi cancelada. Ligue para sua clínica para remarcar.",
              "reminder": "Lembrete: sua consulta virtual começa em {when}."},
}
WORDS = {
    "en": {"join": "Join your visit", "how": "At that time, open this link on your phone or computer; no app or account needed:",
           "unsubscribe": "Don't want these emails? Unsubscribe"},
    "es": {"join": "Entrar a su consulta", "how": "A esa hora, abra este enlace en su teléfono o computadora; no necesita aplicación ni cuenta:",
           "unsubscribe": "¿No quiere recibir estos correos? Cancelar suscripción"},
    "pt-BR": {"join": "Entrar na consulta", "how": "Nesse horário, abra este link no celular ou computador; não precisa de aplicativo nem conta:",
              "unsubscribe": "Não quer receber estes e-mails? Cancelar inscrição"},
}
MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
    "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
           "noviembre", "diciembre"],
    "pt-BR": ["janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro",
              "novembro", "dezembro"],
}
WEEKDAYS = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "es": ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"],
    "pt-BR": ["segunda-feira", "terça-feira", "quarta-feira", "quinta-feira", "sexta-feira", "sábado", "domingo"],
}


def when(start: datetime, language: str) -> str:
    """The local date and time written out, in the language's usual order."""
    day, month = WEEKDAYS[language][start.weekday()], MONTHS[language][start.month - 1]
    if language == "en":
        return f"{day}, {month} {start.day} at {start.strftime('%I:%M %p').lstrip('0')} ({start.tzname()})"
    return f"{day}, {start.day} de {month}, {start:%H:%M} ({start.tzname()})"


def render_email(kind: Kind, language: str, start: datetime, link: str, unsubscribe_url: str) -> EmailContent:
    """The email for one notification: visit time and join link only, with the unsubscribe link and headers."""
    language = pick_language(language)
    line = LINES[language][kind].format(when=when(start, language))
    words = WORDS[language]
    plain = [line, ""]
    if link:
        plain += [words["how"], link, ""]
    plain += [f"{words['unsubscribe']}: {unsubscribe_url}"]
    html = render("email_notification.html", language=language, subject=SUBJECTS[language][kind], line=line,
                  link=link, words=words, unsubscribe_url=unsubscribe_url)
    headers = {"List-Unsubscribe": f"<{unsubscribe_url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return EmailContent(SUBJECTS[language][kind], "\n".join(plain), html, headers)
