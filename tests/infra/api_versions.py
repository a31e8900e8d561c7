"""The API versions that exist for each resource type infra/ declares, read from Azure/bicep-types-az.

bicep-types-az is generated from the Azure REST API specs and is what the Bicep compiler itself type-checks with;
each `generated/<provider>/<namespace>/<version>/types.md` names its resource types as `## Resource <type>@<version>`.
Regenerate the committed list (tests/infra/data/api-versions.json) from a clone of that repository; a bare clone
(or mirror) works as well, since only `git grep HEAD` and `git log` read it:

    git clone --filter=blob:none https://github.com/Azure/bicep-types-az /tmp/bicep-types-az
    .venv/bin/python -m tests.infra.api_versions /tmp/bicep-types-az

The data file records the commit it was generated from (`commit`, `commit_date`); every entry comes from the
generated types, none is added by hand.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
DATA_FILE = Path(__file__).with_name("data") / "api-versions.json"
SOURCE = "https://github.com/Azure/bicep-types-az"
RESOURCE_DECLARATION = re.compile(r"^resource \w+ '([\w./]+)@([\w-]+)'", re.MULTILINE)
RESOURCE_HEADING = re.compile(r"^## Resource ([\w./]+)@([\w-]+)", re.MULTILINE)


def declared_types() -> dict[str, set[str]]:
    """Every resource type the Bicep files use, with the API versions they use it at."""
    used: dict[str, set[str]] = {}
    for path in sorted(INFRA_DIR.rglob("*.bicep")):
        for resource_type, version in RESOURCE_DECLARATION.findall(path.read_text()):
            used.setdefault(resource_type, set()).add(version)
    return used


def existing_versions(clone: Path, resource_types: set[str]) -> dict[str, list[str]]:
    """API versions bicep-types-az generates for each of these types (case-insensitive type names, as ARM)."""
    headings = subprocess.run(
        ["git", "-C", str(clone), "grep", "-h", "^## Resource ", "HEAD", "--", "generated/*types.md"],
        capture_output=True, text=True, check=True,
    ).stdout
    wanted = {name.lower(): name for name in resource_types}
    versions: dict[str, set[str]] = {name: set() for name in resource_types}
    for resource_type, version in RESOURCE_HEADING.findall(headings):
        if resource_type.lower() in wanted:
            versions[wanted[resource_type.lower()]].add(version)
    return {name: sorted(found) for name, found in sorted(versions.items())}


def main(clone: Path) -> None:
    """Write the data file for the types infra/ declares now."""
    commit = subprocess.run(
        ["git", "-C", str(clone), "log", "-1", "--format=%H %cI"], capture_output=True, text=True, check=True
    ).stdout.split()
    versions = existing_versions(clone, set(declared_types()))
    missing = [name for name, found in versions.items() if not found]
    if missing:
        sys.exit(f"bicep-types-az has no versions of {missing}: check the type names")
    data = {
        "source": SOURCE,
        "commit": commit[0],
        "commit_date": commit[1],
        "generated": datetime.now(UTC).date().isoformat(),
        "regenerate": "python -m tests.infra.api_versions <clone of bicep-types-az>",
        "versions": versions,
    }
    DATA_FILE.write_text(json.dumps(data, indent=2) + "\n")
    print(f"{DATA_FILE}: {len(versions)} resource types from {SOURCE} at {commit[0][:12]} ({commit[1]})")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
