"""A small SMART authorization server on a real https socket whose answers each test chooses, and which records
what it was asked (the code under test talks to it through its real, shared httpx client)."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CLIENT_ID = "provider-app"


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    return {**jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig",
            "alg": "RS256"}


@dataclass
class Answer:
    status: int = 200
    body: Any = None


@dataclass
class Asked:
    method: str
    path: str
    form: dict[str, str]
    authorization: str
    accept: str = ""


@dataclass
class AuthorizationServer:
    """What the server answers (set by tests) and what it was asked."""

    origin: str = ""
    answers: dict[str, Answer] = field(default_factory=dict)
    asked: list[Asked] = field(default_factory=list)

    @property
    def fhir_base(self) -> str:
        return f"{self.origin}/r4/tenant"

    @property
    def issuer(self) -> str:
        return f"{self.origin}/auth/"

    def reset(self, **smart: Any) -> None:
        self.asked.clear()
        self.answers = {
            "/r4/tenant/.well-known/smart-configuration": Answer(body={
                "issuer": self.issuer, "authorization_endpoint": f"{self.origin}/auth/authorize",
                "token_endpoint": f"{self.origin}/auth/token", "jwks_uri": f"{self.origin}/auth/jwks",
                "code_challenge_methods_supported": ["S256"], "capabilities": ["launch-ehr", "permission-v1"],
                **smart}),
            "/auth/.well-known/openid-configuration": Answer(body={"issuer": self.issuer,
                                                                    "jwks_uri": f"{self.origin}/auth/jwks"}),
            "/auth/jwks": Answer(body={"keys": [public_jwk(SIGNING_KEY, "k1")]}),
            "/auth/token": Answer(body={"access_token": "at-1", "token_type": "Bearer", "expires_in": 570}),
        }

    def answer(self, path: str, status: int = 200, body: Any = None) -> None:
        self.answers[path] = Answer(status, body)

    def asked_for(self, path: str) -> list[Asked]:
        return [a for a in self.asked if a.path == path]

    def sign(self, key: rsa.RSAPrivateKey = SIGNING_KEY, kid: str | None = "k1", algorithm: str = "RS256",
             **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "aud": CLIENT_ID, "sub": "user-1", "iat": now, "exp": now + 300, **claims}
        body = {name: value for name, value in body.items() if value is not None}
        headers = {"kid": kid} if kid else {}
        return jwt.encode(body, key, algorithm=algorithm, headers=headers)

    def app(self) -> Starlette:
        async def any_route(request: Request) -> Response:
            form = dict(parse_qsl((await request.body()).decode())) if request.method == "POST" else {}
            self.asked.append(Asked(request.method, request.url.path, form, request.headers.get("authorization", ""),
                                    request.headers.get("accept", "")))
            answer = self.answers.get(request.url.path)
            if answer is None:
                return JSONResponse({"error": "not found"}, status_code=404)
            if isinstance(answer.body, str):
                return Response(answer.body, status_code=answer.status, media_type="application/json")
            return JSONResponse(answer.body, status_code=answer.status)

        return Starlette(routes=[Route("/{path:path}", any_route, methods=["GET", "POST"])])


def basic_credentials(authorization: str) -> tuple[str, str]:
    user, _, password = base64.b64decode(authorization.removeprefix("Basic ")).decode().partition(":")
    return user, password
