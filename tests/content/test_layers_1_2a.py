"""Layers, first half: convolution (+ feature map), conv-output-size,
dilated-convolution, channels, residual-shortcut, ffn, gelu, gru.

Two kinds of checks: the snippets' values against oracles outside numpy/torch (scipy; each test
skips when its package is missing), and every computed card of these entries against
its worked value, with the expected numbers typed here independently of the snippets.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import as_float64 as _np

# convolution (+ feature map) ------------------------------------------------------------------------


def test_conv2d_is_scipy_correlate2d(run_entry):
    signal = pytest.importorskip("scipy.signal")
    ns = run_entry("convolution")
    np.testing.assert_allclose(
        ns["corr_np"], signal.correlate2d(ns["img_np"], ns["ker_np"], mode="valid"), rtol=0, atol=1e-12
    )


def test_conv2d_with_flipped_kernel_is_scipy_convolve2d(run_entry):
    signal = pytest.importorskip("scipy.signal")
    ns = run_entry("convolution")
    expected = signal.convolve2d(ns["img_np"], ns["ker_np"], mode="valid")
    np.testing.assert_allclose(ns["conv_true_np"], expected, rtol=0, atol=1e-12)
    assert not np.allclose(ns["corr_np"], expected, atol=1e-3)


def test_convolution_cards(computed_value):
    assert computed_value("convolution", "conv1d-vs-convolve") == [[8.0, 14.0, 20.0], [4.0, 10.0, 16.0]]
    assert computed_value("convolution", "feature-map-shape") == (1, 16, 16, 16)


# conv-output-size -----------------------------------------------------------------------------------


def test_conv_output_size_112(computed_value):
    # floor((224 + 2*3 - 1*(7-1) - 1) / 2) + 1 = 112.
    assert computed_value("conv-output-size", "resnet-stem-112") == (224 + 6 - 6 - 1) // 2 + 1 == 112


def test_conv_output_size_other_cards(computed_value):
    assert computed_value("conv-output-size", "resnet-stem-pool") == 56
    assert computed_value("conv-output-size", "unused-row") == [3, [7]]


# dilated-convolution --------------------------------------------------------------------------------


def test_dilated_receptive_field(computed_value):
    # One / two stacked 3x3 convs with dilation 2 -> 5x5 / 9x9.
    assert computed_value("dilated-convolution", "rf-one-two-layers") == [5, 9]


def test_dilated_other_cards(computed_value):
    assert computed_value("dilated-convolution", "rf-exponential") == 1 + 2 * (1 + 2 + 4) == 15
    assert computed_value("dilated-convolution", "gridding") == 5 * 5


# channels -------------------------------------------------------------------------------------------


def test_channels_conv_params(computed_value):
    # Conv2d(3, 64, 3) has 64*3*3*3 + 64 = 1,792 parameters.
    assert computed_value("channels", "conv-3-64-3-params") == 64 * 3 * 3 * 3 + 64 == 1792


def test_channels_six_by_six_example(computed_value):
    # The source notes' figure (checked, and correct): 6x6x3 with one 3x3x3 kernel -> 4x4x1.
    assert computed_value("channels", "six-by-six-example") == (4, 4, 1)
    assert computed_value("channels", "depthwise-params") == 640


def test_channels_example_matches_scipy(run_entry):
    """Summing scipy's per-channel 2-D correlations reproduces the one-kernel output."""
    signal = pytest.importorskip("scipy.signal")
    ns = run_entry("channels")
    expected = sum(signal.correlate2d(ns["x_np"][c], ns["k_np"][c], mode="valid") for c in range(3))
    np.testing.assert_allclose(_np(ns["y"])[0, 0], expected, rtol=0, atol=1e-12)


# residual-shortcut ----------------------------------------------------------------------------------


def test_residual_cards(computed_value):
    plain, residual = computed_value("residual-shortcut", "plain-vs-residual-gradient")
    assert plain < 1e-30 and 1 < residual < 20  # vanishing without shortcuts, order 1 with them
    # Bias-free ReLU nets are positively homogeneous: scaling 50 layers by 1.5 scales the gradient by 1.5^50.
    assert computed_value("residual-shortcut", "relu-weight-scale") == float(f"{1.5**50:.3g}") == 6.38e8
    assert computed_value("residual-shortcut", "projection-params") == [0, 64 * 128]


# ffn ------------------------------------------------------------------------------------------------


def test_ffn_params(computed_value):
    # 2 * 4 * 512^2 + 4 * 512 + 512 = 2,099,712.
    assert computed_value("ffn", "ffn-512-params") == 2_099_712


def test_ffn_other_cards(computed_value):
    assert computed_value("ffn", "ffn-share") == round(2_099_712 / (2_099_712 + 1_050_624), 3) == 0.667
    assert computed_value("ffn", "swiglu-llama") == 3 * 4096 * 11008 == 135_266_304


# gelu -----------------------------------------------------------------------------------------------


def test_gelu_matches_scipy_norm_cdf(run_entry):
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("gelu")
    x = ns["x_np"]
    np.testing.assert_allclose(ns["gelu_np"], x * stats.norm.cdf(x), rtol=0, atol=1e-12)


def test_gelu_minimum_matches_scipy_minimize_scalar(computed_value):
    optimize = pytest.importorskip("scipy.optimize")
    stats = pytest.importorskip("scipy.stats")
    res = optimize.minimize_scalar(
        lambda t: t * stats.norm.cdf(t), bounds=(-3, 0), method="bounded", options={"xatol": 1e-10}
    )
    value, where = computed_value("gelu", "global-minimum")
    assert [value, where] == [round(res.fun, 5), round(res.x, 4)] == [-0.16997, -0.7518]


def test_gelu_tanh_gap_matches_scipy(computed_value):
    optimize = pytest.importorskip("scipy.optimize")
    special = pytest.importorskip("scipy.special")

    def neg_gap(t):
        exact = 0.5 * t * (1 + special.erf(t / math.sqrt(2)))
        approx = 0.5 * t * (1 + np.tanh(math.sqrt(2 / math.pi) * (t + 0.044715 * t**3)))
        return -abs(exact - approx)

    res = optimize.minimize_scalar(neg_gap, bounds=(1.5, 4), method="bounded", options={"xatol": 1e-10})
    # The exact maximum is 4.73e-4 at |x| = 2.70, not the 4.65e-4 once assumed (the gap is odd-symmetric).
    assert computed_value("gelu", "tanh-gap") == float(f"{-res.fun:.3g}") == 4.73e-4
    assert computed_value("gelu", "sigmoid-gap") == 0.02


# gru ------------------------------------------------------------------------------------------------


def test_gru_params(computed_value):
    # nn.GRUCell(3, 4) has 3 (H I + H^2 + 2H) = 3 (12 + 16 + 8) = 108 parameters.
    assert computed_value("gru", "grucell-params") == 108


def test_gru_gradient_cards(computed_value):
    rnn, gru = computed_value("gru", "vanishing-rnn-vs-gru")
    assert rnn < 1e-20 and 0.1 < gru < 10  # vanishing vs preserved by a remembering update gate
    assert computed_value("gru", "exploding-gru") >= 1e3  # gates do not prevent explosion
