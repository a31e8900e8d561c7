"""Sealed patient links and cookies: round trip, tampering, key rotation, expiry."""

from __future__ import annotations

import base64
import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.settings import Settings
from shared.tokens import MAX_LINK_CHARS, Sealer, TokenExpired, TokenInvalid, UnsafeKeys

KEY_A = "k1:q6T1bQy3nX9vW2eR5tY8uI0oP4aS7dF1gH3jK6lZ9xc="
KEY_B = "k2:8Jd3kL0pQ7rT1vX5zB9nM2cF6hJ0kP4sW8yA3eG7iL0="
HASH = "Zm9yLXRoZS1zYW5kYm94LW9ubHktaGFzaC1rZXktMzI="
ENDPOINT = "0123456789abcdef"
LATER = datetime.now(UTC) + timedelta(hours=3)


def sealer(keys: str = KEY_A, active: str = "k1") -> Sealer:
    return Sealer(Settings(seal_keys=keys, seal_active_key_id=active, hash_key=HASH))


SEALING = sealer()  # for the tests that open many links: building a sealer (its settings) costs more than a link


def test_link_round_trip_is_short_url_safe_and_unreadable():
    token = sealer().seal_link(ENDPOINT, "98765432101", LATER)
    assert len(token) <= MAX_LINK_CHARS
    assert set(token) <= set(string.ascii_letters + string.digits + "-_")
    assert "98765432101" not in token and ENDPOINT not in token
    endpoint, appointment, expires = sealer().open_link(token)
    assert (endpoint, appointment) == (ENDPOINT, "98765432101")
    assert abs((expires - LATER).total_seconds()) < 60


def test_largest_appointment_id_still_fits_64_characters():
    assert len(sealer().seal_link(ENDPOINT, str(2**64 - 1), LATER)) <= 64


def test_two_links_for_the_same_appointment_differ():
    assert sealer().seal_link(ENDPOINT, "1", LATER) != sealer().seal_link(ENDPOINT, "1", LATER)


def test_every_single_character_change_is_refused():
    token = sealer().seal_link(ENDPOINT, "4817517", LATER)
    alphabet = string.ascii_letters + string.digits + "-_"
    for index in range(len(token)):
        for replacement in (alphabet[(alphabet.index(token[index]) + 1) % len(alphabet)],):
            forged = token[:index] + replacement + token[index + 1:]
            with pytest.raises(TokenInvalid):
                sealer().open_link(forged)


def test_every_single_byte_change_is_refused():
    import base64

    token = sealer().seal_link(ENDPOINT, "4817517", LATER)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    for index in range(len(raw)):
        changed = bytearray(raw)
        changed[index] ^= 0x01
        forged = base64.urlsafe_b64encode(bytes(changed)).rstrip(b"=").decode()
        with pytest.raises(TokenInvalid):
            sealer().open_link(forged)


def test_truncated_links_are_refused():
    token = sealer().seal_link(ENDPOINT, "4817517", LATER)
    for length in range(len(token)):
        with pytest.raises(TokenInvalid):
            sealer().open_link(token[:length])


def test_expired_link_is_refused_as_expired():
    token = sealer().seal_link(ENDPOINT, "4817517", datetime.now(UTC) - timedelta(minutes=2))
    with pytest.raises(TokenExpired):
        sealer().open_link(token)


def test_wrong_key_is_refused_and_rotation_keeps_old_links_working():
    old = sealer(KEY_A, "k1").seal_link(ENDPOINT, "42", LATER)
    with pytest.raises(TokenInvalid):
        sealer(KEY_B.replace("k2", "k1"), "k1").open_link(old)
    rotated = sealer(f"{KEY_A},{KEY_B}", "k2")
    assert rotated.open_link(old)[1] == "42"
    new = rotated.seal_link(ENDPOINT, "43", LATER)
    with pytest.raises(TokenInvalid):
        sealer(KEY_A, "k1").open_link(new)


def test_non_numeric_appointment_ids_cannot_be_linked():
    with pytest.raises(ValueError):
        sealer().seal_link(ENDPOINT, "abc", LATER)


def test_sealed_json_is_bound_to_its_purpose_and_expires():
    value = sealer().seal_json({"state": "s"}, 60, "ehr-launch")
    assert sealer().open_json(value, "ehr-launch") == {"state": "s"}
    with pytest.raises(TokenInvalid):
        sealer().open_json(value, "ms-link")
    with pytest.raises(TokenExpired):
        sealer().open_json(sealer().seal_json({}, -1, "x"), "x")
    with pytest.raises(TokenInvalid):
        sealer().open_json(value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1], "ehr-launch")


def test_keyed_hash_depends_on_the_key():
    other_key = "b3RoZXIta2V5LWZvci10aGUta2V5ZWQtaGFzaC10ZXN0cw=="
    other = Sealer(Settings(seal_keys=KEY_A, seal_active_key_id="k1", hash_key=other_key))
    assert sealer().keyed_hash("a", "1") == sealer().keyed_hash("a", "1")
    assert sealer().keyed_hash("a", "1") != other.keyed_hash("a", "1")
    assert sealer().keyed_hash("a", "1") != "1"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + "-_=.%", max_size=90))
def test_random_strings_never_open(text):
    with pytest.raises(TokenInvalid):
        SEALING.open_link(text)


