"""Oracles and computed-card values for ssim, ms-ssim, vif, scd, qabf, nabf and
fusion-metrics-overview.

The snippets assert against torch/numpy oracles, closed forms and invariants; these tests add
independent reference implementations (scikit-image, torchmetrics, scipy), each skipped when its
package is missing. SCD, Qabf and Nabf have no package oracle: they are checked
against analytic cases and invariants, here recomputed independently in numpy/scipy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import as_float64 as _np

# ssim ---------------------------------------------------------------------------------------------


def test_ssim_matches_skimage_gaussian_setting(run_entry):
    metrics = pytest.importorskip("skimage.metrics")
    ns = run_entry("ssim")
    ref = metrics.structural_similarity(
        ns["x_np"], ns["y_np"], data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert math.isclose(ref, ns["ssim_xy"], rel_tol=0, abs_tol=1e-6)


def test_ssim_skimage_defaults_differ_and_need_data_range(run_entry):
    metrics = pytest.importorskip("skimage.metrics")
    ns = run_entry("ssim")
    default = metrics.structural_similarity(ns["x_np"], ns["y_np"], data_range=1.0)  # 7x7 uniform, sample cov
    assert abs(default - ns["ssim_xy"]) > 1e-3
    with pytest.raises(ValueError):
        metrics.structural_similarity(ns["x_np"], ns["y_np"])


def test_ssim_torchmetrics_border_handling(run_entry):
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.functional.image")
    ns = run_entry("ssim")
    x = torch.tensor(ns["x_np"])[None, None]
    y = torch.tensor(ns["y_np"])[None, None]
    ref = float(tm.structural_similarity_index_measure(y, x, data_range=1.0))
    assert 1e-4 < abs(ref - ns["ssim_xy"]) < 5e-3  # close, but border windows are counted differently
    # torchmetrics = the snippet's SSIM map on reflection-padded images, averaged over every pixel.
    pad = torch.nn.functional.pad
    padded = ns["ssim_maps"](pad(x, (5, 5, 5, 5), mode="reflect"), pad(y, (5, 5, 5, 5), mode="reflect"))[0]
    assert math.isclose(float(padded.mean()), ref, rel_tol=0, abs_tol=1e-12)


def test_ssim_card_values(computed_value):
    assert computed_value("ssim", "ssim-constant-images") == 0.9836
    assert computed_value("ssim", "ssim-constants-8bit") == [6.5025, 58.5225]
    shift, flip = computed_value("ssim", "ssim-equal-mse")
    assert shift > 0.99 and flip < 0.9


# ms-ssim ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ms_ssim_matches_torchmetrics_5_scales(run_entry):
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.functional.image")
    ns = run_entry("ms-ssim")
    x = torch.tensor(ns["x_np"])[None, None]
    y = torch.tensor(ns["y_np"])[None, None]
    ref = float(tm.multiscale_structural_similarity_index_measure(y, x, data_range=1.0))
    # torchmetrics averages the last-scale SSIM over a reflection-padded border: reproduce that exactly ...
    assert math.isclose(ns["ms_ssim"](ns["x"], ns["y"], pad_last=True)[0], ref, rel_tol=0, abs_tol=1e-8)
    # ... and the valid-window version of the entry stays within 1e-3 of it.
    assert abs(ns["msssim_xy"] - ref) < 1e-3


def test_ms_ssim_matches_torchmetrics_3_scales_64px(run_entry):
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.functional.image")
    ns = run_entry("ms-ssim")
    x = torch.tensor(ns["x_np"][:64, :64].copy())[None, None]
    y = torch.tensor(ns["y_np"][:64, :64].copy())[None, None]
    ref = float(tm.multiscale_structural_similarity_index_measure(y, x, data_range=1.0, betas=ns["BETAS"][:3]))
    assert math.isclose(ns["msssim3_64_tm"], ref, rel_tol=0, abs_tol=1e-8)


def test_ms_ssim_torchmetrics_size_limit(run_entry):
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.functional.image")
    ns = run_entry("ms-ssim")
    side = ns["min_side"][5]
    ok = torch.rand(1, 1, side, side, dtype=torch.float64)
    assert float(tm.multiscale_structural_similarity_index_measure(ok, ok, data_range=1.0)) == pytest.approx(1.0)
    small = torch.rand(1, 1, side - 1, side - 1, dtype=torch.float64)
    with pytest.raises(ValueError, match="larger than 160"):  # the message understates the bound (176)
        tm.multiscale_structural_similarity_index_measure(small, small, data_range=1.0)


def test_ms_ssim_card_values(computed_value):
    assert computed_value("ms-ssim", "ms-ssim-min-side") == 176
    assert computed_value("ms-ssim", "ms-ssim-beta-sum") == 1.0001
    ssim_val, msssim_val = computed_value("ms-ssim", "ms-ssim-vs-ssim-noise")
    assert msssim_val > ssim_val


# vif ----------------------------------------------------------------------------------------------


def test_vif_matches_torchmetrics(run_entry):
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.functional.image")
    ns = run_entry("vif")
    ref = torch.tensor(ns["ref_np"])[None, None]
    dist = torch.tensor(ns["dist_np"])[None, None]
    # torchmetrics' order is (preds, target): the distorted image first.
    assert math.isclose(float(tm.visual_information_fidelity(dist, ref)), ns["vif_8bit"], rel_tol=0, abs_tol=1e-9)
    assert math.isclose(
        float(tm.visual_information_fidelity(dist / 255, ref / 255)), ns["vif_unit"], rel_tol=0, abs_tol=1e-9
    )
    assert float(tm.visual_information_fidelity(ref, ref)) == pytest.approx(1.0, abs=1e-8)


def test_vif_values(computed_value):
    assert computed_value("vif", "vif-contrast-stretch") > 1.0
    noise = computed_value("vif", "vif-noise-curve")
    assert noise == sorted(noise, reverse=True)


# scd ----------------------------------------------------------------------------------------------


def test_scd_matches_scipy_pearsonr(run_entry):
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("scd")
    a, b, f = ns["a_np"], ns["b_np"], ns["f_np"]
    ref = stats.pearsonr((f - b).ravel(), a.ravel())[0] + stats.pearsonr((f - a).ravel(), b.ravel())[0]
    assert math.isclose(ns["scd_generic"], ref, rel_tol=0, abs_tol=1e-12)
    assert -2.0 <= ns["scd_generic"] <= 2.0


def test_scd_card_values(computed_value):
    assert computed_value("scd", "scd-sum") == 2.0
    assert computed_value("scd", "scd-average") == round(math.sqrt(2), 4) == 1.4142


# qabf ---------------------------------------------------------------------------------------------


def test_qabf_sobel_matches_scipy(run_entry):
    ndimage = pytest.importorskip("scipy.ndimage")
    ns = run_entry("qabf")
    sx, sy = ns["sobel"](ns["img"])
    img = ns["img_np"]
    np.testing.assert_allclose(_np(sx), ndimage.sobel(img, axis=1, mode="constant"), rtol=0, atol=1e-12)
    np.testing.assert_allclose(_np(sy), ndimage.sobel(img, axis=0, mode="constant"), rtol=0, atol=1e-12)


def test_qabf_closed_form_independent():
    # Q_g(G = 1) * Q_alpha(A = 1) with Xydeas & Petrovic's constants, typed here independently.
    q = 0.9994 / (1 + math.exp(-15 * (1 - 0.5))) * 0.9879 / (1 + math.exp(-22 * (1 - 0.8)))
    assert round(q, 4) == 0.9748


def test_qabf_card_value(computed_value):
    assert computed_value("qabf", "qabf-perfect") == 0.9748
    ideal, average = computed_value("qabf", "qabf-average-vs-ideal")
    assert 0.0 <= average < ideal <= 0.9748


# nabf ---------------------------------------------------------------------------------------------


def _nabf_numpy(a, b, f):
    """Independent numpy/scipy Nabf with Xydeas & Petrovic's constants (zero-padded Sobel)."""
    ndimage = pytest.importorskip("scipy.ndimage")

    def edges(x):
        sx, sy = ndimage.sobel(x, axis=1, mode="constant"), ndimage.sobel(x, axis=0, mode="constant")
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(sx == 0, np.pi / 2, np.arctan(sy / np.where(sx == 0, 1, sx)))
        return np.hypot(sx, sy), alpha

    def q(gx, ax, gf, af):
        big, small = np.maximum(gx, gf), np.minimum(gx, gf)
        G = np.where(big > 0, small / np.where(big > 0, big, 1), 1.0)
        A = 1 - np.abs(ax - af) / (np.pi / 2)
        return 0.9994 / (1 + np.exp(-15 * (G - 0.5))) * 0.9879 / (1 + np.exp(-22 * (A - 0.8)))

    (ga, aa), (gb, ab), (gf, af) = edges(a), edges(b), edges(f)
    am = (gf > ga) & (gf > gb)
    return float((am * ((1 - q(ga, aa, gf, af)) * ga + (1 - q(gb, ab, gf, af)) * gb)).sum() / (ga + gb).sum())


