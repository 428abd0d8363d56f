"""docs/checks.md is generated from the rule registry, lists every rule, and is current."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

from protoc_gen_prism.checks import runner
from protoc_gen_prism.checks.rules import RULES


def test_checks_doc_is_current() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_checks_doc.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_rule_has_an_id_summary_and_example() -> None:
    assert runner.RULE_MODULES
    text = (ROOT / "docs" / "checks.md").read_text()
    assert len(RULES) >= 30
    for rule in RULES.values():
        assert rule.id.isupper() and rule.summary and rule.example
        assert f"#### {rule.id}\n" in text
