"""id_token validation per OpenID Connect Core §3.1.3.7: signature via JWKS, iss, aud, exp, nonce."""

from __future__ import annotations

from typing import Any

import jwt

from shared.errors import ConnectorError
from shared.smart.discovery import jwks

ALLOWED_ALGORITHMS = ["RS256", "RS384", "ES256", "ES384"]


class IdTokenInvalid(ConnectorError):
    status, code, title = 401, "id_token_invalid", "We could not confirm who you are"


def _signing_key(token: str, jwks_uri: str, system: str) -> jwt.PyJWK:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise IdTokenInvalid("The sign-in answer was malformed.") from exc
    if header.get("alg") not in ALLOWED_ALGORITHMS:
        raise IdTokenInvalid("The sign-in answer was not signed with an accepted algorithm.")
    for refresh in (False, True):
        for key in jwks(jwks_uri, refresh=refresh, system=system).keys:
            if key.key_id == header.get("kid") or (header.get("kid") is None and refresh):
                return key
    raise IdTokenInvalid("The sign-in answer was signed with an unknown key.")


def validate_id_token(token: str, *, jwks_uri: str, issuer: str, audience: str,
                      nonce: str | None = None, system: str = "smart") -> dict[str, Any]:
    """The claims of a fully validated id_token, or IdTokenInvalid."""
    next_step = "Close this window and launch again. If it keeps happening, tell IT (reference below)."
    key = _signing_key(token, jwks_uri, system)
    try:
        claims = jwt.decode(
            token, key=key.key, algorithms=ALLOWED_ALGORITHMS, audience=audience, issuer=issuer,
            options={"require": ["iss", "aud", "exp", "iat"]}, leeway=60,
        )
    except jwt.ExpiredSignatureError as exc:
        raise IdTokenInvalid("The sign-in answer has expired.", next_step=next_step) from exc
    except jwt.PyJWTError as exc:
        raise IdTokenInvalid("The sign-in answer could not be verified.", next_step=next_step) from exc
    if nonce is not None and claims.get("nonce") != nonce:
        raise IdTokenInvalid("The sign-in answer does not belong to this sign-in.", next_step=next_step)
    return claims
