"""HTTP trigger route templates in ASP.NET Core syntax, with the constraints the Functions host accepts."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime


def _fits_integer(value: str, bits: int) -> bool:
    return re.fullmatch(r"-?\d+", value) is not None and -(2 ** (bits - 1)) <= int(value) < 2 ** (bits - 1)


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _length_within(value: str, argument: str) -> bool:
    bounds = [int(part) for part in argument.split(",")]
    low, high = (bounds[0], bounds[0]) if len(bounds) == 1 else bounds
    return low <= len(value) <= high


def _int_within(value: str, low: float, high: float) -> bool:
    return _fits_integer(value, 64) and low <= int(value) <= high


_CONSTRAINTS: dict[str, Callable[[str, str], bool]] = {
    "int": lambda value, _: _fits_integer(value, 32),
    "long": lambda value, _: _fits_integer(value, 64),
    "bool": lambda value, _: value.lower() in ("true", "false"),
    "alpha": lambda value, _: re.fullmatch(r"[A-Za-z]+", value) is not None,
    "guid": lambda value, _: _is_guid(value),
    "decimal": lambda value, _: _is_number(value),
    "double": lambda value, _: _is_number(value),
    "float": lambda value, _: _is_number(value),
    "datetime": lambda value, _: _is_datetime(value),
    "required": lambda value, _: bool(value),
    "minlength": lambda value, arg: len(value) >= int(arg),
    "maxlength": lambda value, arg: len(value) <= int(arg),
    "length": _length_within,
    "min": lambda value, arg: _int_within(value, int(arg), math.inf),
    "max": lambda value, arg: _int_within(value, -math.inf, int(arg)),
    "range": lambda value, arg: _int_within(value, *(int(part) for part in arg.split(","))),
    "regex": lambda value, arg: re.search(arg, value, re.IGNORECASE) is not None,
}
_CONSTRAINT_CALL = re.compile(r"(\w+)(?:\((.*)\))?", re.DOTALL)


@dataclass(frozen=True)
class RouteParameter:
    """One `{name:constraint?}` of a route template."""

    name: str
    constraints: tuple[tuple[str, str], ...] = ()
    optional: bool = False
    catch_all: bool = False
    default: str | None = None

    @classmethod
    def parse(cls, text: str) -> RouteParameter:
        """Parse the text between the braces: `*rest`, `name?`, `id:int`, `id:int:min(1)`, `name=default`."""
        catch_all = text.startswith("*")
        text = text.lstrip("*")
        optional = text.endswith("?")
        text = text.rstrip("?")
        text, has_default, default = text.partition("=")
        name, *constraint_texts = text.split(":")
        constraints = tuple(_parse_constraint(constraint) for constraint in constraint_texts)
        return cls(name, constraints, optional, catch_all, default if has_default else None)

    def accepts(self, value: str) -> bool:
        """Whether every constraint holds for the value."""
        return all(_CONSTRAINTS[name](value, argument) for name, argument in self.constraints)


def _parse_constraint(text: str) -> tuple[str, str]:
    call = _CONSTRAINT_CALL.fullmatch(text)
    if call is None or call.group(1).lower() not in _CONSTRAINTS:
        raise ValueError(f"unknown route constraint '{text}'")
    return call.group(1).lower(), call.group(2) or ""


_PARAMETER = re.compile(r"\{([^{}]+)\}")
_LITERAL, _COMPLEX, _CONSTRAINED, _PLAIN, _CATCH_ALL = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class RouteTemplate:
    """A compiled route template: literals match case-insensitively, parameters capture path segments."""

    template: str
    pattern: re.Pattern[str]
    parameters: Mapping[str, RouteParameter]
    precedence: tuple[int, ...]

    @classmethod
    def parse(cls, template: str) -> RouteTemplate:
        """Compile a template such as `api/items/{id:int}/{*rest}`."""
        template = template.strip("/")
        parameters: dict[str, RouteParameter] = {}
        pieces, precedence = [], []
        for segment in filter(None, template.split("/")):
            piece, rank = _segment_pattern(segment, parameters)
            pieces.append(piece)
            precedence.append(rank)
        pattern = re.compile("^" + "".join(pieces) + "/?$", re.IGNORECASE | re.DOTALL)
        return cls(template, pattern, parameters, tuple(precedence))

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for a decoded request path, or None when the path (or a constraint) does not match."""
        found = self.pattern.match(path)
        if found is None:
            return None
        values: dict[str, str] = {}
        for group, parameter in self.parameters.items():
            value = found.group(group)
            if not value:
                if parameter.default is not None:
                    values[parameter.name] = parameter.default
                continue
            if not parameter.accepts(value):
                return None
            values[parameter.name] = value
        return values


def _segment_pattern(segment: str, parameters: dict[str, RouteParameter]) -> tuple[str, int]:
    whole = _PARAMETER.fullmatch(segment)
    if whole is not None:
        parameter = RouteParameter.parse(whole.group(1))
        group = _add_parameter(parameters, parameter)
        rank = _CONSTRAINED if parameter.constraints else _PLAIN
        if parameter.catch_all:
            return rf"(?:/(?P<{group}>.*))?", _CATCH_ALL
        if parameter.optional or parameter.default is not None:
            return rf"(?:/(?P<{group}>[^/]+))?", rank
        return rf"/(?P<{group}>[^/]+)", rank
    if "{" not in segment:
        return "/" + re.escape(segment), _LITERAL
    pieces, end = [], 0
    for match in _PARAMETER.finditer(segment):
        group = _add_parameter(parameters, RouteParameter.parse(match.group(1)))
        pieces += [re.escape(segment[end : match.start()]), rf"(?P<{group}>[^/]+)"]
        end = match.end()
    return "/" + "".join([*pieces, re.escape(segment[end:])]), _COMPLEX


def _add_parameter(parameters: dict[str, RouteParameter], parameter: RouteParameter) -> str:
    group = f"p{len(parameters)}"
    parameters[group] = parameter
    return group
