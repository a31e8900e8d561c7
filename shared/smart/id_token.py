"""id_token validation per OpenID Connect Core §3.1.3.7: kid-selected key, iss, aud, azp, exp, iat, nbf, nonce."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.errors import ConnectorError
from shared.smart.discovery import jwks

if TYPE_CHECKING:
    import jwt

ALLOWED_ALGORITHMS = ["RS256", "RS384", "ES256", "ES384"]
LEEWAY_SECONDS = 60
NEXT_STEP = "Close this window and launch again. If it keeps happening, tell IT (reference below)."


class IdTokenInvalid(ConnectorError):
    status, code, title = 401, "id_token_invalid", "We could not confirm who you are"


def _signing_key(token: str, jwks_uri: str, system: str) -> jwt.PyJWK:
    """The key named by the token's kid; without a kid, the JWKS's only key (never a guess among several)."""
    import jwt  # PyJWT loads cryptography: imported on the first sign-in, not on cold start

    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise IdTokenInvalid("The sign-in answer was malformed.", next_step=NEXT_STEP) from exc
    if header.get("alg") not in ALLOWED_ALGORITHMS:
        raise IdTokenInvalid("The sign-in answer was not signed with an accepted algorithm.", next_step=NEXT_STEP)
    kid = header.get("kid")
    if kid is None:
        keys = jwks(jwks_uri, system=system).keys
        if len(keys) != 1:
            raise IdTokenInvalid("The sign-in answer does not name its signing key.", next_step=NEXT_STEP)
        return keys[0]
    for refresh in (False, True):  # an unknown kid may be a rotated key: refetch (at most once a minute)
        for key in jwks(jwks_uri, refresh=refresh, system=system).keys:
            if key.key_id == kid:
                return key
    raise IdTokenInvalid("The sign-in answer was signed with an unknown key.", next_step=NEXT_STEP)


def validate_id_token(token: str, *, jwks_uri: str, issuer: str, audience: str,
                      nonce: str | None = None, system: str = "smart") -> dict[str, Any]:
    """The claims of a fully validated id_token, or IdTokenInvalid saying which check failed."""
    import jwt  # PyJWT loads cryptography: imported on the first sign-in, not on cold start

    key = _signing_key(token, jwks_uri, system)
    try:
        claims = jwt.decode(
            token, key=key.key, algorithms=ALLOWED_ALGORITHMS, audience=audience, issuer=issuer,
            options={"require": ["iss", "aud", "exp", "iat"]}, leeway=LEEWAY_SECONDS,
        )
    except jwt.MissingRequiredClaimError as exc:
        raise IdTokenInvalid(f"The sign-in answer has no {exc.claim} claim.", next_step=NEXT_STEP) from exc
    except jwt.ExpiredSignatureError as exc:
        raise IdTokenInvalid("The sign-in answer has expired.", next_step=NEXT_STEP) from exc
    except jwt.ImmatureSignatureError as exc:
        raise IdTokenInvalid("The sign-in answer is not valid yet (check the server clocks).",
                             next_step=NEXT_STEP) from exc
    except jwt.InvalidIssuerError as exc:
        raise IdTokenInvalid("The sign-in answer came from an unexpected issuer.", next_step=NEXT_STEP) from exc
    except jwt.InvalidAudienceError as exc:
        raise IdTokenInvalid("The sign-in answer was issued to another application.", next_step=NEXT_STEP) from exc
    except jwt.PyJWTError as exc:
        raise IdTokenInvalid("The sign-in answer could not be verified.", next_step=NEXT_STEP) from exc
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    # OIDC Core §3.1.3.7 (4, 5): with several audiences azp is required, and when present it must be us.
    if ("azp" in claims or len(audiences) > 1) and claims.get("azp") != audience:
        raise IdTokenInvalid("The sign-in answer was issued to another application.", next_step=NEXT_STEP)
    if nonce is not None and claims.get("nonce") != nonce:
        raise IdTokenInvalid("The sign-in answer does not belong to this sign-in.", next_step=NEXT_STEP)
    return claims
