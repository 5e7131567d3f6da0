"""Oracles and computed-card values for image-noise, affine-transform, dct,
total-variation, quantization and spatial-filtering.

The snippets assert against torch/numpy oracles and closed forms; these tests add independent
reference implementations (scipy, scikit-image, scikit-learn, torchmetrics), each skipped when its
package is missing, and check every computed card against numbers typed here independently.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import as_float64 as _np

# image-noise --------------------------------------------------------------------------------------


def test_noise_awgn_psnr(computed_value):
    # sigma = 0.1 on a [0, 1] image gives about 20 dB (10 log10(1 / 0.01)).
    assert computed_value("image-noise", "awgn-psnr") == 20.0


def test_noise_salt_and_pepper_fraction(computed_value):
    assert computed_value("image-noise", "sp-fraction") == 0.1


def test_noise_psnr_matches_skimage(run_entry):
    metrics = pytest.importorskip("skimage.metrics")
    ns = run_entry("image-noise")
    ref = metrics.peak_signal_noise_ratio(ns["clean_np"], ns["noisy_gauss_np"], data_range=1.0)
    assert math.isclose(ref, ns["psnr_gauss"], abs_tol=1e-9)
    ref_sp = metrics.peak_signal_noise_ratio(ns["clean_np"], ns["noisy_sp_np"], data_range=1.0)
    assert math.isclose(ref_sp, ns["psnr_sp"], abs_tol=1e-9)


def test_noise_statistics_agree_with_skimage_random_noise(run_entry):
    util = pytest.importorskip("skimage.util")
    ns = run_entry("image-noise")
    clean = ns["clean_np"]
    # clean is inside [0.25, 0.75]; clipping at 0/1 needs |n| > 2.5 sigma, so the variance stays near 0.01.
    gauss = util.random_noise(clean, mode="gaussian", var=0.01, rng=0)
    assert abs(np.var(gauss - clean) - 0.01) < 5e-4
    assert abs(np.var(gauss - clean) - ns["var_gauss"]) < 5e-4
    sp = util.random_noise(clean, mode="s&p", amount=0.1, rng=0)
    frac = float(np.mean(sp != clean))
    assert abs(frac - 0.1) < 0.005 and abs(frac - ns["frac_corrupted"]) < 0.005
    assert set(np.unique(sp[sp != clean])) <= {0.0, 1.0}


# affine-transform ---------------------------------------------------------------------------------


def test_affine_trs_matches_skimage(run_entry):
    transform = pytest.importorskip("skimage.transform")
    ns = run_entry("affine-transform")
    tf = transform.AffineTransform(scale=ns["scale"], rotation=ns["rotation_rad"], translation=ns["trans"])
    np.testing.assert_allclose(tf.params, _np(ns["M_trs"]), rtol=0, atol=1e-12)
    # skimage applies the same map to points, and midpoints are preserved.
    pts = _np(ns["pts"])
    np.testing.assert_allclose(tf(pts), _np(ns["apply"](ns["M_trs"], ns["pts"])), rtol=0, atol=1e-12)
    np.testing.assert_allclose(tf((pts[0] + pts[1])[None] / 2)[0], (tf(pts[:1])[0] + tf(pts[1:2])[0]) / 2, atol=1e-12)


def test_affine_general_map_matches_skimage_estimate(run_entry):
    transform = pytest.importorskip("skimage.transform")
    ns = run_entry("affine-transform")
    src = _np(ns["src3"])
    dst = _np(ns["dst3"])
    if hasattr(transform.AffineTransform, "from_estimate"):
        tf = transform.AffineTransform.from_estimate(src, dst)
    else:
        tf = transform.AffineTransform()
        assert tf.estimate(src, dst)
    np.testing.assert_allclose(tf.params, _np(ns["M_gen"]), rtol=0, atol=1e-9)
    assert ns["n_params_2d"] == 6


def test_scipy_affine_transform_takes_the_inverse_map():
    ndimage = pytest.importorskip("scipy.ndimage")
    img = np.arange(25.0).reshape(5, 5)
    shift_right_by_one = np.array([[1.0, 0, 0], [0, 1.0, 1.0], [0, 0, 1.0]])  # forward map: col -> col + 1
    out = ndimage.affine_transform(img, shift_right_by_one, order=0, mode="constant", cval=-1)
    # The matrix is applied to OUTPUT coordinates to find input ones: out[:, j] = img[:, j + 1] (moved left).
    np.testing.assert_array_equal(out[:, :-1], img[:, 1:])


def test_affine_card_values(computed_value):
    # theta [[0,-1,0],[1,0,0]] in affine_grid + grid_sample equals torch.rot90(x, 1, (2, 3)).
    assert computed_value("affine-transform", "theta-rot90") is True
    assert computed_value("affine-transform", "area-factor") == 0.9
    assert computed_value("affine-transform", "dof-2d") == 6
    assert computed_value("affine-transform", "theta-shift-direction") == -1  # content moves left


# dct ----------------------------------------------------------------------------------------------


def test_dct_matrix_matches_scipy(run_entry):
    fft = pytest.importorskip("scipy.fft")
    ns = run_entry("dct")
    x, C = ns["x_np"], ns["C_np"]
    np.testing.assert_allclose(ns["X_np"], fft.dct(x, type=2, norm="ortho"), rtol=0, atol=1e-12)
    np.testing.assert_allclose(C, fft.dct(np.eye(8), type=2, norm="ortho", axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(fft.idct(ns["X_np"], type=2, norm="ortho"), x, rtol=0, atol=1e-12)
    # scipy's default norm=None is the unnormalised transform the snippet computes through the FFT.
    np.testing.assert_allclose(ns["y_unnorm_np"], fft.dct(x), rtol=0, atol=1e-12)
    np.testing.assert_allclose(C @ C.T, np.eye(8), rtol=0, atol=1e-12)
    assert math.isclose(np.sum(ns["X_np"] ** 2), np.sum(x**2), rel_tol=1e-12)


def test_dct_2d_matches_scipy_dctn(run_entry):
    fft = pytest.importorskip("scipy.fft")
    ns = run_entry("dct")
    np.testing.assert_allclose(ns["B_np"], fft.dctn(ns["block_np"], type=2, norm="ortho"), rtol=0, atol=1e-12)
    np.testing.assert_allclose(fft.idctn(ns["B_np"], norm="ortho"), ns["block_np"], rtol=0, atol=1e-12)


def test_dct_ramp_energy(computed_value):
    # 99.79% of an 8x8 ramp's energy sits in the 2x2 lowest orthonormal DCT-II coefficients.
    assert computed_value("dct", "ramp-energy-2x2") == 99.79
    assert computed_value("dct", "truncation-error") == round(math.sqrt(1 - 0.997914), 4)
    assert computed_value("dct", "scipy-default-norm") == 2.0


def test_dct_ramp_energy_with_scipy(run_entry):
    fft = pytest.importorskip("scipy.fft")
    ramp = np.add.outer(np.arange(8.0), np.arange(8.0))
    energy = fft.dctn(ramp, norm="ortho") ** 2
    share = energy[:2, :2].sum() / energy.sum()
    assert round(100 * share, 2) == 99.79
    assert math.isclose(run_entry("dct")["ramp_low_2x2_share"], share, rel_tol=1e-12)


# total-variation ----------------------------------------------------------------------------------


def test_tv_sum_matches_torchmetrics(run_entry):
    tm_image = pytest.importorskip("torchmetrics.functional.image")
    ns = run_entry("total-variation")
    batch = ns["batch"]
    assert math.isclose(float(tm_image.total_variation(batch, reduction="sum")), ns["tv_batch_sum"], rel_tol=1e-12)
    np.testing.assert_allclose(
        _np(tm_image.total_variation(batch, reduction="none")), _np(ns["tv_aniso"](batch)), rtol=1e-12
    )
    assert float(tm_image.total_variation(ns["square"], reduction="sum")) == 32.0


def test_tv_mean_version_is_not_the_torchmetrics_tv(run_entry):
    tm_image = pytest.importorskip("torchmetrics.functional.image")
    ns = run_entry("total-variation")
    big = ns["big"]
    ratio_sum = float(
        tm_image.total_variation(ns["square"], reduction="sum") / tm_image.total_variation(big, reduction="sum")
    )
    assert ratio_sum == 1.0  # the sum ignores empty background; the notes' mean does not
    assert ns["mean_canvas_ratio"] > 10


def test_tv_denoising_agrees_with_skimage_chambolle(run_entry):
    restoration = pytest.importorskip("skimage.restoration")
    ns = run_entry("total-variation")
    noisy, clean = ns["noisy_np"], ns["clean_np"]
    den = restoration.denoise_tv_chambolle(noisy, weight=0.1)

    def tv(u):
        return np.abs(np.diff(u, axis=0)).sum() + np.abs(np.diff(u, axis=1)).sum()

    assert math.isclose(tv(noisy), ns["tv_noisy"], rel_tol=1e-12)
    assert tv(den) < 0.5 * tv(noisy) and ns["tv_denoised"] < 0.5 * tv(noisy)
    mse = lambda u: float(np.mean((u - clean) ** 2))  # noqa: E731
    assert mse(den) < 0.5 * mse(noisy) and mse(ns["denoised_np"]) < 0.5 * mse(noisy)
    # Both solvers land in the same place to within a factor of 1.5 in error.
    assert 1 / 1.5 < mse(ns["denoised_np"]) / mse(den) < 1.5


def test_tv_card_values(computed_value):
    assert computed_value("total-variation", "square-tv") == 32
    assert computed_value("total-variation", "step-vs-ramp") == [1.0, 1.0, 1.0, 0.125]
    assert computed_value("total-variation", "aniso-45") == round(math.sqrt(2), 4) == 1.4142
    assert computed_value("total-variation", "mean-tv-weights") == round(4 * 63 / (3 * 64), 4) == 1.3125


# quantization -------------------------------------------------------------------------------------


def test_quantization_bins_match_sklearn(run_entry):
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    ns = run_entry("quantization")
    kb = preprocessing.KBinsDiscretizer(n_bins=4, encode="ordinal", strategy="uniform", subsample=None)
    kb.fit(np.array([[0.0], [256.0]]))  # 'uniform' takes the edges from the data range: 0, 64, ..., 256
    np.testing.assert_array_equal(kb.bin_edges_[0], [0, 64, 128, 192, 256])
    bins = kb.transform(ns["x_u_np"].reshape(-1, 1)).ravel()
    np.testing.assert_array_equal(bins, ns["idx_np"])
    np.testing.assert_array_equal(bins, np.floor(ns["x_u_np"] / 64))
    # Half-open bins: 64 belongs to [64, 128).
    assert kb.transform(np.array([[63.0], [64.0], [200.0], [255.0]])).ravel().tolist() == [0, 1, 3, 3]


def test_quantization_card_values(computed_value):
    # 200 -> 192 with the notes' lower-edge rule (mid-point: 224).
    assert computed_value("quantization", "q200-lower-mid") == [192, 224]
    # Uniform input, Delta = 64: Delta^2/3 = 1365.3 vs Delta^2/12 = 341.3.
    assert computed_value("quantization", "mse-lower-vs-mid") == [1365.3, 341.3]
    assert computed_value("quantization", "lower-edge-bias") == -32
    assert computed_value("quantization", "db-per-bit") == 6.02


def test_quantization_monte_carlo_matches_closed_forms(run_entry):
    ns = run_entry("quantization")
    assert abs(ns["mse_lower_mc"] - 64**2 / 3) / (64**2 / 3) < 0.02
    assert abs(ns["mse_mid_mc"] - 64**2 / 12) / (64**2 / 12) < 0.02


# spatial-filtering --------------------------------------------------------------------------------


def test_spatial_box_filter_matches_scipy_mirror(run_entry):
    ndimage = pytest.importorskip("scipy.ndimage")
    ns = run_entry("spatial-filtering")
    # torch 'reflect' padding = scipy.ndimage mode='mirror'.
    np.testing.assert_allclose(
        ns["box_out_np"], ndimage.uniform_filter(ns["f_np"], 3, mode="mirror"), rtol=0, atol=1e-14
    )
    # ... and not scipy's 'reflect' (which repeats the edge pixel).
    assert not np.allclose(ns["box_out_np"], ndimage.uniform_filter(ns["f_np"], 3, mode="reflect"))


def test_spatial_median_matches_scipy_reflect(run_entry):
    ndimage = pytest.importorskip("scipy.ndimage")
    ns = run_entry("spatial-filtering")
    # numpy 'symmetric' padding = scipy.ndimage mode='reflect'.
    np.testing.assert_array_equal(ns["median_np"], ndimage.median_filter(ns["f_np"], 3, mode="reflect"))


def test_spatial_correlation_vs_convolution_with_scipy(run_entry):
    ndimage = pytest.importorskip("scipy.ndimage")
    ns = run_entry("spatial-filtering")
    f, w = ns["f_np"], ns["w_asym_np"]
    np.testing.assert_allclose(ns["corr_asym_np"], ndimage.correlate(f, w, mode="mirror"), rtol=0, atol=1e-14)
    np.testing.assert_allclose(
        ns["corr_asym_np"], ndimage.convolve(f, w[::-1, ::-1], mode="mirror"), rtol=0, atol=1e-14
    )
    assert not np.allclose(ns["corr_asym_np"], ndimage.convolve(f, w, mode="mirror"))
    # Separable Gaussian: two 1-D passes.
    g1 = ns["g1_np"]
    sep = ndimage.correlate1d(ndimage.correlate1d(f, g1, axis=0, mode="mirror"), g1, axis=1, mode="mirror")
    np.testing.assert_allclose(ns["gauss_np"], sep, rtol=0, atol=1e-14)


def test_spatial_morphology_matches_scipy(run_entry):
    ndimage = pytest.importorskip("scipy.ndimage")
    ns = run_entry("spatial-filtering")
    binary = ns["binary_np"]
    se = np.ones((3, 3), dtype=bool)
    # max_pool2d ignores pixels outside the image: erosion with border_value=1, min filter with 'nearest'.
    np.testing.assert_array_equal(
        ndimage.binary_erosion(binary.astype(bool), se, border_value=1), ns["eroded_np"].astype(bool)
    )
    np.testing.assert_array_equal(ndimage.minimum_filter(binary, 3, mode="nearest"), ns["eroded_np"])
    np.testing.assert_array_equal(ndimage.binary_dilation(binary.astype(bool), se), ns["dilated_np"].astype(bool))
    np.testing.assert_array_equal(ndimage.maximum_filter(binary, 3, mode="nearest"), ns["dilated_np"])


def test_spatial_card_values(computed_value):
    assert computed_value("spatial-filtering", "pad-modes") == [3, 2, 1, 2, 3, 2, 1]
    assert computed_value("spatial-filtering", "spike-residual") == [0.0, round(0.5 / 9, 4)] == [0.0, 0.0556]
    assert computed_value("spatial-filtering", "median-linear") is False


# all six ------------------------------------------------------------------------------------------

IDS = ("image-noise", "affine-transform", "dct", "total-variation", "quantization", "spatial-filtering")


@pytest.mark.parametrize("concept_id", IDS)
def test_entry_structure(concept_id, load_entry, snippet_seconds):
    from kb.schema import Concept

    # The bar every entry meets (file, ids, cards, sources, aliases) is tests/content/test_every_entry.py.
    concept = Concept.model_validate(load_entry(concept_id))
    assert concept.id == concept_id and concept.category == "image-processing"
    assert len({c.type for c in concept.cards}) >= 3
    assert concept.formulas and len(concept.pitfalls) >= 3
    assert "computed-card" in concept.tags
    # Under a second after imports; total-variation imports gradcheck's lazy dependency up front (~2 s).
    assert snippet_seconds(concept_id) < 5.0
