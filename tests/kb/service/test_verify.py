"""kb verify through the service and the CLI: verdicts recorded, YAML lines, trust, --changed."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from helpers import FIXED_NOW, backend_url, concept_yaml, write_concept
from kb.cli import main
from kb.config import BUNDLED_CONTENT, Settings
from kb.service import KnowledgeBase

pytestmark = pytest.mark.both_backends


def snippet_block(code: str, extra: str = "") -> str:
    body = textwrap.indent(textwrap.dedent(code).strip() + "\n", "    ")
    return "snippet:\n  requires: [numpy]\n" + extra + "  code: |\n" + body


FAILING = snippet_block(
    """
    import numpy as np
    x = np.arange(3)
    assert x.sum() == 4, "sum should be 4"
    """
)
PASSING = (
    snippet_block(
        """
    import numpy as np
    x = np.arange(4).reshape(2, 2)
    print("trace", np.trace(x))
    assert np.trace(x) == 3
    """
    )
    + "cards:\n  - {type: computed, id: shape, question: Shape?, answer: 'tuple(x.shape)'}\n"
)


def test_bundled_exemplary_entries_pass(tmp_path):
    settings = Settings(home=tmp_path / "home", bundled_content=BUNDLED_CONTENT, database_url=backend_url())
    with KnowledgeBase(settings, clock=lambda: FIXED_NOW) as kb:
        kb.sync()
        outcomes = kb.verify(jobs=2)
        by_id = {o.id: o for o in outcomes}
        for cid in ("softmax", "self-attention", "ema-weights", "kl-divergence", "psnr"):
            assert by_id[cid].status == "passed", (cid, by_id[cid].message, by_id[cid].output[-2000:])
        run = kb.show("softmax")["last_run"]
        assert run["status"] == "passed" and run["device"] == "cpu"
        assert run["torch_version"] and run["numpy_version"] and run["python_version"]
        assert [0.2689, 0.7311] in [v["value"] for v in run["values"].values()]


def test_failing_assert_reported_at_its_yaml_line(kb, deck):
    path = write_concept(deck, "failing", extra=FAILING)
    kb.sync()
    (outcome,) = kb.verify()
    assert outcome.status == "failed"
    assert outcome.message == "AssertionError: sum should be 4"
    line = path.read_text().splitlines()[outcome.line - 1]
    assert line.strip() == 'assert x.sum() == 4, "sum should be 4"'


def test_passing_snippet_records_output_and_computed_values(kb, deck):
    write_concept(deck, "passing", extra=PASSING)
    kb.sync()
    (outcome,) = kb.verify()
    assert outcome.passed
    run = kb.show("passing")["last_run"]
    assert "trace 3" in run["output"]
    assert run["values"]["tuple(x.shape)"] == {"value": [2, 2], "text": "(2, 2)"}
    assert run["created_at"] == FIXED_NOW.isoformat()


def test_changed_skips_unchanged_and_reruns_edited(kb, deck):
    path = write_concept(deck, "passing", extra=PASSING)
    kb.sync()
    assert [o.id for o in kb.verify(changed_only=True)] == ["passing"]
    assert kb.verify(changed_only=True) == []
    path.write_text(concept_yaml("passing", extra=PASSING.replace("== 3", "== 3.0")), encoding="utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    kb.sync()
    assert [o.id for o in kb.verify(changed_only=True)] == ["passing"]


def test_failed_snippet_is_retried_by_changed(kb, deck):
    write_concept(deck, "failing", extra=FAILING)
    kb.sync()
    kb.verify()
    assert [o.status for o in kb.verify(changed_only=True)] == ["failed"]


def test_untrusted_deck_never_runs_until_trusted(tmp_path, deck):
    lab = tmp_path / "lab"
    write_concept(lab, "lab-note", extra=snippet_block("print('the lab snippet ran')"))
    settings = Settings(home=tmp_path / "home", bundled_content=deck, extra_content=(lab,), database_url=backend_url())
    with KnowledgeBase(settings, clock=lambda: FIXED_NOW) as kb:
        kb.sync()
        (outcome,) = kb.verify()
        assert outcome.status == "untrusted" and not outcome.ran
        assert "run `kb trust lab`" in outcome.message
        assert kb.run_snippet("lab-note").status == "untrusted"
        assert kb.show("lab-note")["last_run"] is None  # nothing ran, nothing recorded
        deck_, count = kb.trust("lab")
        assert (deck_.path, count) == (lab, 1)
        (outcome,) = kb.verify()
        assert outcome.status == "passed" and "the lab snippet ran" in outcome.output  # trusted now: it really ran


def test_device_restriction_skips_when_unavailable(kb, deck):
    write_concept(deck, "gpu-only", extra=snippet_block("x = 1", extra="  devices: [cuda]\n"))
    kb.sync()
    if "cuda" in kb.devices():
        pytest.skip("this machine has CUDA; the skip path is for CPU-only machines")
    (outcome,) = kb.verify()
    assert outcome.status == "skipped" and "needs cuda" in outcome.message


def test_run_snippet_streams_output(kb, deck):
    write_concept(deck, "passing", extra=PASSING)
    kb.sync()
    chunks: list[str] = []
    outcome = kb.run_snippet("passing", on_output=chunks.append)
    assert outcome.passed
    assert "trace 3" in "".join(chunks)
    # The worker stays warm for the next run.
    assert kb.run_snippet("passing").passed


def test_cli_verify_json_and_exit_code(tmp_path, monkeypatch, capsys, deck):
    monkeypatch.setenv("KB_HOME", str(tmp_path / "home"))
    lab = tmp_path / "lab"
    write_concept(lab, "failing", extra=FAILING)
    write_concept(lab, "passing", extra=PASSING)
    monkeypatch.setenv("KB_CONTENT", str(lab))
    assert main(["trust", "lab"]) == 0
    capsys.readouterr()
    code = main(["verify", "failing", "passing", "--json", "--jobs", "1"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 1
    assert payload["passed"] == 1 and payload["failed"] == 1
    assert [r["id"] for r in payload["results"]] == ["failing", "passing"]
    assert set(payload["results"][0]) == {"id", "status", "device", "duration_s", "message"}
    code = main(["verify", "failing"])
    out = capsys.readouterr().out
    assert code == 1 and "AssertionError: sum should be 4" in out and "failing.yaml:" in out


def test_cli_verify_bad_arguments(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KB_HOME", str(tmp_path / "home"))
    assert main(["verify", "--jobs", "0"]) == 1
    assert capsys.readouterr().err == "kb: --jobs must be at least 1\n"
    assert main(["verify", "no-such-concept"]) == 1
    assert capsys.readouterr().err.startswith("kb: no concept with id 'no-such-concept'")


@pytest.mark.skipif(not os.path.exists("/dev/nvidiactl"), reason="needs a CUDA machine to compare CPU and CUDA runs")
def test_cpu_and_cuda_agree_on_bundled_content(tmp_path):
    settings = Settings(home=tmp_path / "home", bundled_content=BUNDLED_CONTENT, database_url=backend_url())
    with KnowledgeBase(settings, clock=lambda: FIXED_NOW) as kb:
        kb.sync()
        if "cuda" not in kb.devices():
            pytest.skip("torch sees no CUDA device")
        cpu = {o.id: o for o in kb.verify(device="cpu")}
        cuda = {o.id: o for o in kb.verify(device="cuda")}
        for cid, outcome in cuda.items():
            assert outcome.status == cpu[cid].status == "passed", (cid, outcome.message)
            for expr, value in (cpu[cid].values or {}).items():
                assert outcome.values[expr]["text"] == value["text"], (cid, expr)
