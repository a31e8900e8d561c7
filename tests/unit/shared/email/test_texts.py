"""Notification emails: the patient's language, the visit time and link only, and one-click unsubscribe headers."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from shared.email.texts import render_email

START = datetime(2026, 3, 4, 14, 30, tzinfo=ZoneInfo("America/Chicago"))
LINK = "https://connector.example/api/join/AbC123"
UNSUBSCRIBE = "https://connector.example/api/unsubscribe/k1.xyz"


@pytest.mark.parametrize(("language", "subject", "time_text"), [
    ("en", "Your virtual appointment is booked", "Wednesday, March 4 at 2:30 PM (CST)"),
    ("es", "Su cita virtual está programada", "miércoles, 4 de marzo, 14:30 (CST)"),
    ("pt-BR", "Sua consulta virtual está marcada", "quarta-feira, 4 de março, 14:30 (CST)"),
    ("pt", "Sua consulta virtual está marcada", "quarta-feira, 4 de março, 14:30 (CST)"),
    ("fr", "Your virtual appointment is booked", "Wednesday, March 4 at 2:30 PM (CST)"),
])
def test_a_confirmation_is_in_the_patients_language_with_the_local_time(language, subject, time_text):
    email = render_email("confirmation", language, START, LINK, UNSUBSCRIBE)
    assert email.subject == subject
    assert time_text in email.plain_text and time_text in email.html


def test_both_bodies_carry_the_join_link_and_the_unsubscribe_link():
    email = render_email("reminder", "en", START, LINK, UNSUBSCRIBE)
    assert LINK in email.plain_text and f'href="{LINK}"' in email.html
    assert UNSUBSCRIBE in email.plain_text and f'href="{UNSUBSCRIBE}"' in email.html
    assert email.headers == {"List-Unsubscribe": f"<{UNSUBSCRIBE}>",
                             "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def test_a_cancellation_has_no_join_link():
    email = render_email("cancellation", "es", START, "", UNSUBSCRIBE)
    assert "/api/join/" not in email.plain_text + email.html
    assert "fue cancelada" in email.plain_text


def test_the_html_escapes_what_it_is_given():
    email = render_email("link", "en", START, 'https://x.example/"><script>', UNSUBSCRIBE)
    assert "<script>" not in email.html
