"""CUDA against CPU parity: the comparison, and `kb verify --compare` run CPU against CPU (the
machine that runs CI has no GPU; a perturbed value stands in for a device that disagrees)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from helpers import write_concept
from kb.cli import main
from kb.parity import compare_values

SNIPPET = "snippet:\n  code: |\n    import math\n    x = math.pi\n    xs = [0.1, 0.2, 1e-9]\n    assert abs(x - 3.14159) < 1e-5\n"
COMPUTED = (
    "cards:\n"
    "  - {type: computed, id: pi, question: 'pi?', answer: 'round(x, 6)'}\n"
    "  - {type: computed, id: xs, question: 'xs?', answer: 'xs'}\n"
)


@pytest.mark.parametrize(
    "left, right, rtol, agree",
    [
        (1.0, 1.0 + 5e-5, 1e-4, True),
        (1.0, 1.0 + 5e-4, 1e-4, False),
        (1.0, 1.0 + 5e-4, 1e-3, True),  # an entry's own tolerance
        (0.0, 3e-8, 1e-4, True),  # an exact 0 on one device, a tiny number on the other
        ([0.1, 0.2], [0.1, 0.2000001], 1e-4, True),
        ([0.1, 0.2], [0.1, 0.21], 1e-4, False),
        ([0.1, 0.2], [0.1], 1e-4, False),
        ("left", "left", 1e-4, True),
        ("left", "right", 1e-4, False),
        (float("nan"), float("nan"), 1e-4, True),
        (float("inf"), float("inf"), 1e-4, True),
        (float("inf"), 1e308, 1e-4, False),
        (True, True, 1e-4, True),
    ],
)
def test_values_agree_within_the_tolerance(left, right, rtol, agree):
    mismatches = compare_values({"e": {"value": left}}, {"e": {"value": right}}, rtol=rtol)
    assert (not mismatches) is agree, mismatches


def test_a_value_only_one_device_produced_is_a_mismatch():
    (mismatch,) = compare_values({"a": 1, "b": 2}, {"a": 1})
    assert mismatch.expression == "b" and mismatch.why == "missing"


def test_verify_compare_cpu_against_cpu_agrees_and_a_perturbed_value_is_caught(tmp_path, monkeypatch, capsys):
    deck = tmp_path / "deck"
    write_concept(deck, "parity", extra=SNIPPET + COMPUTED)
    monkeypatch.setenv("KB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    code = main(["verify", "--device", "cpu", "--compare", "cpu", "--jobs", "1", "--json"])
    report = json.loads(capsys.readouterr().out)
    (row,) = report["results"]
    assert code == 0 and report["agree"] == 1 and row["values_compared"] == 2 and row["agrees"]
    assert row["cpu_status"] == "passed" and report["environment"].get("torch")

    # The second run stands in for a device whose float32 arithmetic differs in the 3rd digit.
    from kb.service.snippets import SnippetUseCases

    real = SnippetUseCases.verify
    calls = []

    def perturbed(self, *args, **kwargs):
        outcomes = real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            outcomes = [replace(o, values={**o.values, "round(x, 6)": {"value": 3.15}}) for o in outcomes]
        return outcomes

    monkeypatch.setattr(SnippetUseCases, "verify", perturbed)
    code = main(["verify", "--device", "cpu", "--compare", "cpu", "--jobs", "1"])
    out = capsys.readouterr().out
    assert code == 1 and "parity: round(x, 6): differ by 0.00841" in out and "0 of 1 entries agree" in out
