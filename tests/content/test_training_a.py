"""Training, first batch: cross-entropy-loss, label-smoothing, backpropagation, weight-initialization,
sgd-momentum, adam-adamw, weight-decay, learning-rate-schedules.

Structural checks, the snippets' values against oracles outside torch (scipy, scikit-learn, and numpy
re-implementations written here; each test skips when its package is missing), and every computed
card pinned to its worked value, typed here independently of the snippets (the arithmetic in the
comments).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import as_float64 as _np
from kb.schema import Concept

IDS = (
    "cross-entropy-loss",
    "label-smoothing",
    "backpropagation",
    "weight-initialization",
    "sgd-momentum",
    "adam-adamw",
    "weight-decay",
    "learning-rate-schedules",
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
    assert concept.snippet is not None and "torch" in concept.snippet.requires


def test_snippet_is_fast(concept_id, run_entry, snippet_output, snippet_seconds):
    run_entry(concept_id)
    assert snippet_output(concept_id).strip(), "the snippet should print a few informative lines"
    # Generous bound: the first torch.optim step of a process imports torch._dynamo (about 1 s), and
    # CI machines are loaded; the snippets' own work takes well under 1 s.
    assert snippet_seconds(concept_id) < 5.0


# cross-entropy-loss -------------------------------------------------------------------------------


def test_cross_entropy_cards(computed_value):
    # log(e^2 + e^1 + e^0.1) = log(7.389056 + 2.718282 + 1.105171) = log 11.212509 = 2.417030; minus 2.
    assert computed_value("cross-entropy-loss", "ce-example") == 0.4170
    # All-zero logits over 10 classes: log 10 = 2.302585.
    assert computed_value("cross-entropy-loss", "uniform-start") == 2.3026
    # log(1 + e^-2) = 0.126928, log(1 + e^2) = 2.126928; (0.126928 + 3 * 2.126928) / 4 = 1.626928.
    assert computed_value("cross-entropy-loss", "weighted-mean") == 1.6269
    # -softmax([2, 1, 0.1])[0] = -7.389056 / 11.212509 = -0.659001.
    assert computed_value("cross-entropy-loss", "nll-on-probabilities") == -0.6590


def test_cross_entropy_example_matches_scipy_logsumexp(run_entry):
    special = pytest.importorskip("scipy.special")
    ns = run_entry("cross-entropy-loss")
    assert math.isclose(ns["ce_example"], special.logsumexp([2.0, 1.0, 0.1]) - 2.0, rel_tol=0, abs_tol=1e-14)


def test_cross_entropy_batch_matches_sklearn_log_loss(run_entry):
    metrics = pytest.importorskip("sklearn.metrics")
    special = pytest.importorskip("scipy.special")
    ns = run_entry("cross-entropy-loss")
    logits, y = ns["logits_np"], ns["y_np"]
    probs = special.softmax(logits, axis=1)
    expected = metrics.log_loss(y, probs, labels=list(range(logits.shape[1])))
    assert math.isclose(float(ns["ce_mean"]), expected, rel_tol=1e-12)


def test_cross_entropy_soft_targets_match_scipy(run_entry):
    special = pytest.importorskip("scipy.special")
    ns = run_entry("cross-entropy-loss")
    q, p = ns["q_np"], special.softmax(ns["logits_np"], axis=1)
    # H(q, p) = KL(q || p) + H(q), from scipy's relative and plain entropies.
    h_qp = special.rel_entr(q, p).sum(axis=1) + special.entr(q).sum(axis=1)
    assert math.isclose(float(ns["soft_ce"]), h_qp.mean(), rel_tol=1e-10)


# label-smoothing ----------------------------------------------------------------------------------


def test_label_smoothing_cards(computed_value):
    # q = [0.933333, 0.033333, 0.033333]; -log p = [0.417030, 1.417030, 2.317030]:
    # 0.9 * 0.417030 + 0.1 * (0.417030 + 1.417030 + 2.317030) / 3 = 0.375327 + 0.138370 = 0.513697.
    assert computed_value("label-smoothing", "ls-example") == 0.5137
    # log(0.933333 / 0.033333) = log 28 = 3.332205.
    assert computed_value("label-smoothing", "optimal-gap") == 3.3322
    # H(q) = -(0.933333 ln 0.933333 + 2 * 0.033333 ln 0.033333) = 0.064394 + 0.226747 = 0.291141.
    assert computed_value("label-smoothing", "loss-floor") == 0.2911


def test_label_smoothing_batch_matches_scipy(run_entry):
    special = pytest.importorskip("scipy.special")
    ns = run_entry("label-smoothing")
    logits, y = ns["logits_np"], ns["y_np"]
    n, k = logits.shape
    q = np.full((n, k), 0.1 / k)
    q[np.arange(n), y] += 0.9
    expected = -(q * special.log_softmax(logits, axis=1)).sum(axis=1).mean()
    assert math.isclose(ns["ls_batch"], expected, rel_tol=1e-12)


def test_label_smoothing_optimum_by_scipy_minimisation(run_entry):
    optimize = pytest.importorskip("scipy.optimize")
    stats = pytest.importorskip("scipy.stats")
    special = pytest.importorskip("scipy.special")
    ns = run_entry("label-smoothing")
    q = np.array([1 - 0.1 + 0.1 / 3, 0.1 / 3, 0.1 / 3])

    def loss(gap: float) -> float:
        return float(-(q * special.log_softmax([gap, 0.0, 0.0])).sum())

    best = optimize.minimize_scalar(loss, bounds=(0.0, 10.0), method="bounded", options={"xatol": 1e-10})
    assert abs(best.x - ns["optimal_gap"]) < 1e-6
    assert math.isclose(ns["loss_floor"], stats.entropy(q), rel_tol=1e-12)


# backpropagation ----------------------------------------------------------------------------------


def test_backpropagation_cards(computed_value):
    # tanh(0.5) = 0.462117, y_hat = 0.924234; dL/dw1 = 0.924234 * 2 * (1 - 0.213552) = 1.453724,
    # dL/dw2 = 0.924234 * 0.462117 = 0.427104.
    assert computed_value("backpropagation", "scalar-network") == [1.4537, 0.4271]
    # Forward N*in*out multiply-adds; backward G W and G^T X, the same count each.
    assert computed_value("backpropagation", "backward-cost") == 2.0


def test_backpropagation_gradients_match_numpy_finite_differences(run_entry):
    ns = run_entry("backpropagation")
    x, t = _np(ns["x"]), _np(ns["t"])
    W1, b1, W2, b2 = (_np(p) for p in ns["params"])
    n = x.shape[0]

    def loss(W1: np.ndarray) -> float:  # the same network, written in numpy
        out = np.tanh(x @ W1.T + b1) @ W2.T + b2
        return float(((out - t) ** 2).sum() / (2 * n))

    h = 1e-6
    numeric = np.zeros_like(W1)
    for idx in np.ndindex(W1.shape):
        step = np.zeros_like(W1)
        step[idx] = h
        numeric[idx] = (loss(W1 + step) - loss(W1 - step)) / (2 * h)
    np.testing.assert_allclose(_np(ns["auto"][0]), numeric, rtol=0, atol=1e-8)


def test_backpropagation_scalar_card_by_scipy_derivative(run_entry):
    differentiate = pytest.importorskip("scipy.differentiate")
    ns = run_entry("backpropagation")
    d_w1 = differentiate.derivative(lambda w1: 0.5 * (2.0 * np.tanh(w1 * 1.0)) ** 2, 0.5).df
    d_w2 = differentiate.derivative(lambda w2: 0.5 * (w2 * np.tanh(0.5)) ** 2, 2.0).df
    assert abs(ns["scalar_grads"][0] - d_w1) < 1e-9 and abs(ns["scalar_grads"][1] - d_w2) < 1e-9


# weight-initialization ----------------------------------------------------------------------------


def test_weight_initialization_cards(computed_value):
    # sqrt(2 / 512) = sqrt(1 / 256) = 0.0625.
    assert computed_value("weight-initialization", "kaiming-std-512") == 0.0625
    # sqrt(6 / (256 + 128)) = sqrt(1 / 64) = 0.125.
    assert computed_value("weight-initialization", "xavier-bound-256-128") == 0.125
    # fan_in = 64 * 3 * 3 = 576; sqrt(2 / 576) = 0.058926.
    assert computed_value("weight-initialization", "conv-kaiming-std") == 0.0589
    # Var(w) = 1 / (3 fan_in); ReLU keeps half: fan_in * 1 / (3 fan_in) / 2 = 1/6 = 0.166667.
    assert computed_value("weight-initialization", "default-linear-factor") == 0.1667


def test_kaiming_and_xavier_draws_pass_scipy_ks_tests(run_entry):
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("weight-initialization")
    kaiming = _np(ns["W"]).ravel()  # kaiming_normal_ on a (256, 512) weight
    assert stats.kstest(kaiming, stats.norm(loc=0.0, scale=math.sqrt(2 / 512)).cdf).pvalue > 1e-4
    xavier = _np(ns["Wx"]).ravel()  # xavier_uniform_ on a (128, 256) weight
    assert stats.kstest(xavier, stats.uniform(loc=-0.125, scale=0.25).cdf).pvalue > 1e-4


def test_relu_stack_collapse_matches_the_per_layer_factor(run_entry):
    ns = run_entry("weight-initialization")
    ratios, depth = ns["final_ratio"], ns["depth"]
    # Within a factor 10 of factor^depth: 1 for Kaiming, 6^-30 = 4.5e-24 for the default, 0.0128^30 for std 0.01.
    for name, factor in (("kaiming", 1.0), ("default nn.Linear", 1 / 6), ("std 0.01", 256 * 1e-4 / 2)):
        assert 0.1 < ratios[name] / factor**depth < 10, name


# sgd-momentum -------------------------------------------------------------------------------------


def test_sgd_momentum_cards(computed_value):
    # Velocities 1, 1.9, 2.71: p = -0.1 * 5.61 = -0.561.
    assert computed_value("sgd-momentum", "three-steps") == -0.561
    # Steps 1 + 0.9 * 1 = 1.9, 1 + 0.9 * 1.9 = 2.71, 1 + 0.9 * 2.71 = 3.439: p = -0.1 * 8.049 = -0.8049.
    assert computed_value("sgd-momentum", "three-steps-nesterov") == -0.8049


def _heavy_ball_rate(lr: float, mu: float, curvatures: list[float]) -> float:
    """Spectral radius of the heavy-ball iteration on a diagonal quadratic, from numpy's eigenvalues."""
    radius = 0.0
    for a in curvatures:
        # State (p_t, p_{t-1}): p_{t+1} = (1 + mu - lr a) p_t - mu p_{t-1}.
        matrix = np.array([[1 + mu - lr * a, -mu], [1.0, 0.0]])
        radius = max(radius, float(np.abs(np.linalg.eigvals(matrix)).max()))
    return radius


