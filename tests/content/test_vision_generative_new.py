"""New vision, generative and metric entries: iou, non-maximum-suppression, mean-average-precision,
miou-segmentation, classifier-free-guidance, ddim-sampling, flow-matching, fid, inception-score.

Two kinds of checks: the snippets' values against oracles outside numpy/torch (scikit-learn and scipy;
a test skips when its package is missing) or against reference code written here independently, and
every computed card against its worked value, with the expected numbers typed here independently of
the snippets (the arithmetic is in the comments).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import as_float64 as _np
from kb.schema import Concept

IDS = {
    "iou": "vision",
    "non-maximum-suppression": "vision",
    "mean-average-precision": "vision",
    "miou-segmentation": "vision",
    "classifier-free-guidance": "generative",
    "ddim-sampling": "generative",
    "flow-matching": "generative",
    "fid": "metrics",
    "inception-score": "metrics",
}


# structure ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("concept_id", sorted(IDS))
def test_entry_structure(concept_id, load_entry):
    # The bar every entry meets is tests/content/test_every_entry.py; this adds what these entries promise.
    concept = Concept.model_validate(load_entry(concept_id))
    assert concept.id == concept_id and concept.category == IDS[concept_id]
    assert concept.formulas and concept.snippet and concept.sources and len(concept.pitfalls) >= 3
    assert "computed-card" in concept.tags
    assert any(card.type == "computed" for card in concept.cards)
    assert all(s.url.startswith(("https://arxiv.org/", "https://docs.pytorch.org/")) for s in concept.sources)


@pytest.mark.parametrize("concept_id", sorted(IDS))
def test_snippet_is_fast_and_prints(concept_id, run_entry, snippet_seconds, snippet_output):
    # Well under 1 s on one core; the machine may be shared, so the bound here is generous.
    run_entry(concept_id)
    assert snippet_output(concept_id).strip()
    assert snippet_seconds(concept_id) < 5.0


def test_miou_cards_differ_from_uniformer(load_entry):
    """uniformer already asks the mIoU of its 4x4 example and the absent-class case; ask other things."""
    uniformer = {c["id"] for c in load_entry("uniformer")["cards"]}
    ours = {c["id"] for c in load_entry("miou-segmentation")["cards"]}
    assert {"miou-example", "absent-class"} <= uniformer and not ours & uniformer
    assert "uniformer" in load_entry("miou-segmentation")["related"]


# iou ----------------------------------------------------------------------------------------------


def test_iou_cards(computed_value):
    # [0,0,2,2] vs [1,1,3,3]: overlap 1x1, union 4 + 4 - 1 = 7 -> 1/7 = 0.142857...
    assert computed_value("iou", "iou-two-unit-offset-boxes") == 0.1429
    # [0,0,4,4] vs [2,0,6,4]: overlap 2x4 = 8, union 16 + 16 - 8 = 24 -> 1/3.
    assert computed_value("iou", "iou-half-width-shift") == 0.3333
    # Inclusive pixels: 3x3 boxes sharing 2x2 -> 4 / (9 + 9 - 4) = 2/7 = 0.285714...
    assert computed_value("iou", "iou-plus-one-convention") == 0.2857


def test_iou_matches_sklearn_jaccard_on_masks(run_entry):
    """The binary Jaccard index of two rasterised boxes is their IoU."""
    metrics = pytest.importorskip("sklearn.metrics")
    ns = run_entry("iou")
    boxes, ious = _np(ns["boxes"]).astype(int), _np(ns["ious"])

    def mask(b):
        m = np.zeros((32, 32), dtype=bool)
        m[b[1] : b[3], b[0] : b[2]] = True
        return m.ravel()

    for i, j in [(0, 1), (2, 5), (3, 7), (10, 20), (4, 4)] + [(k, k + 1) for k in range(0, 38, 3)]:
        expected = metrics.jaccard_score(mask(boxes[i]), mask(boxes[j]))
        assert math.isclose(ious[i, j], expected, rel_tol=0, abs_tol=1e-12), (i, j)


def test_giou_values(run_entry):
    ns = run_entry("iou")
    # Hulls [0,0,5,2] (area 10) and [0,0,12,2] (area 24), union 8 each: 0 - 2/10 and 0 - 16/24.
    assert math.isclose(ns["giou_near"], -0.2, abs_tol=1e-12)
    assert math.isclose(ns["giou_far"], -2 / 3, abs_tol=1e-12)


# non-maximum-suppression --------------------------------------------------------------------------


def _reference_nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    """The classic Fast R-CNN numpy loop (continuous coordinates, no +1): keep the best, drop IoU > thr."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(int(i))
        xx1, yy1 = np.maximum(x1[i], x1[order[1:]]), np.maximum(y1[i], y1[order[1:]])
        xx2, yy2 = np.minimum(x2[i], x2[order[1:]]), np.minimum(y2[i], y2[order[1:]])
        inter = np.maximum(0.0, xx2 - xx1) * np.maximum(0.0, yy2 - yy1)
        ovr = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[1:][ovr <= thr]
    return keep


