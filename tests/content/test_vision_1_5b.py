"""The vision entries, second half: canny, hed, mlsd, midas, openpose, uniformer, face-landmarks,
mask, self-blended-images.

The snippets assert against torch/numpy oracles; these tests add independent reference
implementations (scikit-image, scipy, scikit-learn, torchmetrics), each skipped when its package is
missing, and check that every computed card of these entries gives its worked value (expected
numbers typed here independently).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from helpers import as_float64 as _np
from kb.schema import Concept

IDS = ("canny", "hed", "mlsd", "midas", "openpose", "uniformer", "face-landmarks", "mask", "self-blended-images")
ANNOTATORS = {"canny", "hed", "mlsd", "midas", "openpose", "uniformer"}
FACE = {"face-landmarks", "self-blended-images"}


CONTENT = Path(__file__).resolve().parents[2] / "content"


def _written(concept_id: str) -> bool:
    return any(CONTENT.glob(f"**/{concept_id}.yaml"))


@pytest.fixture(params=IDS)
def concept_id(request) -> str:
    if not _written(request.param):
        pytest.skip(f"{request.param} not written yet")
    return request.param


# structure ----------------------------------------------------------------------------------------


def test_entry_structure(concept_id, load_entry, snippet_seconds):
    # The bar every entry meets (file, ids, cards, sources, aliases) is tests/content/test_every_entry.py.
    concept = Concept.model_validate(load_entry(concept_id))
    assert concept.id == concept_id and concept.category == "vision"
    if concept_id in ANNOTATORS:
        assert "controlnet-annotator" in concept.tags
    if concept_id in FACE:
        assert "face-forensics" in concept.tags
    # Loose bound: the first gradcheck lazily imports torch.fx (about 1 s), and CI machines are shared.
    # `kb verify` reports the real time (all of these run well under 1 s there).
    assert snippet_seconds(concept_id) < 5.0, "snippet too slow"


# canny --------------------------------------------------------------------------------------------


def test_canny_hysteresis_matches_skimage(run_entry):
    filters = pytest.importorskip("skimage.filters")
    ns = run_entry("canny")
    ref = filters.apply_hysteresis_threshold(ns["nms"], ns["low"], ns["high"])
    assert (ref == ns["edges"]).all()
    ref_toy = filters.apply_hysteresis_threshold(ns["toy"], 0.2, 0.6)
    assert (ref_toy == ns["toy_kept"]).all()


def test_canny_hysteresis_matches_scipy_label(run_entry):
    ndimage = pytest.importorskip("scipy.ndimage")
    ns = run_entry("canny")
    labels, _ = ndimage.label(ns["nms"] > ns["low"], structure=np.ones((3, 3)))
    seeds = np.unique(labels[(ns["nms"] > ns["high"])])
    assert (np.isin(labels, seeds[seeds > 0]) == ns["edges"]).all()


def test_canny_agrees_with_skimage_canny(run_entry):
    feature = pytest.importorskip("skimage.feature")
    ndimage = pytest.importorskip("scipy.ndimage")
    ns = run_entry("canny")
    # Same sigma and the same thresholds on the Sobel magnitude (skimage's float defaults, 0.1 / 0.2,
    # are absolute and pick up noise at sigma = 1 on this image).
    ref = feature.canny(ns["image"], sigma=1, low_threshold=ns["low"], high_threshold=ns["high"])
    # skimage's edges lie within 2 px of the square's true outline ...
    outline = ns["outline"]
    near = ndimage.binary_dilation(outline, structure=np.ones((5, 5)))
    assert ref.any() and not (ref & ~near).any()
    # ... and every edge pixel of the snippet has a skimage edge pixel within 1 px.
    assert not (ns["edges"] & ~ndimage.binary_dilation(ref, structure=np.ones((3, 3)))).any()


def test_canny_sobel_matches_scipy(run_entry):
    ndimage = pytest.importorskip("scipy.ndimage")
    ns = run_entry("canny")
    np.testing.assert_allclose(ns["gx"], ndimage.sobel(ns["smooth"], axis=1, mode="nearest"), atol=1e-12)
    np.testing.assert_allclose(ns["gy"], ndimage.sobel(ns["smooth"], axis=0, mode="nearest"), atol=1e-12)


def test_canny_cards(computed_value):
    assert computed_value("canny", "sobel-step") == 4
    assert computed_value("canny", "toy-hysteresis") == 5


# hed ----------------------------------------------------------------------------------------------


def test_hed_balanced_loss_matches_numpy(run_entry):
    ns = run_entry("hed")
    a, y = _np(ns["logits"]).ravel(), _np(ns["y"]).ravel()
    beta = np.mean(y == 0)
    p = 1 / (1 + np.exp(-a))
    ref = -beta * np.sum(np.log(p[y == 1])) - (1 - beta) * np.sum(np.log(1 - p[y == 0]))
    assert math.isclose(float(ns["ours"]), ref, rel_tol=1e-5)


def test_hed_cards(computed_value):
    assert computed_value("hed", "beta-10-percent") == 0.9
    assert computed_value("hed", "pos-weight") == 9.0
    assert computed_value("hed", "best-constant") == [0.1, 0.5]


# mlsd ---------------------------------------------------------------------------------------------


def test_mlsd_hough_matches_skimage(run_entry):
    transform = pytest.importorskip("skimage.transform")
    ns = run_entry("mlsd")
    h, theta, dist = transform.hough_line(ns["img"])
    assert (h.astype(np.int64) == ns["acc"]).all(), "accumulator differs from skimage.transform.hough_line"
    _, angles, dists = transform.hough_line_peaks(h, theta, dist, num_peaks=1)
    assert float(np.rad2deg(angles[0])) == 0.0 and float(dists[0]) == 20.0


def test_mlsd_cards(computed_value):
    assert computed_value("mlsd", "tp-example") == [[20.0, 40.0], [-10.0, -20.0], [10.0, 20.0]]
    assert computed_value("mlsd", "hough-vertical") == [0.0, 20.0]


# midas --------------------------------------------------------------------------------------------


def test_midas_alignment_matches_polyfit(run_entry):
    ns = run_entry("midas")
    s, b = np.polyfit(ns["pred"].ravel(), ns["target"].ravel(), 1)
    assert math.isclose(s, 3.0, abs_tol=1e-9) and math.isclose(b, -0.7, abs_tol=1e-9)


def test_midas_scale_shift(computed_value):
    # Least-squares alignment of t = 3d - 0.7 recovers (s, b) = (3, -0.7).
    assert computed_value("midas", "scale-shift") == [3.0, -0.7]


def test_midas_other_cards(computed_value):
    n = np.array([-0.05, -0.08, 1.0]) / math.sqrt(0.05**2 + 0.08**2 + 1)
    assert computed_value("midas", "plane-normal") == [round(float(v), 4) for v in n]
    assert computed_value("midas", "depth-space-rmse") > 0.01


# openpose -----------------------------------------------------------------------------------------


def test_openpose_matching_matches_scipy(run_entry):
    optimize = pytest.importorskip("scipy.optimize")
    ns = run_entry("openpose")
    rows, cols = optimize.linear_sum_assignment(ns["scores"], maximize=True)
    assert cols.tolist() == ns["matching"]


def test_openpose_paf_scores(computed_value):
    true, wrong = computed_value("openpose", "paf-scores")
    assert true > 0.99 and wrong < 0.2  # true limbs score about 1, wrong pairings near 0
    assert computed_value("openpose", "max-not-mean") == [1.0, 0.5]


# uniformer ----------------------------------------------------------------------------------------


def test_uniformer_miou_matches_sklearn(run_entry):
    metrics = pytest.importorskip("sklearn.metrics")
    ns = run_entry("uniformer")
    t, p = _np(ns["target"]).ravel(), _np(ns["pred"]).ravel()
    assert math.isclose(metrics.jaccard_score(t, p, average="macro"), ns["miou"], abs_tol=1e-12)
    np.testing.assert_allclose(metrics.jaccard_score(t, p, average=None), _np(ns["iou"]), atol=1e-12)


def test_uniformer_miou_matches_torchmetrics(run_entry):
    seg = pytest.importorskip("torchmetrics.functional.segmentation")
    ns = run_entry("uniformer")
    pred, target = ns["pred"].cpu()[None], ns["target"].cpu()[None]
    value = seg.mean_iou(pred, target, num_classes=3, input_format="index")
    assert math.isclose(float(value), ns["miou"], abs_tol=1e-6)


def test_uniformer_cards(computed_value):
    assert computed_value("uniformer", "miou-example") == round((3 / 5 + 10 / 7) / 3, 4) == 0.6762
    assert computed_value("uniformer", "pixel-accuracy-example") == 13 / 16
    assert computed_value("uniformer", "absent-class") == round((3 / 5 + 10 / 7) / 4, 4)


# face-landmarks -----------------------------------------------------------------------------------


def test_face_landmarks_umeyama_matches_skimage(run_entry):
    transform = pytest.importorskip("skimage.transform")
    ns = run_entry("face-landmarks")
    cls = transform.SimilarityTransform
    if hasattr(cls, "from_estimate"):  # scikit-image >= 0.26
        tf = cls.from_estimate(ns["template"], ns["noisy"])
    else:
        tf = cls()
        assert tf.estimate(ns["template"], ns["noisy"])
    assert math.isclose(tf.scale, ns["s_n"], rel_tol=1e-10)
    np.testing.assert_allclose(tf.params[:2, :2], ns["s_n"] * ns["R_n"], atol=1e-10)
    np.testing.assert_allclose(tf.translation, ns["t_n"], atol=1e-8)


def test_face_landmarks_hull_mask_matches_skimage(run_entry):
    draw = pytest.importorskip("skimage.draw")
    morphology = pytest.importorskip("skimage.morphology")
    ns = run_entry("face-landmarks")
    mask = ns["hull_mask"]
    rr, cc = draw.polygon(ns["hull"][:, 1], ns["hull"][:, 0], mask.shape)
    poly = np.zeros_like(mask)
    poly[rr, cc] = True
    assert (poly & mask).sum() / (poly | mask).sum() > 0.99
    pts = np.zeros_like(mask)
    tp = np.round(ns["template"]).astype(int)
    pts[tp[:, 1], tp[:, 0]] = True
    chull = morphology.convex_hull_image(pts)
    assert (chull & mask).sum() / (chull | mask).sum() > 0.97


def test_face_landmarks_cards(computed_value):
    assert computed_value("face-landmarks", "jaw-points") == 17
    assert computed_value("face-landmarks", "eye-points") == 6
    assert computed_value("face-landmarks", "mouth-points") == 20
    scale, angle = computed_value("face-landmarks", "umeyama-recovery")
    assert abs(scale - 1.3) <= 0.02 and abs(angle - 20.0) <= 0.5


# mask ---------------------------------------------------------------------------------------------


def test_mask_blend_matches_numpy_where(run_entry):
    ns = run_entry("mask")
    hard = ns["hard"].cpu().numpy()
    A, B = ns["A"].cpu().numpy(), ns["B"].cpu().numpy()
    np.testing.assert_array_equal(ns["blend"].cpu().numpy(), np.where(hard, A, B))


def test_mask_cards(computed_value):
    assert computed_value("mask", "masked-mean") == 2.0  # (1+2+3)/3
    assert computed_value("mask", "naive-masked-mean") == 0.75  # (1+2+3)/8
    assert float(np.ma.array([1, 2, 3, 4], mask=[True, True, False, False]).mean()) == 3.5  # typed card np-ma


# self-blended-images ------------------------------------------------------------------------------


def test_sbi_mask_blur_matches_scipy(run_entry):
    ndimage = pytest.importorskip("scipy.ndimage")
    ns = run_entry("self-blended-images")
    for field, sigma in (("deformed", 2.0), ("eroded", 3.0)):
        ref = ndimage.gaussian_filter(ns[field], sigma, mode="reflect", truncate=4.0)
        np.testing.assert_allclose(ns["gaussian_blur"](ns[field], sigma), ref, atol=1e-12)


def test_sbi_invariants(run_entry):
    ns = run_entry("self-blended-images")
    sbi, target, M = ns["sbi_np"], ns["target"], ns["M"]
    assert (sbi[:, M == 0] == target[:, M == 0]).all()
    assert sbi.min() >= 0 and sbi.max() <= 1


def test_sbi_cards(computed_value):
    assert computed_value("self-blended-images", "blend-ratio") == [0.75, 0.5]  # (0.25+0.5+0.75+3)/6, 3/6
    assert computed_value("self-blended-images", "outside-mask") == 0.0