def test_momentum_rates_match_the_iteration_matrix(run_entry):
    ns = run_entry("sgd-momentum")
    L, m = 100.0, 1.0
    gd_rate = _heavy_ball_rate(2 / (L + m), 0.0, [m, L])
    hb_rate = _heavy_ball_rate(4 / (math.sqrt(L) + math.sqrt(m)) ** 2, (9 / 11) ** 2, [m, L])
    assert math.isclose(gd_rate, 99 / 101, rel_tol=1e-12) and math.isclose(hb_rate, 9 / 11, rel_tol=1e-6)
    # The snippet's errors after 100 steps follow: GD exactly 0.98^100 on the worst axis, heavy ball far below.
    assert math.isclose(ns["err_gd"], math.hypot((99 / 101) ** 100, (99 / 101) ** 100), rel_tol=1e-9)
    assert ns["err_hb"] < 100 * 100 * hb_rate**100  # a double eigenvalue adds at most a factor of order t


def test_momentum_path_matches_numpy(run_entry):
    ns = run_entry("sgd-momentum")
    p, v = 0.0, None
    for _ in range(3):  # torch.optim.SGD's update written in plain Python
        v = 1.0 if v is None else 0.9 * v + 1.0
        p -= 0.1 * v
    assert math.isclose(ns["p3"], p, rel_tol=0, abs_tol=1e-15)


