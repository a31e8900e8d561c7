"""Build the function app's zip package, leaving out what .funcignore lists (the gitignore subset Core Tools uses).

Usage: python3 infra/package.py <project-root> <zip-path>
"""

from __future__ import annotations

import os
import sys
import zipfile
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

# Used only when the project has no .funcignore: what never belongs in the deployed package.
DEFAULT_IGNORES = (
    ".git*",
    ".venv",
    ".cache",
    ".vscode",
    ".azurite",
    ".sandbox",
    ".ci",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "node_modules",
    "local.settings.json",
    "tests",
    "infra",
    "bench",
    "test-output",
)


def read_patterns(root: Path) -> list[str]:
    """Patterns from root/.funcignore, or the defaults when there is none."""
    ignore_file = root / ".funcignore"
    if not ignore_file.is_file():
        return list(DEFAULT_IGNORES)
    lines = (line.strip() for line in ignore_file.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _matches(pattern: str, path: PurePosixPath) -> bool:
    """Whether one gitignore-style pattern covers this path or one of its parent folders."""
    body = pattern.strip("/")
    anchored = pattern.startswith("/") or "/" in body
    prefixes = [PurePosixPath(*path.parts[: i + 1]) for i in range(len(path.parts))]
    if anchored:
        return any(fnmatchcase(str(prefix), body) for prefix in prefixes)
    return any(fnmatchcase(part, body) for part in path.parts)


def is_ignored(patterns: list[str], relative_path: str) -> bool:
    """Gitignore semantics for the subset we need: globs, anchored paths, `!` negation, last match wins."""
    path = PurePosixPath(relative_path)
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _matches(pattern[1:] if negated else pattern, path):
            ignored = not negated
    return ignored


def package_members(root: Path, patterns: list[str]) -> list[str]:
    """Files under root that the package keeps, as sorted posix paths; ignored folders are not walked."""
    members: list[str] = []
    for folder, subfolders, files in os.walk(root):
        relative_folder = Path(folder).relative_to(root)
        subfolders[:] = [d for d in subfolders if not is_ignored(patterns, (relative_folder / d).as_posix())]
        members.extend(
            (relative_folder / name).as_posix()
            for name in files
            if not is_ignored(patterns, (relative_folder / name).as_posix())
        )
    return sorted(members)


def build_zip(root: Path, destination: Path) -> list[str]:
    """Write the package to destination and return the archived paths, sorted."""
    destination = destination.resolve()
    members = [
        member
        for member in package_members(root, read_patterns(root))
        if (root / member).resolve() != destination
    ]
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member in members:
            archive.write(root / member, member)
    return members


def main(argv: list[str]) -> int:
    """Command-line entry point."""
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    members = build_zip(Path(argv[1]).resolve(), Path(argv[2]))
    if "function_app.py" not in members:
        print("package has no function_app.py; is the project root right?", file=sys.stderr)
        return 1
    print(f"{len(members)} files packaged into {argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