def test_nabf_matches_independent_numpy(run_entry):
    ns = run_entry("nabf")
    a, b, t, n = (_np(ns[k]) for k in ("A", "B", "texture", "noise"))
    for s, value in zip((0.05, 0.1, 0.2), ns["nabf_noisy"]):
        assert math.isclose(_nabf_numpy(a, b, t + s * n), value, rel_tol=0, abs_tol=1e-12)
    img = _np(ns["img"])
    assert _nabf_numpy(img, img, img) == 0.0


def test_nabf_card_values(computed_value):
    assert computed_value("nabf", "nabf-perfect") == 0.0
    noisy = computed_value("nabf", "nabf-noise")
    assert noisy == sorted(noisy)


# fusion-metrics-overview --------------------------------------------------------------------------


def test_overview_lower_is_better(computed_value):
    # Of EN/SF/SD/AG/MI/Nabf only Nabf is lower-is-better (and MSE).
    assert computed_value("fusion-metrics-overview", "fusion-lower-is-better") == ["MSE", "Nabf"]
    assert computed_value("fusion-metrics-overview", "fusion-no-reference") == ["AG", "EN", "SD", "SF"]


def test_overview_related_lists_every_fusion_metric(load_entry):
    related = set(load_entry("fusion-metrics-overview")["related"])
    planned = {
        "image-entropy",
        "spatial-frequency",
        "image-std",
        "average-gradient",
        "mutual-information",
        "correlation-coefficient",
        "scd",
        "qabf",
        "nabf",
        "vif",
        "ssim",
        "ms-ssim",
        "psnr",
        "mse",
    }
    assert planned <= related


def test_overview_mi_matches_sklearn(run_entry):
    metrics = pytest.importorskip("sklearn.metrics")
    ns = run_entry("fusion-metrics-overview")
    a, f = ns["A"], ns["F_avg"]
    ref_bits = metrics.mutual_info_score(a.astype(int).ravel(), f.astype(int).ravel()) / math.log(2)
    assert math.isclose(ns["mutual_info"](a, f), ref_bits, rel_tol=0, abs_tol=1e-9)


def test_snippets_are_fast(snippet_seconds):
    for cid in ("ssim", "ms-ssim", "vif", "scd", "qabf", "nabf", "fusion-metrics-overview"):
        assert snippet_seconds(cid) < 3.0, cid
