"""Training, second batch: dropout, batch-normalization, gradient-clipping, mixed-precision,
knowledge-distillation, regression-losses, focal-loss, contrastive-infonce.

Structural checks, the snippets' values against oracles outside torch (numpy's own float16, scipy,
scikit-learn; each test skips when its package is missing), and every computed card pinned to its
worked value, typed here independently of the snippets (the arithmetic in the comments).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import as_float64 as _np
from kb.schema import Concept

IDS = (
    "dropout",
    "batch-normalization",
    "gradient-clipping",
    "mixed-precision",
    "knowledge-distillation",
    "regression-losses",
    "focal-loss",
    "contrastive-infonce",
)


@pytest.fixture(params=IDS)
def concept_id(request) -> str:
    return request.param


# structure ----------------------------------------------------------------------------------------


def test_entry_structure(concept_id, load_entry):
    # The bar every entry meets (file, ids, cards, sources, aliases) is tests/content/test_every_entry.py.
    concept = Concept.model_validate(load_entry(concept_id))
    assert concept.id == concept_id and concept.category == "training"
    assert "computed-card" in concept.tags and any(card.type == "computed" for card in concept.cards)
    assert len({card.type for card in concept.cards}) >= 3 and len(concept.pitfalls) >= 3


def test_snippet_is_fast(concept_id, run_entry, snippet_output, snippet_seconds):
    run_entry(concept_id)
    assert snippet_output(concept_id).strip(), "the snippet should print a few informative lines"
    # Generous bound (first-call lazy imports, loaded CI machines); each snippet needs well under 1 s of CPU.
    assert snippet_seconds(concept_id) < 5.0


# dropout ------------------------------------------------------------------------------------------


def test_dropout_cards(computed_value):
    # A kept element is scaled by 1/(1 - 0.2) = 1.25.
    assert computed_value("dropout", "kept-scale") == 1.25
    # Var = E[y^2] - E[y]^2 = 0.9 * (3/0.9)^2 - 3^2 = 10 - 9 = 1 (= x^2 p/(1 - p) = 9 * 0.1/0.9).
    assert computed_value("dropout", "output-variance") == 1.0


def test_dropout_count_and_variance_match_scipy(run_entry):
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("dropout")
    n = ns["Y"].numel()
    dropped = round(ns["drop_rate"] * n)
    # The number of zeroed elements is Binomial(n, p): a two-sided test at a very small level.
    assert stats.binomtest(dropped, n, p=0.2).pvalue > 1e-6
    # Var of (x/(1 - p)) * Bernoulli(1 - p) from scipy's Bernoulli against the snippet's formula.
    x = _np(ns["x"])
    var_scipy = stats.bernoulli(0.8).var() * (x / 0.8) ** 2
    np.testing.assert_allclose(_np(ns["var_formula"]), var_scipy, rtol=1e-12, atol=0)


# batch-normalization ------------------------------------------------------------------------------


def test_batchnorm_cards(computed_value):
    # Batch [1, 2, 3, 6]: mean 3, biased variance (4 + 1 + 0 + 9)/4 = 3.5 -> (6 - 3)/sqrt(3.5 + 1e-5) = 1.60357.
    assert computed_value("batch-normalization", "train-output") == 1.6036
    # Unbiased variance 14/3 = 4.6667; running_var = 0.9 * 1 + 0.1 * 4.6667 = 1.36667.
    assert computed_value("batch-normalization", "running-var") == 1.3667
    # Eval after one step: (6 - 0.3)/sqrt(1.366667 + 1e-5) = 5.7/1.169050 = 4.87575.
    assert computed_value("batch-normalization", "eval-after-one-step") == 4.8758
    # gamma and beta, 64 each.
    assert computed_value("batch-normalization", "bn-params") == 128


def test_batchnorm_matches_sklearn_standard_scaler(run_entry):
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    ns = run_entry("batch-normalization")
    x = ns["x_np"]  # (N, C, H, W)
    per_channel = x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])  # rows: the N*H*W values of each channel
    scaled = preprocessing.StandardScaler().fit_transform(per_channel)  # biased std, no eps
    expected = scaled.reshape(x.shape[0], x.shape[2], x.shape[3], x.shape[1]).transpose(0, 3, 1, 2)
    # eps = 1e-5 against variances of about 4 changes the result by ~1e-6 relative.
    np.testing.assert_allclose(ns["y_unit_np"], expected, rtol=0, atol=2e-5)


def test_batchnorm_running_var_is_numpy_ddof_1(run_entry):
    ns = run_entry("batch-normalization")
    values = np.array([1.0, 2.0, 3.0, 6.0])
    assert math.isclose(float(ns["bn1"].running_var), 0.9 * 1 + 0.1 * values.var(ddof=1), rel_tol=1e-12)
    assert math.isclose(float(ns["bn1"].running_mean), 0.1 * values.mean(), rel_tol=1e-12)


# gradient-clipping --------------------------------------------------------------------------------


def test_gradient_clipping_cards(computed_value):
    # sqrt(3^2 + 4^2 + 12^2) = sqrt(169) = 13, the norm before clipping.
    assert computed_value("gradient-clipping", "returned-norm") == 13.0
    # 1/(13 + 1e-6) = 0.07692307...
    assert computed_value("gradient-clipping", "clip-factor") == 0.076923
    # [3, 4, 12] . [0.5, 0.5, 0.5] = 9.5; |[0.5]*3| = sqrt(0.75) = 0.866025; 9.5/(13 * 0.866025) = 0.84383.
    assert computed_value("gradient-clipping", "value-clip-direction") == 0.8438


def test_gradient_clipping_matches_numpy(run_entry):
    ns = run_entry("gradient-clipping")
    # The last loop iteration used norm_type=inf and max_norm=0.5.
    before = np.concatenate([g.ravel() for g in ns["grads_np"]])
    after = np.concatenate([g.ravel() for g in ns["grads_clipped_np"]])
    total_inf = np.abs(before).max()
    np.testing.assert_allclose(after, before * min(1.0, 0.5 / (total_inf + 1e-6)), rtol=1e-12, atol=0)
    total_2 = np.linalg.norm(before)
    assert total_2 > 0.5, "the example must actually clip"


# mixed-precision ----------------------------------------------------------------------------------


def test_mixed_precision_star_values(computed_value):
    # float16: (2 - 2^-10) * 2^15 = 65536 - 32 = 65504.
    assert computed_value("mixed-precision", "fp16-max") == 65504.0
    # bfloat16: 7 fraction bits, eps = 2^-7 = 1/128 = 0.0078125.
    assert computed_value("mixed-precision", "bf16-eps") == 0.0078125


def test_mixed_precision_other_cards(computed_value):
    # 2049 is halfway between 2048 and 2050 (spacing 2); ties go to the even significand, 2048.
    assert computed_value("mixed-precision", "fp16-swamping") == 2048.0
    # 2^-24 = 5.9604645e-08.
    assert computed_value("mixed-precision", "fp16-subnormal") == 5.96e-08
    # 1e-8 * 65536 = 6.5536e-4, in float16 0.00065517 (spacing 2^-21 there) -> 0.000655.
    assert computed_value("mixed-precision", "scaled-gradient") == 0.000655


def test_float16_against_numpy(run_entry):
    ns = run_entry("mixed-precision")
    assert float(np.finfo(np.float16).max) == ns["fp16_max"]
    assert float(np.float16(2048.0) + np.float16(1.0)) == ns["fp16_2048_plus_1"]
    assert float(np.float16(1e-8)) == 0.0 and float(np.float16(2.0**-25)) == 0.0
    scaled = np.float16(1e-8 * 65536)
    assert float(scaled) == float(_np(ns["grad_scaled_fp16"])[3])


def test_bfloat16_eps_from_float32_bits(computed_value):
    # bfloat16 is the upper 16 bits of a float32: the next bfloat16 after 1.0 adds 1 to bit 16.
    one = np.array([1.0], dtype=np.float32).view(np.uint32)
    next_up = (one + np.uint32(1 << 16)).view(np.float32)
    assert float(next_up[0]) - 1.0 == computed_value("mixed-precision", "bf16-eps")


# knowledge-distillation ---------------------------------------------------------------------------


def test_distillation_cards(computed_value):
    # softmax([3, 1, 0] / 4) = e^[0.75, 0.25, 0] / (2.117000 + 1.284025 + 1) = [0.48103, 0.29176, 0.22722].
    assert computed_value("knowledge-distillation", "soft-targets-t4") == [0.481, 0.2918, 0.2272]
    # Hand: T = 2, teacher p = softmax([1.5, 0.5, 0]), student q = softmax([0.5, 1, 0]); 4 * sum p log(p/q).
    p = np.exp([1.5, 0.5, 0.0]) / np.exp([1.5, 0.5, 0.0]).sum()
    q = np.exp([0.5, 1.0, 0.0]) / np.exp([0.5, 1.0, 0.0]).sum()
    assert round(4 * float((p * np.log(p / q)).sum()), 4) == 0.9153
    assert computed_value("knowledge-distillation", "kd-loss-example") == 0.9153


def test_distillation_matches_scipy_entropy(run_entry):
    special = pytest.importorskip("scipy.special")
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("knowledge-distillation")
    z, v = ns["z_np"], ns["v_np"]
    for T in (1.0, 2.0, 4.0):
        p_teacher = special.softmax(v / T, axis=1)
        p_student = special.softmax(z / T, axis=1)
        kl = np.mean([stats.entropy(pt, ps) for pt, ps in zip(p_teacher, p_student)])
        value = float(ns["kd_loss_torch"](ns["z"], ns["v"], T))
        assert math.isclose(value, T**2 * kl, rel_tol=1e-10)


# regression-losses --------------------------------------------------------------------------------


def test_regression_cards(computed_value):
    # |r| = 3 > delta = 2: Huber = 2 * (3 - 2/2) = 4.
    assert computed_value("regression-losses", "huber-delta-2") == 4.0
    # |r| = 3 >= beta = 2: smooth L1 = 3 - 2/2 = 2 (= Huber / delta).
    assert computed_value("regression-losses", "smooth-l1-beta-2") == 2.0
    # mean(1, 2, 3, 4, 100) = 110/5 = 22.
    assert computed_value("regression-losses", "mse-best-constant") == 22.0


def test_regression_losses_match_sklearn_and_scipy(run_entry):
    metrics = pytest.importorskip("sklearn.metrics")
    special = pytest.importorskip("scipy.special")
    import torch.nn.functional as F

    ns = run_entry("regression-losses")
    pred, target = ns["pred_np"], ns["target_np"]
    assert math.isclose(
        float(F.l1_loss(ns["pred"], ns["target"])), metrics.mean_absolute_error(target, pred), rel_tol=1e-12
    )
    assert math.isclose(
        float(F.mse_loss(ns["pred"], ns["target"])), metrics.mean_squared_error(target, pred), rel_tol=1e-12
    )
    for delta in (0.5, 1.0, 2.0):
        # scipy.special.huber(delta, r) = r^2/2 for |r| <= delta, delta (|r| - delta/2) otherwise.
        expected = special.huber(delta, pred - target).mean()
        assert math.isclose(float(F.huber_loss(ns["pred"], ns["target"], delta=delta)), expected, rel_tol=1e-12)
        assert math.isclose(
            float(F.smooth_l1_loss(ns["pred"], ns["target"], beta=delta)), expected / delta, rel_tol=1e-12
        )


def test_best_constants_match_scipy_minimize(run_entry):
    optimize = pytest.importorskip("scipy.optimize")
    special = pytest.importorskip("scipy.special")
    ns = run_entry("regression-losses")
    ys = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    fits = {
        "mse": lambda c: np.mean((ys - c) ** 2),
        "l1": lambda c: np.mean(np.abs(ys - c)),
        "huber": lambda c: np.mean(special.huber(1.0, ys - c)),
    }
    for name, f in fits.items():
        res = optimize.minimize_scalar(f, bounds=(0, 110), method="bounded", options={"xatol": 1e-9})
        assert abs(res.x - ns[f"{name}_best"]) < 1e-4, name


# focal-loss ---------------------------------------------------------------------------------------


def test_focal_cards(computed_value):
    # (1 - 0.9)^2 = 0.01.
    assert computed_value("focal-loss", "ratio-pt-09") == 0.01
    # CE: easy 10000 * -ln 0.99 = 100.503, hard 10 * -ln 0.1 = 23.026; 100.503/123.529 = 0.81360.
    assert computed_value("focal-loss", "easy-share-ce") == 0.8136
    # FL: easy 100.503 * 1e-4 = 0.0100503, hard 23.026 * 0.81 = 18.651; 0.0100503/18.661 = 5.3857e-4.
    assert computed_value("focal-loss", "easy-share-fl") == 0.000539
    # -log(0.99/0.01) = -log 99 = -4.59512.
    assert computed_value("focal-loss", "prior-bias") == -4.5951


def test_focal_gamma_zero_is_sklearn_log_loss(run_entry):
    metrics = pytest.importorskip("sklearn.metrics")
    special = pytest.importorskip("scipy.special")
    import torch

    ns = run_entry("focal-loss")
    logits = torch.as_tensor(ns["logits_np"])
    targets = torch.as_tensor(ns["targets_np"])
    focal0 = float(ns["focal_loss_hand"](logits, targets, gamma=0.0).mean())
    expected = metrics.log_loss(ns["targets_np"], special.expit(ns["logits_np"]), labels=[0.0, 1.0])
    assert math.isclose(focal0, expected, rel_tol=1e-9)
    # With gamma = 2 each term is the log loss times (1 - p_t)^2.
    p = special.expit(ns["logits_np"])
    p_t = np.where(ns["targets_np"] == 1, p, 1 - p)
    focal2 = _np(ns["focal_loss_hand"](logits, targets, gamma=2.0))
    np.testing.assert_allclose(focal2, -((1 - p_t) ** 2) * np.log(p_t), rtol=1e-9, atol=1e-15)


# contrastive-infonce ------------------------------------------------------------------------------


def test_infonce_cards(computed_value):
    # log(1 + e^-3 + e^-6 + e^-9) = log(1 + 0.049787 + 0.002479 + 0.000123) = log 1.052389 = 0.05106.
    assert computed_value("contrastive-infonce", "loss-tau-01") == 0.0511
    # log(1 + e^-0.3 + e^-0.6 + e^-0.9) = log(1 + 0.740818 + 0.548812 + 0.406570) = log 2.696200 = 0.99184.
    assert computed_value("contrastive-infonce", "loss-tau-1") == 0.9918
    # e^5 / (e^5 + e^2 + e^-1) = 148.413 / (148.413 + 7.389 + 0.368) = 0.95033.
    assert computed_value("contrastive-infonce", "hardest-negative-share") == 0.9503
    # log 256 - 2 = 5.545177 - 2 = 3.545177.
    assert computed_value("contrastive-infonce", "mi-bound") == 3.5452


def test_infonce_matches_scipy_and_sklearn(run_entry):
    special = pytest.importorskip("scipy.special")
    metrics = pytest.importorskip("sklearn.metrics")
    ns = run_entry("contrastive-infonce")
    S = ns["S_np"]
    n = S.shape[0]
    by_scipy = -np.mean(np.diag(special.log_softmax(S, axis=1)))
    assert math.isclose(float(ns["loss_ce"]), by_scipy, rel_tol=1e-12)
    by_sklearn = metrics.log_loss(np.arange(n), special.softmax(S, axis=1), labels=np.arange(n))
    assert math.isclose(float(ns["loss_ce"]), by_sklearn, rel_tol=1e-9)
