"""One-click email unsubscribe: a sealed link per recipient; GET asks to confirm, POST (RFC 8058) records it.

The link names the FHIR endpoint, the recipient's keyed hash and the language, sealed (nothing readable). A GET
never unsubscribes, because mail scanners open links; a POST does, from the confirmation page's button or from
the mail client's one-click (List-Unsubscribe-Post: List-Unsubscribe=One-Click). The opt-out is kept as a keyed
hash in the organization's region and honoured before every send.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shared.notifications.optouts import OPTED_OUT, OptOutStore, email_key, email_scope
from shared.pages import render
from shared.settings import get_settings
from shared.sms.texts import pick_language
from shared.storage.accounts import default_accounts
from shared.storage.config import ConfigRepository
from shared.storage.ledger import LedgerRepository
from shared.tokens import TokenExpired, TokenInvalid, sealer

PURPOSE = "email-unsubscribe"
TTL_SECONDS = 400 * 24 * 3600  # an old email's link should still work

PAGES = {
    "en": {
        "confirm": ("Unsubscribe from appointment emails?", "You will no longer get emails about your virtual "
                    "appointments from this clinic. Your appointments are not changed.", "Unsubscribe"),
        "done": ("You're unsubscribed", "You won't get any more appointment emails from this clinic. Your "
                 "appointments are not changed; call your clinic if you need the link to a visit.", ""),
        "invalid": ("This link isn't valid", "Check that you opened the whole link from the email. If it still "
                    "doesn't work, call your clinic.", ""),
    },
    "es": {
        "confirm": ("¿Cancelar la suscripción a los correos de citas?", "Ya no recibirá correos sobre sus citas "
                    "virtuales de esta clínica. Sus citas no cambian.", "Cancelar suscripción"),
        "done": ("Se canceló su suscripción", "No recibirá más correos de citas de esta clínica. Sus citas no "
                 "cambian; llame a su clínica si necesita el enlace de una consulta.", ""),
        "invalid": ("Este enlace no es válido", "Revise que abrió el enlace completo del correo. Si sigue sin "
                    "funcionar, llame a su clínica.", ""),
    },
    "pt-BR": {
        "confirm": ("Cancelar os e-mails de consultas?", "Você não vai mais receber e-mails sobre suas consultas "
                    "virtuais desta clínica. Suas consultas não mudam.", "Cancelar inscrição"),
        "done": ("Inscrição cancelada", "Você não vai receber mais e-mails de consultas desta clínica. Suas "
                 "consultas não mudam; ligue para sua clínica se precisar do link de uma consulta.", ""),
        "invalid": ("Este link não é válido", "Verifique se você abriu o link completo do e-mail. Se ainda não "
                    "funcionar, ligue para sua clínica.", ""),
    },
}


@dataclass(frozen=True)
class UnsubscribePage:
    """The page to show and its status."""

    html: str
    status: int


def unsubscribe_url(endpoint_id: str, address: str, language: str) -> str:
    """The recipient's sealed unsubscribe link (in every email's footer and List-Unsubscribe header)."""
    data = {"e": endpoint_id, "r": email_key(address), "l": pick_language(language)}
    return get_settings().url(f"/api/unsubscribe/{sealer().seal_json(data, TTL_SECONDS, PURPOSE)}")


def _opened(token: str) -> dict[str, str] | None:
    try:
        data = sealer().open_json(token, PURPOSE)
    except (TokenInvalid, TokenExpired, ValueError, KeyError, TypeError):
        return None
    valid = isinstance(data, dict) and all(isinstance(data.get(k), str) and data.get(k) for k in ("e", "r", "l"))
    return data if valid else None


def _page(kind: str, language: str, status: int) -> UnsubscribePage:
    title, text, button = PAGES[language][kind]
    return UnsubscribePage(render("unsubscribe.html", language=language, title=title, text=text, button=button),
                           status)


def confirm_page(token: str, fallback_language: str = "en") -> UnsubscribePage:
    """GET: ask to confirm (changes nothing), or say the link is not valid."""
    data = _opened(token)
    if data is None:
        return _page("invalid", fallback_language, 404)
    return _page("confirm", pick_language(data["l"]), 200)


def unsubscribe(token: str, fallback_language: str = "en", now: datetime | None = None) -> UnsubscribePage:
    """POST: record the opt-out (idempotent); an invalid or unknown link stores nothing."""
    data = _opened(token)
    if data is None:
        return _page("invalid", fallback_language, 404)
    accounts = default_accounts()
    config = ConfigRepository(accounts)
    found = config.find_by_id(data["e"])
    language = pick_language(data["l"])
    if found is None:
        return _page("invalid", language, 404)
    region = config.region(found[0])
    OptOutStore(LedgerRepository(accounts)).record_key(region, email_scope(data["e"]), data["r"], OPTED_OUT,
                                                       now or datetime.now(UTC))
    return _page("done", language, 200)
