"""Fixtures for the infrastructure checks: the Bicep files parsed once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"


@pytest.fixture(scope="session")
def bicep() -> dict[str, dict[str, Any]]:
    """Every .bicep file under infra/, parsed with pycep, keyed by its path relative to infra/."""
    from pycep import BicepParser

    # One parser for the session: its first parse builds the grammar cache (about 10 s on a cold machine).
    parser = BicepParser()
    return {
        path.relative_to(INFRA_DIR).as_posix(): parser.parse(file_path=path)
        for path in sorted(INFRA_DIR.rglob("*.bicep"))
    }
