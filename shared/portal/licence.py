"""The licence state as the portal shows it (the check itself is Graph code: shared/microsoft/licence.py)."""

from __future__ import annotations

from typing import Any

from shared.microsoft.licence import accepted_skus, licence_state
from shared.portal.auth import Credentials, authenticate
from shared.settings import get_settings


def portal_licence(credentials: Credentials) -> dict[str, Any]:
    """The licence state as the portal shows it."""
    caller = authenticate(credentials)
    state = licence_state(caller.tenant_id)
    required = ["production", "test"] if get_settings().license_enforce_in_test else ["production"]
    if state.licensed:
        message = f"Licensed: {', '.join(state.skus)} is active."
    else:
        message = (f"No active licence found. Launches from {' and '.join(required)} environments will be refused "
                   f"until one of {', '.join(accepted_skus())} is active in your tenant.")
    return {"licensed": state.licensed, "skus": list(state.skus), "accepted_skus": list(accepted_skus()),
            "required_for": required, "checked_at": state.checked_at.isoformat(), "message": message}
