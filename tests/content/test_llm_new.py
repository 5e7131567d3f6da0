"""New LLM entries: perplexity, lora, mixture-of-experts, dpo, weight-quantization-llm, scaling-laws.

Two kinds of checks: the snippets' values against oracles written here outside the snippets (numpy,
scipy, torchmetrics and torch's own FLOP counter; a test skips when its package is missing), and
every computed card against its worked value, with the expected numbers typed here independently of
the snippets (worked by hand in the comments).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers import as_float64 as _np
from kb.schema import Concept

IDS = ("perplexity", "lora", "mixture-of-experts", "dpo", "weight-quantization-llm", "scaling-laws")


# structure ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("concept_id", IDS)
def test_entry_structure(concept_id, load_entry):
    # The bar every entry meets is tests/content/test_every_entry.py; this adds what these entries promise.
    concept = Concept.model_validate(load_entry(concept_id))
    assert concept.id == concept_id and concept.category == "llm"
    assert concept.formulas and concept.snippet and len(concept.pitfalls) >= 3
    assert "computed-card" in concept.tags
    assert sum(card.type == "computed" for card in concept.cards) >= 2
    assert len({card.type for card in concept.cards}) >= 4
    assert all(s.url.startswith(("https://arxiv.org/", "https://docs.pytorch.org/")) for s in concept.sources)


@pytest.mark.parametrize("concept_id", IDS)
def test_snippet_is_quick_and_prints(concept_id, snippet_seconds, snippet_output):
    assert snippet_seconds(concept_id) < 1.0
    assert snippet_output(concept_id).strip()


# perplexity ---------------------------------------------------------------------------------------


def test_perplexity_matches_scipy_log_softmax(run_entry):
    special = pytest.importorskip("scipy.special")
    ns = run_entry("perplexity")
    logp = special.log_softmax(ns["logits_np"], axis=-1)
    nll = -np.take_along_axis(logp, ns["targets_np"][..., None], axis=-1).mean()
    assert ns["ppl"] == pytest.approx(math.exp(nll), rel=1e-12)


def test_perplexity_matches_torchmetrics_with_padding(run_entry):
    text = pytest.importorskip("torchmetrics.functional.text")
    ns = run_entry("perplexity")
    logits, padded = ns["logits"].cpu(), ns["padded"].cpu()
    assert float(text.perplexity(logits, ns["targets"].cpu())) == pytest.approx(ns["ppl"], rel=1e-9)
    assert float(text.perplexity(logits, padded, ignore_index=-100)) == pytest.approx(ns["ppl_pad"], rel=1e-9)


def test_perplexity_cards(computed_value):
    # Uniform over V tokens: every target has probability 1/V, mean NLL ln V, perplexity V = 50257.
    assert computed_value("perplexity", "uniform-gpt2") == 50257
    # (2 * 4 * 8 * 2)^(1/4) = 128^(1/4) = 2^(7/4) = 3.36359.
    assert computed_value("perplexity", "four-probabilities") == 3.3636
    # Pooled: exp((2 ln 2 + 6 ln 8) / 8) = exp(20 ln 2 / 8) = 2^2.5 = 5.65685; mean of 2 and 8 = 5.
    assert computed_value("perplexity", "corpus-vs-mean") == [5.6569, 5.0]


# lora ---------------------------------------------------------------------------------------------


def test_lora_merge_and_rank_in_numpy(run_entry):
    ns = run_entry("lora")
    lora, x = ns["lora"], _np(ns["x"])
    W, b = _np(lora.base.weight.detach()), _np(lora.base.bias.detach())
    A, B = _np(lora.A.detach()), _np(lora.B.detach())
    scale = ns["alpha"] / ns["r"]
    expected = x @ (W + scale * B @ A).T + b
    np.testing.assert_allclose(_np(ns["y_merged"]), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(x @ W.T + b + scale * (x @ A.T) @ B.T, expected, rtol=0, atol=1e-12)
    assert np.linalg.matrix_rank(B @ A) == ns["r"] == ns["rank_delta"]


def test_lora_cards(computed_value):
    # A: 8 x 4096, B: 4096 x 8 -> 8*4096 + 4096*8 = 32,768 + 32,768 = 65,536.
    assert computed_value("lora", "params-4096-rank8") == 65_536
    # 65,536 / 16,777,216 = 1/256 = 0.390625% -> 0.39.
    assert computed_value("lora", "share-4096-rank8") == 0.39
    # 32 layers * 2 matrices * 65,536 = 4,194,304.
    assert computed_value("lora", "qv-32-layers") == 4_194_304


# mixture-of-experts -------------------------------------------------------------------------------


def test_moe_matches_numpy_top2_with_scipy_softmax(run_entry):
    special = pytest.importorskip("scipy.special")
    ns = run_entry("mixture-of-experts")
    x, Wg = _np(ns["x"]), _np(ns["W_g"])
    W1, W3, W2 = _np(ns["W1"]), _np(ns["W3"]), _np(ns["W2"])
    k = ns["k"]
    logits = x @ Wg.T
    y = np.zeros_like(x)
    for t in range(x.shape[0]):
        top = np.argsort(-logits[t])[:k]
        gates = special.softmax(logits[t, top])
        for gate, i in zip(gates, top):
            h = x[t] @ W1[i].T
            silu = h * special.expit(h)
            y[t] += gate * ((silu * (x[t] @ W3[i].T)) @ W2[i].T)
    np.testing.assert_allclose(_np(ns["y_sparse"]), y, rtol=0, atol=1e-12)


def test_moe_load_balancing_in_numpy(run_entry):
    ns = run_entry("mixture-of-experts")
    probs = _np(ns["toy_probs"])
    n_tok, n_exp = probs.shape
    f = np.bincount(probs.argmax(1), minlength=n_exp) / n_tok
    assert ns["lb_toy"] == pytest.approx(n_exp * float(f @ probs.mean(0)), abs=1e-12)
    # A uniform router gives exactly 1 whatever the (tied) dispatch.
    assert ns["lb_uniform"] == pytest.approx(1.0, abs=1e-12)


def test_moe_cards(computed_value):
    # f = [2, 1, 1, 0] / 4, P = [1.6, 0.9, 1.0, 0.5] / 4; 4 * (0.2 + 0.05625 + 0.0625 + 0) = 1.275.
    assert computed_value("mixture-of-experts", "toy-balance-loss") == 1.275
    # One expert: 3 * 4096 * 14336 = 176,160,768; x8 = 1,409,286,144; x2 = 352,321,536.
    assert computed_value("mixture-of-experts", "layer-params") == [1_409_286_144, 352_321_536]
    # 1.25 * 4096 / 8 = 640.
    assert computed_value("mixture-of-experts", "capacity") == 640


# dpo ----------------------------------------------------------------------------------------------


def test_dpo_loss_matches_scipy_log_expit(run_entry):
    special = pytest.importorskip("scipy.special")
    ns = run_entry("dpo")
    margin = ns["beta"] * ((_np(ns["pol_w"]) - _np(ns["ref_w"])) - (_np(ns["pol_l"]) - _np(ns["ref_l"])))
    assert float(ns["loss_torch"]) == pytest.approx(-special.log_expit(margin).mean(), rel=1e-12)


def test_dpo_population_optimum_is_the_rlhf_policy(run_entry):
    """Minimise the population DPO loss with scipy and compare with pi_ref exp(r / beta) / Z."""
    optimize = pytest.importorskip("scipy.optimize")
    special = pytest.importorskip("scipy.special")
    ns = run_entry("dpo")
    r, log_ref, beta = _np(ns["r"]), _np(ns["log_ref"]), ns["beta_rl"]
    p_pref = special.expit(r[:, None] - r[None, :])

    def loss(theta):
        logp = theta - special.logsumexp(theta)
        h = beta * ((logp - log_ref)[:, None] - (logp - log_ref)[None, :])
        return -(p_pref * special.log_expit(h)).sum()

    res = optimize.minimize(loss, log_ref.copy(), method="BFGS", options={"gtol": 1e-10})
    log_pi = res.x - special.logsumexp(res.x)
    log_star = log_ref + r / beta - special.logsumexp(log_ref + r / beta)
    np.testing.assert_allclose(log_pi, log_star, atol=1e-5)
    np.testing.assert_allclose(log_star, _np(ns["log_star"]), atol=1e-12)


def test_dpo_cards(computed_value):
    # margin 0.1 * ((-12 + 13) - (-15 + 14)) = 0.2; -log sigmoid(0.2) = log(1 + e^-0.2) = 0.598139.
    assert computed_value("dpo", "worked-loss") == 0.5981
    # beta * (log pi - log pi_ref): 0.1 * 1 and 0.1 * (-1).
    assert computed_value("dpo", "worked-rewards") == [0.1, -0.1]


# weight-quantization-llm --------------------------------------------------------------------------


def test_quantization_matches_numpy(run_entry):
    ns = run_entry("weight-quantization-llm")
    W = _np(ns["W"]).astype(np.float32)
    scale = np.abs(W).max() / np.float32(127)
    q = np.clip(np.rint(W / scale), -127, 127)  # np.rint rounds halves to even, like torch.round
    np.testing.assert_array_equal(q, ns["q_abs"].cpu().numpy())
    W_skew = _np(ns["W_skew"]).astype(np.float32)
    lo, hi = min(W_skew.min(), 0.0), max(W_skew.max(), 0.0)
    s_zp = (hi - lo) / 255
    zp = int(np.clip(round(-lo / s_zp), 0, 255))
    assert zp == ns["zp"] and s_zp == pytest.approx(ns["s_zp"], rel=1e-6)
    q_zp = np.clip(np.rint(W_skew / np.float32(ns["s_zp"])) + zp, 0, 255)
    np.testing.assert_array_equal(q_zp, ns["q_zp"].cpu().numpy())
    assert np.abs(W_skew - (q_zp - zp) * ns["s_zp"]).max() <= ns["s_zp"] / 2 * (1 + 1e-5)


def test_quantization_cards(computed_value):
    # s = 1.27 / 127 = 0.01: [0.5, -1.27, 0.02, 1.0] / 0.01 = [50, -127, 2, 100].
    assert computed_value("weight-quantization-llm", "absmax-toy") == [50, -127, 2, 100]
    # s = 1/255, z = round(0.2 * 255) = 51; 63.75 -> 64 (+51 = 115); 204 + 51 = 255.
    assert computed_value("weight-quantization-llm", "zeropoint-toy") == [51, [0, 51, 115, 255]]
    # 7e9 * (4 + 16/128) / 8 = 7e9 * 0.515625 = 3.609e9 bytes.
    assert computed_value("weight-quantization-llm", "int4-7b-memory") == 3.61
    # (m / 127) / (m / 255) = 255 / 127 = 2.00787.
    assert computed_value("weight-quantization-llm", "nonnegative-step") == 2.0079


# scaling-laws -------------------------------------------------------------------------------------


def test_six_nd_matches_torch_flop_counter(run_entry):
    """torch's own FLOP counter on the snippet's network: 2ND forward, 6ND forward plus backward."""
    flop_counter = pytest.importorskip("torch.utils.flop_counter")
    ns = run_entry("scaling-laws")
    net, n, d = ns["net"], ns["N_toy"], ns["D_toy"]
    x = torch.randn(d, ns["widths"][0], dtype=torch.float64, device=ns["x"].device, requires_grad=True)
    with flop_counter.FlopCounterMode(display=False) as forward:
        y = net(x)
    with flop_counter.FlopCounterMode(display=False) as backward:
        y.pow(2).sum().backward()
    assert forward.get_total_flops() == 2 * n * d == ns["fwd_flops"]
    assert backward.get_total_flops() == 4 * n * d == ns["bwd_flops"]


def test_chinchilla_optimum_matches_scipy_minimize(run_entry):
    optimize = pytest.importorskip("scipy.optimize")
    ns = run_entry("scaling-laws")
    c = 6 * 70e9 * 1.4e12

    def loss(log10_n):
        n = 10**log10_n
        return 1.69 + 406.4 / n**0.34 + 410.7 / (c / (6 * n)) ** 0.28

    res = optimize.minimize_scalar(loss, bounds=(9, 12), method="bounded", options={"xatol": 1e-10})
    assert 10**res.x == pytest.approx(ns["n_fit"], rel=1e-6)
    assert ns["exponent_n"] == pytest.approx(0.28 / 0.62, rel=1e-12)


def test_scaling_cards(computed_value):
    # 6 * 7e9 * 1.4e12 = 58.8e21 = 5.88e22.
    assert computed_value("scaling-laws", "compute-7b-1p4t") == 5.88e22
    # N = sqrt(1e24 / 120) = sqrt(8.333e21) = 9.1287e10; D = 20 N = 1.8257e12.
    assert computed_value("scaling-laws", "optimal-1e24") == [91.3, 1.83]
    # G = (0.34*406.4 / (0.28*410.7))^(1/0.62) = 1.2016^1.6129 = 1.345; N = G (9.8e22)^0.4516 = 3.25e10;
    # D = 9.8e22 / N = 3.02e12; D / N = 92.8 -> 93.
    assert computed_value("scaling-laws", "published-fit-ratio") == 93
    # 10^-0.076 = e^(-0.076 * 2.302585) = e^-0.174996 = 0.83946.
    assert computed_value("scaling-laws", "kaplan-10x") == 0.8395
    # 1e12 / 7e9 = 142.86 -> 143.
    assert computed_value("scaling-laws", "tokens-per-param-7b") == 143
