"""The README stays true: its YAML example loads, and CI runs its test command."""

from __future__ import annotations

import re
from pathlib import Path

from kb.loader import parse_bytes

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_yaml_example_is_a_valid_concept():
    (example,) = [block for block in re.findall(r"```yaml\n(.*?)```", README, re.DOTALL) if "id: softmax" in block]
    result = parse_bytes(Path("README-example.yaml"), example.encode())
    assert result.errors == []
    assert [c.type for c in result.concept.cards] == ["basic", "cloze", "choice", "typed", "computed"]


def test_ci_runs_the_readme_test_command():
    first_block = re.search(r"```sh\n(.*?)```", README, re.DOTALL).group(1).strip().splitlines()
    assert len(first_block) == 2
    test_command = first_block[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci[-1] == test_command
    assert "torch==2.13.0" in first_block[0]