# adam-adamw ---------------------------------------------------------------------------------------


def test_adam_cards(computed_value):
    # Adam: g = 0.1 * 1, m_hat = 0.1, sqrt(v_hat) = 0.1 -> 1 - 0.1 * 0.1 / (0.1 + 1e-8) = 0.9000000.
    # AdamW: 1 * (1 - 0.1 * 0.1) = 0.99, and a zero gradient gives a zero Adam step.
    assert computed_value("adam-adamw", "l2-vs-decoupled-step") == [0.9, 0.99]
    # First step -lr * g / (|g| + 1e-8): -0.00099990, -0.00099999998, +0.001 -> 6 decimals.
    assert computed_value("adam-adamw", "first-step-size") == [-0.001, -0.001, 0.001]
    # (1 - 0.9) / sqrt(1 - 0.999) = 0.1 / 0.0316228 = 3.162278.
    assert computed_value("adam-adamw", "uncorrected-first-step") == 3.1623


def _adam_numpy(theta, grads, lr, betas=(0.9, 0.999), eps=1e-8, l2=0.0, decoupled=0.0):
    """Adam / AdamW written in numpy, from the paper's pseudo-code."""
    theta = np.array(theta, dtype=np.float64)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        g = np.asarray(g, dtype=np.float64) + l2 * theta
        theta = theta * (1 - lr * decoupled)
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g**2
        theta = theta - lr * (m / (1 - betas[0] ** t)) / (np.sqrt(v / (1 - betas[1] ** t)) + eps)
    return theta