def test_nms_matches_reference_loop(run_entry):
    import torch

    ns = run_entry("non-maximum-suppression")
    rng = np.random.default_rng(123)
    for _ in range(25):
        centres = rng.uniform(0, 30, (2, 2))[rng.integers(0, 2, 15)] + rng.normal(0, 2, (15, 2))
        half = rng.uniform(2, 6, (15, 2))
        boxes = np.concatenate([centres - half, centres + half], 1)
        scores = rng.uniform(0, 1, 15)
        thr = float(rng.uniform(0.2, 0.7))
        got = ns["nms"](torch.tensor(boxes, device=ns["device"]), torch.tensor(scores, device=ns["device"]), thr)
        assert got == _reference_nms(boxes, scores, thr)


def test_nms_cards(computed_value):
    # IoU(0,1) = IoU(1,2) = 60/140 = 3/7 > 0.4 and IoU(0,2) = 20/180 = 1/9: 0 removes 1, 2 survives.
    assert computed_value("non-maximum-suppression", "nms-chain-survivor") == [0, 2]
    # 0.8 * exp(-(9/49) / 0.5) = 0.8 * exp(-0.367347) = 0.8 * 0.692627 = 0.554101.
    assert computed_value("non-maximum-suppression", "soft-nms-decay") == 0.5541


# mean-average-precision ---------------------------------------------------------------------------


def test_ap_cards(computed_value):
    # TPs at ranks 1, 3, 4, 7 with precisions 1, 2/3, 3/4, 4/7; N_gt = 5: (84 + 56 + 63 + 48) / 84 / 5 = 251/420.
    assert computed_value("mean-average-precision", "ap-stepwise-example") == round(251 / 420, 4) == 0.5976
    # 101 points: 21 at 1, 40 at 3/4, 20 at 4/7, 20 at 0 -> (21 + 30 + 80/7) / 101 = 0.618104...
    assert computed_value("mean-average-precision", "ap-coco-101-example") == 0.6181
    # All points: 0.2 * (1 + 3/4 + 3/4 + 4/7) = 0.614285...
    assert computed_value("mean-average-precision", "ap-all-points-example") == 0.6143


def test_ap_matches_sklearn(run_entry):
    metrics = pytest.importorskip("sklearn.metrics")
    ns = run_entry("mean-average-precision")
    # Every positive is in the list: sklearn's average precision is the step-wise sum.
    labels, scores = _np(ns["rand_labels"]), _np(ns["rand_scores"])
    assert math.isclose(metrics.average_precision_score(labels, scores), ns["ap_random_list"], abs_tol=1e-12)
    # The worked example: sklearn only sees the 4 detected objects, so its recall is TP / 4 instead of
    # TP / 5; detection AP = sklearn AP x 4/5.
    flags = np.array(ns["flags"])
    fake_scores = np.linspace(1, 0.1, len(flags))
    sk = metrics.average_precision_score(flags, fake_scores)
    assert math.isclose(sk, (1 + 2 / 3 + 3 / 4 + 4 / 7) / 4, abs_tol=1e-12)
    assert math.isclose(sk * flags.sum() / ns["n_gt"], ns["ap_step"], abs_tol=1e-12)


