"""infra/package.py builds the zip deploy.sh publishes when Core Tools is absent, honouring .funcignore."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.infra.conftest import INFRA_DIR

# infra/ is a folder of scripts, not a package: load the file under a name of its own.
_spec = importlib.util.spec_from_file_location("infra_package", INFRA_DIR / "package.py")
assert _spec and _spec.loader
package = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(package)

PROJECT_FILES = (
    "function_app.py",
    "host.json",
    "requirements.txt",
    "shared/settings.py",
    "shared/__pycache__/settings.cpython-311.pyc",
    "functions/launch.py",
    "tests/test_launch.py",
    ".venv/lib/site.py",
    "local.settings.json",
    "docs/setup.md",
    "docs/keep.md",
    "sandbox/config/local.settings.json",
)


def make_project(root: Path, funcignore: str | None) -> Path:
    """A small project tree, with the given .funcignore (or none)."""
    for name in PROJECT_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"# {name}\n")
    if funcignore is not None:
        (root / ".funcignore").write_text(funcignore)
    return root


def test_funcignore_globs_anchors_and_negation(tmp_path: Path) -> None:
    patterns = ["# comment", ".venv", "tests/", "__pycache__", "/local.settings.json", "docs/*.md", "!docs/keep.md"]
    root = make_project(tmp_path, "\n".join(patterns) + "\n")
    members = package.build_zip(root, tmp_path / "app.zip")
    assert members == [
        ".funcignore",
        "docs/keep.md",
        "function_app.py",
        "functions/launch.py",
        "host.json",
        "requirements.txt",
        "sandbox/config/local.settings.json",  # the pattern is anchored to the root
        "shared/settings.py",
    ]
    with zipfile.ZipFile(tmp_path / "app.zip") as archive:
        assert sorted(archive.namelist()) == members
        assert archive.read("function_app.py") == b"# function_app.py\n"


def test_defaults_apply_without_funcignore(tmp_path: Path) -> None:
    members = package.build_zip(make_project(tmp_path, None), tmp_path / "out.zip")
    assert "function_app.py" in members
    assert not [m for m in members if m.startswith(("tests/", ".venv/")) or m.endswith((".pyc", "local.settings.json"))]


def test_command_line_refuses_a_folder_without_the_function_app(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("not an app\n")
    result = subprocess.run(
        [sys.executable, str(INFRA_DIR / "package.py"), str(tmp_path), str(tmp_path / "app.zip")],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert "function_app.py" in result.stderr
