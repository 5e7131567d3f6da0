"""The exemplary snippets against oracles outside numpy/torch (scipy, scikit-image, torchmetrics).

The snippets already assert against torch's own implementations and closed forms; these tests add
independent reference implementations. Each skips when its oracle package is missing, so the KB
still validates with torch and numpy only.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import as_float64 as _np

# softmax ------------------------------------------------------------------------------------------


def test_softmax_matches_scipy(run_entry):
    special = pytest.importorskip("scipy.special")
    ns = run_entry("softmax")
    np.testing.assert_allclose(ns["p_np"], special.softmax(ns["z_np"], axis=-1), rtol=0, atol=1e-15)
    np.testing.assert_allclose(ns["p_big"], special.softmax(np.array([1000.0, 1001.0])), rtol=0, atol=1e-15)


def test_softmax_log_softmax_matches_scipy(run_entry):
    special = pytest.importorskip("scipy.special")
    ns = run_entry("softmax")
    np.testing.assert_allclose(np.log(ns["p_np"]), special.log_softmax(ns["z_np"], axis=-1), rtol=0, atol=1e-13)


# EMA ----------------------------------------------------------------------------------------------


def test_ema_is_a_first_order_iir_filter(run_entry):
    """v_t = beta v_{t-1} + (1 - beta) x_t is lfilter([1 - beta], [1, -beta], x) with v_0 = 0."""
    signal = pytest.importorskip("scipy.signal")
    ns = run_entry("ema-weights")
    beta = ns["beta"]
    np.testing.assert_allclose(ns["trace"], signal.lfilter([1 - beta], [1, -beta], ns["noise"]), rtol=0, atol=1e-12)
    # Steady-state variance of the filtered white noise: sum of squared impulse-response taps.
    taps = signal.lfilter([1 - beta], [1, -beta], np.r_[1.0, np.zeros(2000)])
    assert math.isclose(float(np.sum(taps**2)), ns["var_ratio_closed"], rel_tol=1e-12)


# KL divergence ------------------------------------------------------------------------------------


def test_kl_matches_scipy_entropy_and_rel_entr(run_entry):
    stats = pytest.importorskip("scipy.stats")
    special = pytest.importorskip("scipy.special")
    ns = run_entry("kl-divergence")
    p, q = ns["p_np"], ns["q_np"]
    assert math.isclose(ns["kl_pq"], stats.entropy(p, q), rel_tol=0, abs_tol=1e-15)
    assert math.isclose(ns["kl_qp"], stats.entropy(q, p), rel_tol=0, abs_tol=1e-15)
    assert math.isclose(ns["kl_pq"], float(special.rel_entr(p, q).sum()), rel_tol=0, abs_tol=1e-15)
    assert math.isclose(ns["kl_pq_bits"], stats.entropy(p, q, base=2), rel_tol=0, abs_tol=1e-15)


def test_kl_batch_matches_scipy(run_entry):
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("kl-divergence")
    np.testing.assert_allclose(ns["kl_batch"], stats.entropy(ns["P_np"], ns["Q_np"], axis=1), rtol=0, atol=1e-14)


def test_kl_zero_support_matches_scipy(run_entry):
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("kl-divergence")
    assert math.isclose(ns["kl_zero_p"], stats.entropy(ns["p0"], ns["q0"]), rel_tol=0, abs_tol=1e-15)
    assert stats.entropy(ns["q0"], ns["p0"]) == math.inf


def test_scipy_entropy_normalises_its_inputs(run_entry):
    """Backs the card `scipy-entropy-normalises`: unnormalised counts give the normalised KL."""
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("kl-divergence")
    assert math.isclose(stats.entropy([1, 6, 3], [3, 3, 4]), ns["kl_pq"], rel_tol=0, abs_tol=1e-15)


def test_gaussian_kl_matches_quadrature(run_entry):
    integrate = pytest.importorskip("scipy.integrate")
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("kl-divergence")
    mu1, lv1, mu2, lv2 = (_np(ns[k]) for k in ("mu1", "lv1", "mu2", "lv2"))
    ours = _np(ns["ours"])
    for i in range(len(ours)):
        p = stats.norm(mu1[i], math.exp(0.5 * lv1[i]))
        q = stats.norm(mu2[i], math.exp(0.5 * lv2[i]))
        value, _ = integrate.quad(lambda x, p=p, q=q: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), -np.inf, np.inf)
        assert math.isclose(value, ours[i], rel_tol=1e-7, abs_tol=1e-9), f"dimension {i}"
    n1, n0 = stats.norm(1, 1), stats.norm(0, 1)
    value, _ = integrate.quad(lambda x: n1.pdf(x) * (n1.logpdf(x) - n0.logpdf(x)), -np.inf, np.inf)
    assert math.isclose(value, ns["kl_gauss_10"], abs_tol=1e-9)


# self-attention -----------------------------------------------------------------------------------


def test_attention_matches_scipy_softmax_reference(run_entry):
    special = pytest.importorskip("scipy.special")
    ns = run_entry("self-attention")
    Q, K, V = _np(ns["Q"]), _np(ns["K"]), _np(ns["V"])
    weights = special.softmax(Q @ np.swapaxes(K, -1, -2) / math.sqrt(Q.shape[-1]), axis=-1)
    np.testing.assert_allclose(_np(ns["A"]), weights, rtol=0, atol=1e-13)
    np.testing.assert_allclose(_np(ns["out"]), weights @ V, rtol=0, atol=1e-12)
    assert _np(ns["out"]).shape[-1] == V.shape[-1] != Q.shape[-1]


def test_attention_masked_matches_scipy_reference(run_entry):
    special = pytest.importorskip("scipy.special")
    ns = run_entry("self-attention")
    Q, K, V = _np(ns["Q"]), _np(ns["K"]), _np(ns["V"])
    keep = _np(ns["keep"]).astype(bool)
    weights = special.softmax(Q @ np.swapaxes(K[:, keep], -1, -2) / math.sqrt(Q.shape[-1]), axis=-1)
    np.testing.assert_allclose(_np(ns["out_m"]), weights @ V[:, keep], rtol=0, atol=1e-12)


def test_attention_saturation_matches_scipy(run_entry):
    special = pytest.importorskip("scipy.special")
    ns = run_entry("self-attention")
    row = _np(ns["row"])
    for scale, key in ((1.0, "sat_raw"), (1 / math.sqrt(ns["d_big"]), "sat_scaled")):
        p = special.softmax(row * scale)
        assert math.isclose(float(np.max(p * (1 - p))), ns[key], rel_tol=1e-6), key


def test_attention_variance_matches_numpy(run_entry):
    ns = run_entry("self-attention")
    S = _np(ns["S"])
    assert math.isclose(float(np.var(S, ddof=1)), ns["var_raw"], rel_tol=1e-12)


# PSNR ---------------------------------------------------------------------------------------------


def test_psnr_matches_skimage(run_entry):
    metrics = pytest.importorskip("skimage.metrics")
    ns = run_entry("psnr")
    sk = metrics.peak_signal_noise_ratio(ns["target_np"], ns["pred_np"], data_range=255)
    assert math.isclose(sk, ns["psnr_mse100"], rel_tol=0, abs_tol=1e-10)


def test_psnr_matches_torchmetrics(run_entry):
    pytest.importorskip("torchmetrics")
    import torch
    from torchmetrics.functional.image import peak_signal_noise_ratio

    ns = run_entry("psnr")
    target = torch.as_tensor(ns["target_np"], dtype=torch.float64)
    pred = torch.as_tensor(ns["pred_np"], dtype=torch.float64)
    tm = float(peak_signal_noise_ratio(pred, target, data_range=255.0))
    # torchmetrics keeps data_range as a float32 tensor, so agreement is ~1e-6 dB, not float64-exact.
    assert math.isclose(tm, ns["psnr_mse100"], rel_tol=0, abs_tol=1e-5)


def test_psnr_colour_conventions_match_skimage(run_entry):
    metrics = pytest.importorskip("skimage.metrics")
    ns = run_entry("psnr")
    ref, out = ns["rgb_target_np"], ns["rgb_pred_np"]
    # Convention 2: skimage on the whole RGB array is the PSNR of the mean channel MSE.
    whole = metrics.peak_signal_noise_ratio(ref, out, data_range=255)
    assert math.isclose(whole, ns["psnr_of_mean_mse"], rel_tol=0, abs_tol=1e-10)
    # Convention 1: mean of per-channel skimage PSNRs.
    per_channel = [metrics.peak_signal_noise_ratio(ref[..., c], out[..., c], data_range=255) for c in range(3)]
    assert math.isclose(float(np.mean(per_channel)), ns["psnr_mean_of_channels"], rel_tol=0, abs_tol=1e-10)
    assert np.mean(per_channel) >= whole


def test_psnr_luma_matches_skimage_rgb2ycbcr(run_entry):
    color = pytest.importorskip("skimage.color")
    metrics = pytest.importorskip("skimage.metrics")
    ns = run_entry("psnr")
    y_ref = color.rgb2ycbcr(ns["rgb_target_np"])[..., 0]
    y_out = color.rgb2ycbcr(ns["rgb_pred_np"])[..., 0]
    np.testing.assert_allclose(_np(ns["y_target"]), y_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(_np(ns["y_pred"]), y_out, rtol=0, atol=1e-10)
    sk = metrics.peak_signal_noise_ratio(y_ref, y_out, data_range=255)
    assert math.isclose(sk, ns["psnr_y"], rel_tol=0, abs_tol=1e-9)


def test_torchmetrics_batch_pools_mse_unless_dim_is_given(run_entry):
    """Backs the card `batch-pooling`: default dim=None pools; dim=(1, 2, 3) averages per-image PSNRs."""
    pytest.importorskip("torchmetrics")
    import torch
    from torchmetrics.functional.image import peak_signal_noise_ratio

    ns = run_entry("psnr")
    # Treat the three colour channels as three one-channel images of a batch: (N, C, H, W) = (3, 1, 64, 64).
    target = torch.as_tensor(ns["rgb_target_np"], dtype=torch.float64).permute(2, 0, 1).unsqueeze(1)
    pred = torch.as_tensor(ns["rgb_pred_np"], dtype=torch.float64).permute(2, 0, 1).unsqueeze(1)
    pooled = float(peak_signal_noise_ratio(pred, target, data_range=255.0))
    per_image = float(peak_signal_noise_ratio(pred, target, data_range=255.0, dim=(1, 2, 3)))
    assert math.isclose(pooled, ns["psnr_of_mean_mse"], abs_tol=1e-5)  # float32 data_range inside torchmetrics
    assert math.isclose(per_image, ns["psnr_mean_of_channels"], abs_tol=1e-5)
    assert per_image > pooled


def test_torchmetrics_requires_data_range():
    pytest.importorskip("torchmetrics")
    import torch
    from torchmetrics.functional.image import peak_signal_noise_ratio

    x = torch.zeros(1, 1, 4, 4)
    with pytest.raises(TypeError):
        peak_signal_noise_ratio(x, x + 1)  # type: ignore[call-arg]


def test_skimage_refuses_out_of_range_floats_without_data_range(run_entry):
    metrics = pytest.importorskip("skimage.metrics")
    ns = run_entry("psnr")
    ref, out = ns["target_np"].astype(np.float64), ns["pred_np"].astype(np.float64)  # 0..255 stored as float
    with pytest.raises(ValueError):
        metrics.peak_signal_noise_ratio(ref, out)