def test_keyed_hashes_carry_their_key_id_and_old_keys_still_give_their_hashes():
    new_key = base64.b64encode(b"n" * 32).decode()
    rotated = Sealer(Settings(seal_keys=KEY_A, seal_active_key_id="k1", hash_key=f"h2:{new_key},{HASH}"))
    new, old = rotated.keyed_hashes("visit", ENDPOINT, "4822401")
    assert old == sealer().keyed_hash("visit", ENDPOINT, "4822401"), "the id-less original key hashes as before"
    assert new.startswith("h2.") and len(new) == 3 + 32 and new != "h2." + old
    assert rotated.keyed_hash("visit", ENDPOINT, "4822401") == new
    assert [len(h) for h in rotated.keyed_hashes("a", size=16)] == [3 + 16, 16]


def test_the_largest_link_of_exactly_64_characters_opens():
    token = sealer().seal_link(ENDPOINT, str(2**64 - 1), LATER)
    assert len(token) == MAX_LINK_CHARS
    assert sealer().open_link(token)[1] == str(2**64 - 1)


def test_appointment_ids_of_64_bits_or_more_cannot_be_linked():
    for too_big in (str(2**64), str(2**65), str(3**64)):
        with pytest.raises(ValueError, match="only numeric appointment ids"):
            sealer().seal_link(ENDPOINT, too_big, LATER)


def test_many_links_round_trip_whatever_characters_they_end_with():
    # Two-byte ids make 42-byte links: 56 characters, the last one any of the 64 base64url characters.
    ends = set()
    for number in range(256, 256 + 1000):
        token = SEALING.seal_link(ENDPOINT, str(number), LATER)
        ends.add(token[-1])
        assert SEALING.open_link(token)[:2] == (ENDPOINT, str(number))
    assert len(ends) == 64


def test_a_link_is_expired_from_its_expiry_minute_on():
    expiry = datetime(2026, 6, 10, 17, 0, tzinfo=UTC)
    token = sealer().seal_link(ENDPOINT, "42", expiry)
    assert sealer().open_link(token, now=expiry - timedelta(seconds=1))[2] == expiry
    with pytest.raises(TokenExpired):
        sealer().open_link(token, now=expiry)


def test_rotation_works_whichever_order_the_keys_are_listed_in():
    old = sealer(KEY_A, "k1").seal_link(ENDPOINT, "42", LATER)
    assert sealer(f"{KEY_B},{KEY_A}", "k2").open_link(old)[1] == "42"


def test_two_key_ids_with_the_same_one_byte_tag_are_both_tried():
    import hashlib

    tags: dict[bytes, str] = {}
    for n in range(5000):
        key_id = f"key{n}"
        tag = hashlib.sha256(key_id.encode()).digest()[:1]
        if tag in tags:
            first, second = tags[tag], key_id
            break
        tags[tag] = key_id
    secret_a, secret_b = KEY_A.split(":", 1)[1], KEY_B.split(":", 1)[1]
    ring = f"{first}:{secret_a},{second}:{secret_b}"
    token = sealer(ring, second).seal_link(ENDPOINT, "42", LATER)
    assert sealer(ring, first).open_link(token)[1] == "42", "the first key with that tag fails; the second opens it"


def test_the_active_key_must_be_in_the_ring():
    with pytest.raises(UnsafeKeys, match="SEAL_ACTIVE_KEY_ID does not name a key in SEAL_KEYS"):
        sealer(KEY_A, "k9")


def test_unsafe_keys_tell_it_every_setting_at_fault_and_to_restart():
    with pytest.raises(UnsafeKeys) as refused:
        Sealer(Settings(seal_keys="", seal_active_key_id="k1", hash_key=""))
    assert refused.value.message == ("The service's keys are not configured safely: SEAL_KEYS is missing. "
                                     "HASH_KEY is missing.")
    assert refused.value.next_step == "Tell IT: fix these app settings, then restart the app."


def test_keyed_hash_is_hmac_sha256_of_the_parts_joined_by_bars():
    import base64
    import hashlib
    import hmac

    expected = hmac.new(base64.b64decode(HASH), b"sms|ep|4817517|confirmation", hashlib.sha256).hexdigest()[:32]
    assert sealer().keyed_hash("sms", "ep", "4817517", "confirmation") == expected
    assert sealer().keyed_hash("a", "1") != sealer().keyed_hash("a", "2")


def test_cookies_over_https_are_secure_http_only_and_host_bound_where_their_path_allows(monkeypatch):
    from shared.runtime import reset_process_state
    from shared.tokens import CookieSpec, clear_cookie_header, cookie_header

    whole_app, launch_only = CookieSpec("session", 570), CookieSpec("launch", 600, "/api/launch")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://connector.example")
    reset_process_state()
    try:
        assert cookie_header(whole_app, "v") == "__Host-session=v; Path=/; Max-Age=570; HttpOnly; SameSite=Lax; Secure"
        assert cookie_header(launch_only, "v") == \
            "__Secure-launch=v; Path=/api/launch; Max-Age=600; HttpOnly; SameSite=Lax; Secure"
        assert clear_cookie_header(launch_only) == \
            "__Secure-launch=; Path=/api/launch; Max-Age=0; HttpOnly; SameSite=Lax; Secure", "emptied and expired"
        monkeypatch.setenv("PUBLIC_BASE_URL", "http://127.0.0.1:7071")
        reset_process_state()
        assert cookie_header(whole_app, "v") == "session=v; Path=/api; Max-Age=570; HttpOnly; SameSite=Lax", \
            "a developer's loopback over http: no prefix the browser would refuse"
    finally:
        monkeypatch.undo()
        reset_process_state()
