"""Phone numbers from Cerner's national formats to E.164, and the masked form shown to providers."""

from __future__ import annotations

# Toll-free senders reach only the US, Canada and Puerto Rico (domain-notes E8).
TOLL_FREE_REACHABLE = frozenset({"US", "CA", "PR"})


def to_e164(raw: str, default_region: str = "US") -> str | None:
    """E.164 form of a valid number, or None (Cerner sends '8168880142' or '(816)888-0142')."""
    import phonenumbers  # imported when first needed (its metadata is large): not on cold start

    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def reachable_from_toll_free(e164: str) -> bool:
    import phonenumbers

    region = phonenumbers.region_code_for_number(phonenumbers.parse(e164))
    return region in TOLL_FREE_REACHABLE


def masked(e164: str) -> str:
    """What a provider may see: the last four digits only."""
    return f"•••• {e164[-4:]}"
