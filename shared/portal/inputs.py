"""Request bodies of the portal's JSON API: size limit, JSON, and a pydantic model, each failure a clear 4xx."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.errors import InvalidInput, PayloadTooLarge

MAX_BODY_BYTES = 64 * 1024
Model = TypeVar("Model", bound=BaseModel)


class Strict(BaseModel):
    """A request body: unknown fields are refused, strings trimmed, no silent type juggling."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


def _field_errors(error: ValidationError) -> str:
    parts = []
    for problem in error.errors()[:5]:
        where = ".".join(str(part) for part in problem["loc"]) or "body"
        parts.append(f"{where}: {problem['msg']}")
    return "; ".join(parts)


def parse_body(model: type[Model], body: bytes | None) -> Model:
    """The body as `model`, or PayloadTooLarge / InvalidInput naming what is wrong."""
    body = body or b""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB.",
                              next_step="Send only the fields this request takes.")
    try:
        data: Any = json.loads(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("The request body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"Some fields are not valid: {_field_errors(exc)}.") from exc
