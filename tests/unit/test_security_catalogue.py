"""SECURITY.md's attack catalogue is what tests/security/ holds, and every security test names its attack."""

from __future__ import annotations

import pytest

from tests.security import catalogue


def test_security_md_catalogue_is_up_to_date():
    current = catalogue.SECURITY_MD.read_text(encoding="utf-8")
    assert catalogue.replaced(current, catalogue.render()) == current, (
        "SECURITY.md's attack catalogue is out of date: run `make security-catalogue` and commit SECURITY.md")


def test_every_security_test_names_its_attack_in_a_one_line_docstring():
    unnamed = [f"{attack.module}::{attack.name}" for _doc, attacks in catalogue.modules().values()
               for attack in attacks if not attack.attack]
    assert not unnamed, f"give each a one-line docstring naming the attack: {unnamed}"


def test_the_catalogue_lists_tests_by_module_with_their_docstrings(tmp_path):
    (tmp_path / "test_forged_things.py").write_text(
        '"""Forged things."""\n\n\ndef test_forged_cookie():\n    """A forged cookie is refused."""\n\n\n'
        'class TestReplays:\n    def test_replayed_code(self):\n        """A replayed code is refused."""\n',
        encoding="utf-8")
    (tmp_path / "helpers.py").write_text("def test_not_a_test_module(): ...\n", encoding="utf-8")
    text = catalogue.render(tmp_path)
    assert text.startswith("2 attacks in 1 modules")
    assert "#### `test_forged_things.py`: Forged things." in text
    assert "- A forged cookie is refused. (`test_forged_cookie`)" in text
    assert "- A replayed code is refused. (`TestReplays.test_replayed_code`)" in text
    assert "not_a_test_module" not in text


def test_markers_must_be_there():
    with pytest.raises(ValueError, match="markers"):
        catalogue.replaced("# SECURITY\n", "anything\n")
