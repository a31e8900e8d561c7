"""Handlers import their shared/ service on first call, so a cold instance answers its first request sooner."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    """A module imported on first attribute access (the import system's own lock makes this thread-safe)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self.__name__), attribute)


def lazy(name: str) -> Any:
    """`name` as a module whose import waits until a handler first uses it."""
    return LazyModule(name)