def test_ap_variants_and_map(run_entry):
    ns = run_entry("mean-average-precision")
    # VOC 2007 11-point: 3 levels at 1, 4 at 3/4, 2 at 4/7, 2 at 0 -> (3 + 3 + 8/7) / 11.
    assert math.isclose(ns["ap_voc07"], (3 + 3 + 8 / 7) / 11, abs_tol=1e-12)
    assert ns["demo_flags"] == [1, 0, 0, 0]
    assert 0 < ns["map5095"] < ns["map50"] < 1


# miou-segmentation --------------------------------------------------------------------------------


def test_miou_cards(computed_value):
    # IoUs 8/12, 6/11, 4/7: mean = (2/3 + 6/11 + 4/7) / 3 = 412/693 = 0.594516...
    assert computed_value("miou-segmentation", "miou-from-confusion-matrix") == 0.5945
    # (10 * 2/3 + 8 * 6/11 + 6 * 4/7) / 24 = 3340/5544 = 0.602453...
    assert computed_value("miou-segmentation", "fwiou-from-confusion-matrix") == 0.6025
    # 99 / (1 + 100) = 0.980198... against (0 + 99/100) / 2 = 0.495.
    assert computed_value("miou-segmentation", "accumulate-vs-per-image") == [0.9802, 0.495]
    # 2 * 0.5 / 1.5 = 2/3.
    assert computed_value("miou-segmentation", "dice-from-iou") == 0.6667


def test_miou_matches_sklearn(run_entry):
    metrics = pytest.importorskip("sklearn.metrics")
    ns = run_entry("miou-segmentation")
    t, p = _np(ns["target_example"]).ravel(), _np(ns["pred_example"]).ravel()
    np.testing.assert_array_equal(metrics.confusion_matrix(t, p), _np(ns["C_example"]))
    assert math.isclose(metrics.jaccard_score(t, p, average="macro"), ns["miou_example"], abs_tol=1e-12)
    # average="weighted" weights each class by its support (true pixels): frequency-weighted IoU.
    assert math.isclose(metrics.jaccard_score(t, p, average="weighted"), ns["fwiou_example"], abs_tol=1e-12)
    np.testing.assert_allclose(metrics.jaccard_score(t, p, average=None), [8 / 12, 6 / 11, 4 / 7], atol=1e-12)
    # Random maps with an absent 5th class: sklearn only averages over labels that occur.
    t, p = _np(ns["target_rand"]).ravel(), _np(ns["pred_rand"]).ravel()
    assert math.isclose(metrics.jaccard_score(t, p, average="macro"), ns["miou_rand"], abs_tol=1e-12)
    assert math.isclose(metrics.jaccard_score(t, p, average="weighted"), ns["fwiou_rand"], abs_tol=1e-12)


# classifier-free-guidance -------------------------------------------------------------------------


def test_cfg_card(computed_value):
    # 0.2 + 7.5 * (0.5 - 0.2) = 0.2 + 2.25 = 2.45.
    assert computed_value("classifier-free-guidance", "cfg-guided-eps") == 2.45


