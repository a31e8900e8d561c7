"""Typed errors, each with a user-safe message, what to do next, and an HTTP status."""

from __future__ import annotations

import uuid


class ConnectorError(Exception):
    """A failure a user can meet: safe to show, never carrying internals or patient data."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Something is not right with this request"

    def __init__(self, message: str, *, next_step: str = "", status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.next_step = next_step
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.reference = uuid.uuid4().hex[:12]

    def as_dict(self) -> dict[str, str]:
        """The JSON body of this error."""
        body = {"error": self.code, "message": self.message, "reference": self.reference}
        if self.next_step:
            body["next_step"] = self.next_step
        return body


class InvalidInput(ConnectorError):
    status, code, title = 400, "invalid_input", "The request is not valid"


class NotSignedIn(ConnectorError):
    status, code, title = 401, "not_signed_in", "Please sign in"


class Forbidden(ConnectorError):
    status, code, title = 403, "forbidden", "You don't have access"


class NotFound(ConnectorError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(ConnectorError):
    status, code, title = 409, "conflict", "This conflicts with what is already there"


class Gone(ConnectorError):
    status, code, title = 410, "gone", "This link is no longer valid"


class PayloadTooLarge(ConnectorError):
    status, code, title = 413, "too_large", "The request is too large"


class TooManyRequests(ConnectorError):
    status, code, title = 429, "too_many_requests", "Too many requests"


class DependencyFailed(ConnectorError):
    status, code, title = 502, "dependency_failed", "A service we depend on did not answer as expected"


class DependencyTimeout(ConnectorError):
    status, code, title = 504, "dependency_timeout", "A service we depend on is too slow right now"


class SchemaViolation(Exception):
    """A write that the storage schema does not allow: a programming error, never a user's."""