def test_adam_values_match_numpy(run_entry):
    ns = run_entry("adam-adamw")
    first = _adam_numpy(np.zeros(3), [_np(ns["first_grads"])], lr=1e-3)
    np.testing.assert_allclose(_np(ns["first_move"]), first, rtol=1e-12, atol=0)
    assert math.isclose(ns["p_adam_l2"], _adam_numpy([1.0], [[0.0]], lr=0.1, l2=0.1)[0], rel_tol=1e-14)
    assert math.isclose(ns["p_adamw"], _adam_numpy([1.0], [[0.0]], lr=0.1, decoupled=0.1)[0], rel_tol=1e-14)


def test_adam_l2_and_adamw_shrinkage_match_numpy(run_entry):
    ns = run_entry("adam-adamw")
    noise = _np(ns["noise"])
    l2 = _adam_numpy(np.ones(1000), noise, lr=1e-3, l2=0.1)
    decoupled = _adam_numpy(np.ones(1000), noise, lr=1e-3, decoupled=0.1)
    np.testing.assert_allclose(_np(ns["adam_l2_final"]), l2, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_np(ns["adamw_final"]), decoupled, rtol=0, atol=1e-12)
    assert math.isclose(ns["pure_decay"], 1 - 0.9999**200, rel_tol=1e-12)


# weight-decay -------------------------------------------------------------------------------------


def test_weight_decay_cards(computed_value):
    # 2 * 0.999^100 = 2 * exp(100 * ln 0.999) = 2 * 0.904792 = 1.809584.
    assert computed_value("weight-decay", "pure-decay-100") == 1.8096


def test_weight_decay_fixed_point_is_sklearn_ridge(run_entry):
    linear_model = pytest.importorskip("sklearn.linear_model")
    ns = run_entry("weight-decay")
    X, y, lam = ns["X_np"], ns["y_np"], ns["lam"]
    # mean((Xw - y)^2)/2 + lam/2 ||w||^2, times 2N, is sklearn's ||y - Xw||^2 + alpha ||w||^2 with alpha = N lam.
    ridge = linear_model.Ridge(alpha=X.shape[0] * lam, fit_intercept=False, solver="cholesky").fit(X, y).coef_
    np.testing.assert_allclose(_np(ns["ridge"]), ridge, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_np(ns["w_sgd_long"]), ridge, rtol=0, atol=1e-10)
    np.testing.assert_allclose(_np(ns["w_adam_long"]), ridge, rtol=0, atol=1e-8)
    assert np.abs(_np(ns["w_adamw_long"]) - ridge).max() > 5e-3, "AdamW does not solve the L2 problem"


# learning-rate-schedules --------------------------------------------------------------------------


def test_learning_rate_schedule_cards(computed_value):
    # Warmup: 0.01 + 0.99 * 50 / 100 = 0.505.
    assert computed_value("learning-rate-schedules", "warmup-step-50") == 0.505
    # Cosine 225 of 900 steps in: (1 + cos(pi / 4)) / 2 = (1 + 0.707107) / 2 = 0.853553.
    assert computed_value("learning-rate-schedules", "cosine-step-325") == 0.8536


def test_learning_rate_schedule_matches_numpy_closed_form(run_entry):
    ns = run_entry("learning-rate-schedules")
    t = np.arange(1000)
    warm = 1e-3 * (0.01 + 0.99 * t / 100)
    cosine = 1e-3 * 0.5 * (1 + np.cos(np.pi * (t - 100) / 900))
    expected = np.where(t < 100, warm, cosine)
    np.testing.assert_allclose(ns["lrs_np"], expected, rtol=0, atol=1e-18)
    assert ns["lrs_np"].argmax() == 100