def test_cfg_toy_model_matches_scipy(run_entry):
    """The toy's exact noise predictors against scipy densities differentiated numerically."""
    stats = pytest.importorskip("scipy.stats")
    special = pytest.importorskip("scipy.special")
    import torch

    ns = run_entry("classifier-free-guidance")
    alpha_bar, mu, s0 = _np(ns["alpha_bar"]), _np(ns["mu"]), ns["s0"]
    x = np.linspace(-4, 4, 41)
    xt = torch.tensor(x, dtype=torch.float64, device=ns["device"])
    h = 1e-5
    for t in (0, 250, 700, 999):
        a, var = math.sqrt(alpha_bar[t]), alpha_bar[t] * s0**2 + 1 - alpha_bar[t]
        comp = lambda z, c, a=a, var=var: stats.norm.logpdf(z, a * mu[c], math.sqrt(var))  # noqa: E731
        mix = lambda z, comp=comp: special.logsumexp([comp(z, 0), comp(z, 1)], axis=0) + math.log(0.5)  # noqa: E731
        scale = -math.sqrt(1 - alpha_bar[t])
        eps_c = scale * (comp(x + h, 1) - comp(x - h, 1)) / (2 * h)
        eps_u = scale * (mix(x + h) - mix(x - h)) / (2 * h)
        np.testing.assert_allclose(_np(ns["eps_model"](xt, t, 1)), eps_c, rtol=0, atol=1e-6)
        np.testing.assert_allclose(_np(ns["eps_model"](xt, t, None)), eps_u, rtol=0, atol=1e-6)


def test_cfg_samples(run_entry):
    ns = run_entry("classifier-free-guidance")
    # w = 1: class 1, N(2, 0.5^2); w = 0: the mixture, std sqrt(0.25 + 4) = 2.0616; w = 3 pushes further out.
    assert abs(ns["m1"] - 2) < 0.05 and abs(ns["sd1"] - 0.5) < 0.03
    assert abs(ns["m0"]) < 0.15 and abs(ns["sd0"] - math.sqrt(4.25)) < 0.05
    assert ns["m3"] > ns["m1"]


# ddim-sampling ------------------------------------------------------------------------------------


def test_ddim_cards(computed_value):
    # (1 - sqrt(0.36) * 0.5) / sqrt(0.64) = 0.7 / 0.8 = 0.875.
    assert computed_value("ddim-sampling", "ddim-x0-prediction") == 0.875
    # 0.9 * 0.875 + sqrt(0.19) * 0.5 = 0.7875 + 0.435890 * 0.5 = 1.005445.
    assert computed_value("ddim-sampling", "ddim-one-step") == 1.0054
    # sqrt(0.19 / 0.36 * (1 - 0.64 / 0.81)) = sqrt(0.527778 * 0.209877) = sqrt(0.110768) = 0.332819.
    assert computed_value("ddim-sampling", "ddim-sigma-eta-one") == 0.3328


def test_ddim_samples_match_the_mixture(run_entry):
    """50-step deterministic samples against the data CDF (scipy), and the inversion round trip."""
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("ddim-sampling")

    def cdf(z):
        return 0.3 * stats.norm.cdf(z, -2, 0.5) + 0.7 * stats.norm.cdf(z, 2, 0.5)

    assert stats.kstest(_np(ns["x_50"]), cdf).statistic < 0.03
    assert stats.kstest(_np(ns["latents"]), "norm").statistic < 0.06
    assert ns["recon_err"] < 1e-5
    assert 1.6 < ns["naive_err"][50] / ns["naive_err"][100] < 2.4


# flow-matching ------------------------------------------------------------------------------------


def test_flow_matching_cards(computed_value):
    # 0.75 * (-1) + 0.25 * 3 = 0; target 3 - (-1) = 4.
    assert computed_value("flow-matching", "fm-path-point-and-target") == [0.0, 4.0]
    # a = (0.5 * 0.25 - 0.5) / (0.25 + 0.25 * 0.25) = -0.375 / 0.3125 = -1.2; b = 3 + 1.2 * 0.5 * 3 = 4.8.
    assert computed_value("flow-matching", "fm-gaussian-field") == [-1.2, 4.8]
    # Var(x1 - x0) = 1 + 0.25; Cov = -0.375; Var(x_t) = 0.3125: 1.25 - 0.140625 / 0.3125 = 0.8.
    assert computed_value("flow-matching", "fm-minimum-loss") == 0.8


