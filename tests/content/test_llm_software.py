"""The llm entries and the software entry: structure, computed-card values and oracles.

Expected numbers are typed here independently of the snippets (closed forms, or the worked values
at the precision each card shows). Oracles outside numpy/torch (scipy) are skipped when the package
is missing.
"""

from __future__ import annotations

import math
import os

import pytest

from kb.schema import Concept

LLM_IDS = (
    "bert",
    "large-language-model",
    "3d-parallelism",
    "zero-optimizer",
    "hhh-alignment",
    "rlhf",
    "emergent-abilities",
)
IDS = (*LLM_IDS, "hard-coding")


# structure ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("concept_id", IDS)
def test_entry_structure(concept_id, load_entry):
    # The bar every entry meets (file, ids, cards, sources, aliases) is tests/content/test_every_entry.py.
    concept = Concept.model_validate(load_entry(concept_id))
    category = "software" if concept_id == "hard-coding" else "llm"
    assert concept.id == concept_id and concept.category == category
    assert concept.formulas and concept.snippet and concept.sources and concept.pitfalls


def test_merged_ids_are_aliases(load_entry):
    aliases = load_entry("bert")["aliases"]
    assert "masked-language-model" in aliases and "next-sentence-prediction" in aliases
    assert "MLM" in aliases and "NSP" in aliases


def test_requires(load_entry):
    assert load_entry("hard-coding")["snippet"]["requires"] == ["numpy"]
    assert load_entry("emergent-abilities")["snippet"]["requires"] == ["numpy"]
    assert load_entry("hhh-alignment")["snippet"]["requires"] == ["numpy"]


@pytest.mark.parametrize("concept_id", IDS)
def test_snippet_is_fast(concept_id, snippet_seconds):
    # < 1 s after imports on one core; generous bound for a shared machine.
    assert snippet_seconds(concept_id) < 5.0


# computed-card values ----------------------------------------------------------------------------


def test_llama_7b(computed_value):
    # LLaMA-7B has 6,738,415,616 parameters.
    assert computed_value("large-language-model", "llama-7b-params") == 6_738_415_616


def test_zero_memory(computed_value):
    # ZeRO's figure 1: 120 / 31.4 / 16.6 / 1.9 GB.
    assert computed_value("zero-optimizer", "figure1-memory") == 120.0
    assert computed_value("zero-optimizer", "stage1-memory") == 31.4
    assert computed_value("zero-optimizer", "stage3-memory") == 1.9


def test_rm_loss_at_zero(computed_value):
    # The reward-model loss at zero margin is ln 2 = 0.693.
    assert computed_value("rlhf", "loss-at-zero-margin") == pytest.approx(0.6931, abs=1e-4)
    assert round(computed_value("rlhf", "loss-at-zero-margin"), 3) == 0.693


def test_exact_match(computed_value):
    # Exact match over 10 tokens: 0.349 (p=0.9), 0.001 (p=0.5).
    assert computed_value("emergent-abilities", "em-p09-k10") == 0.349
    assert computed_value("emergent-abilities", "em-p05-k10") == 0.001


def test_bert_base(computed_value):
    # BERT-base: 109,482,240 parameters (the HF BertModel count).
    assert computed_value("bert", "bert-base-params") == 109_482_240


def test_gpipe_bubble(computed_value):
    # GPipe bubble with 4 stages and 8 micro-batches: 3/11 = 0.273.
    assert round(computed_value("3d-parallelism", "gpipe-bubble-4-8"), 3) == 0.273


def test_get_lr(computed_value):
    # get_lr: 0.01 with KB_LR=0.01, 0.001 without.
    assert computed_value("hard-coding", "get-lr-env-and-default") == [0.01, 0.001]


# other cards against closed forms typed here -------------------------------------------------------


def test_llm_size_and_parallelism_values(computed_value, run_entry):
    # One BERT-base layer has 7,087,872 parameters; GPT-3 12 L d^2 = 173.9B.
    assert run_entry("bert")["layer_base"] == 7_087_872
    assert computed_value("bert", "bert-large-params") == 335_141_888
    assert computed_value("bert", "mask-share") == 0.12
    assert computed_value("large-language-model", "gpt3-12ld2") == 173.9
    assert computed_value("large-language-model", "fp16-weights-7b") == 13.5
    assert computed_value("large-language-model", "gpt3-compute") == pytest.approx(3.15e23)
    assert computed_value("3d-parallelism", "megatron-ratio-4-8") == 0.375
    assert computed_value("3d-parallelism", "gpu-count") == 512
    assert computed_value("zero-optimizer", "bytes-per-param") == 16
    assert computed_value("zero-optimizer", "stage3-capacity") == 320
    assert computed_value("rlhf", "instructgpt-pairs") == 36
    assert computed_value("hhh-alignment", "elo-62") == round(400 * math.log10(0.62 / 0.38), 1) == 85.0
    assert computed_value("hard-coding", "environ-type") == "'0.01'"


def test_mlm_fractions(run_entry):
    ns = run_entry("bert")
    assert abs(ns["frac_selected"] - 0.15) < 0.01
    assert abs(ns["frac_mask"] - 0.8) < 0.03
    assert abs(ns["frac_random"] - 0.1) < 0.02 and abs(ns["frac_kept"] - 0.1) < 0.02
    assert ns["segments"] == [0] * 7 + [1] * 5


def test_hard_coding_restores_environment(run_entry):
    before = os.environ.get("KB_LR")
    run_entry("hard-coding")
    assert os.environ.get("KB_LR") == before


# oracles outside numpy/torch -------------------------------------------------------------------------


def test_hhh_binomtest_oracle(run_entry, computed_value):
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("hhh-alignment")
    result = stats.binomtest(62, 100)
    ci = result.proportion_ci(confidence_level=0.95)
    assert ns["p_value"] == pytest.approx(result.pvalue, rel=1e-9)
    assert ns["ci_low"] == pytest.approx(ci.low, abs=1e-9) and ns["ci_high"] == pytest.approx(ci.high, abs=1e-9)
    assert ns["p_value_sign"] == pytest.approx(stats.binomtest(55, 86).pvalue, rel=1e-9)
    assert ns["p_value_small"] == pytest.approx(stats.binomtest(12, 20).pvalue, rel=1e-9)
    # (0.517, 0.715), p = 0.021.
    assert computed_value("hhh-alignment", "ci-62") == [0.517, 0.715]
    assert computed_value("hhh-alignment", "p-value-62") == 0.021


def test_emergence_binomial_oracle(run_entry):
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("emergent-abilities")
    # Exact match of k independent tokens is P(Binomial(k, p) = k).
    assert ns["em_09"] == pytest.approx(stats.binom.pmf(10, 10, 0.9), rel=1e-12)
    assert ns["em_05"] == pytest.approx(stats.binom.pmf(10, 10, 0.5), rel=1e-12)


def test_rlhf_optimal_policy_oracle(run_entry):
    special = pytest.importorskip("scipy.special")
    ns = run_entry("rlhf")
    r = ns["r"].cpu().numpy()
    log_ref = ns["pi_ref"].log().cpu().numpy()
    expected = special.softmax(log_ref + r / ns["beta"])
    assert ns["pi_star"].cpu().numpy() == pytest.approx(expected, abs=1e-12)
    assert ns["rm_loss"].item() == pytest.approx(-special.log_expit(ns["margin"].cpu().numpy()).mean(), rel=1e-12)