def test_flow_matching_fit_matches_sklearn_and_samples_match_target(run_entry):
    linear_model = pytest.importorskip("sklearn.linear_model")
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("flow-matching")
    xt, u = _np(ns["xt"]), _np(ns["u"])
    a_fit, b_fit = _np(ns["a_fit"]), _np(ns["b_fit"])
    for k in (0, 10, 24, 49):
        reg = linear_model.LinearRegression().fit(xt[k][:, None], u[k])
        assert math.isclose(reg.coef_[0], a_fit[k], abs_tol=1e-9)
        assert math.isclose(reg.intercept_, b_fit[k], abs_tol=1e-9)
    # The Euler samples against N(3, 0.5^2).
    assert stats.kstest(_np(ns["x"]), "norm", args=(3.0, 0.5)).statistic < 0.03


# fid ----------------------------------------------------------------------------------------------


def test_fid_cards(computed_value):
    # Means: 1 + 4 = 5; covariances: (1 + 4 - 2 * 2) + (4 + 9 - 2 * 6) = 2; total 7.
    assert computed_value("fid", "fid-diagonal-gaussians") == 7.0
    # (1 - 1.1)^2 = 0.01 per feature, 2048 features.
    assert computed_value("fid", "fid-scale-2048") == 20.48


def _fid_scipy(mu1, s1, mu2, s2):
    linalg = pytest.importorskip("scipy.linalg")
    covmean = linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.real(covmean)))


def test_fid_matches_scipy_sqrtm(run_entry):
    ns = run_entry("fid")
    ref = _fid_scipy(_np(ns["mu1"]), _np(ns["S1"]), _np(ns["mu2"]), _np(ns["S2"]))
    assert math.isclose(ns["fid_random"], ref, rel_tol=1e-9)
    ref_example = _fid_scipy(np.zeros(2), np.diag([1.0, 4.0]), np.array([1.0, 2.0]), np.diag([4.0, 9.0]))
    assert math.isclose(ref_example, 7.0, abs_tol=1e-9) and math.isclose(ns["fid_example"], ref_example, abs_tol=1e-9)


def test_fid_sample_bias(run_entry):
    ns = run_entry("fid")
    assert 0 < ns["fid_same"][2500] < ns["fid_same"][250]


# inception-score ----------------------------------------------------------------------------------


def test_inception_score_cards(computed_value):
    # One-hot, 10 classes evenly: every KL = log(1 / 0.1) -> exp(log 10) = 10.
    assert computed_value("inception-score", "is-onehot-ten-classes") == 10.0
    # p(y) = (1/2, 1/4, 1/4): mean KL = (2 log 2 + 2 log 4) / 4 = 1.5 log 2 -> 2^1.5 = 2.828427...
    assert computed_value("inception-score", "is-uneven-classes") == 2.8284
    # Every p(y|x) equals p(y): exp(0) = 1.
    assert computed_value("inception-score", "is-mode-collapse") == 1.0


def test_inception_score_matches_scipy_entropy(run_entry):
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("inception-score")
    for name, value in (("p_rand", "is_rand"), ("onehot_even", "is_onehot_even"), ("uneven", "is_uneven")):
        p = _np(ns[name])
        kl = stats.entropy(p.T, p.mean(0)[:, None])  # KL(p(y|x_i) || p(y)) for every image i
        assert math.isclose(math.exp(kl.mean()), ns[value], rel_tol=1e-12), name
    # The split protocol: each split with its own marginal.
    splits = np.array_split(_np(ns["p_rand"]), 10)
    scores = [math.exp(stats.entropy(s.T, s.mean(0)[:, None]).mean()) for s in splits]
    assert math.isclose(float(np.mean(scores)), ns["is_split_mean"], rel_tol=1e-12)
