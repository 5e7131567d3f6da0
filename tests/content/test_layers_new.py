"""New layer entries: group-norm, rmsnorm, swiglu, depthwise-separable-convolution,
transposed-convolution, receptive-field, resnet-bottleneck.

Two kinds of checks: the snippets' values against oracles written here outside torch (numpy and
scipy; a test skips when its package is missing), and every computed card against its worked
value, with the expected numbers typed here independently of the snippets.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import as_float64 as _np
from kb.schema import Concept

IDS = (
    "group-norm",
    "rmsnorm",
    "swiglu",
    "depthwise-separable-convolution",
    "transposed-convolution",
    "receptive-field",
    "resnet-bottleneck",
)


# structure ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("concept_id", IDS)
def test_entry_structure(concept_id, load_entry):
    # The bar every entry meets is tests/content/test_every_entry.py; this adds what these entries promise.
    concept = Concept.model_validate(load_entry(concept_id))
    assert concept.id == concept_id and concept.category == "layers"
    assert concept.formulas and concept.snippet and len(concept.pitfalls) >= 3
    assert "computed-card" in concept.tags and any(card.type == "computed" for card in concept.cards)
    assert len({card.type for card in concept.cards}) >= 3
    assert all(s.url.startswith(("https://arxiv.org/", "https://docs.pytorch.org/")) for s in concept.sources)


@pytest.mark.parametrize("concept_id", IDS)
def test_snippet_is_fast_and_prints(concept_id, snippet_seconds, snippet_output):
    # Well under 1 s on one core; the machine may be shared, so the bound here is generous.
    assert snippet_seconds(concept_id) < 5.0
    assert snippet_output(concept_id).strip()


# group-norm ---------------------------------------------------------------------------------------


def test_group_norm_matches_numpy(run_entry):
    ns = run_entry("group-norm")
    x, w, b = ns["x_np"], ns["w_np"], ns["b_np"]
    n, c, h, wd = x.shape
    groups = x.reshape(n, 4, -1)
    normed = (groups - groups.mean(-1, keepdims=True)) / np.sqrt(groups.var(-1, keepdims=True) + 1e-5)
    expected = normed.reshape(x.shape) * w[None, :, None, None] + b[None, :, None, None]
    np.testing.assert_allclose(ns["y_np"], expected, rtol=0, atol=1e-12)


def test_group_norm_cards(computed_value):
    # Group 0 = [1, 2, 3]: mean 2, variance 2/3, so +-1 / sqrt(2/3) = +-1.2247.
    # Group 1 = [2, 4, 12]: mean 6, variance (16 + 4 + 36) / 3 = 56/3, sqrt = 4.3205: -0.9258, -0.4629, 1.3887.
    assert computed_value("group-norm", "worked-example") == [-1.225, 0.0, 1.225, -0.926, -0.463, 1.389]
    # GroupNorm: gamma and beta per channel, 2 * 256; LayerNorm([256, 32, 32]): 2 * 256 * 1024.
    assert computed_value("group-norm", "affine-params") == [512, 524_288]


# rmsnorm ------------------------------------------------------------------------------------------


def test_rmsnorm_matches_numpy(run_entry):
    ns = run_entry("rmsnorm")
    x, w = ns["x_np"], ns["w_np"]
    expected = x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-6) * w
    np.testing.assert_allclose(ns["y_np"], expected, rtol=0, atol=1e-12)


def test_rmsnorm_cards(computed_value):
    # RMS([1, 2, 3, 4]) = sqrt(30 / 4) = 2.7386 -> 0.3651, 0.7303, 1.0954, 1.4606.
    # RMS([11, 12, 13, 14]) = sqrt(630 / 4) = 12.5499 -> 0.8765, 0.9562, 1.0359, 1.1155.
    assert computed_value("rmsnorm", "offset-example") == [
        [0.3651, 0.7303, 1.0954, 1.4606],
        [0.8765, 0.9562, 1.0359, 1.1155],
    ]
    # 1e-3 / sqrt(1e-6 + 1.19e-7) = 1e-3 / 1.0579e-3 = 0.945; 1e-3 / sqrt(1.1e-5) = 0.302.
    assert computed_value("rmsnorm", "default-eps") == [0.945, 0.302]
    assert computed_value("rmsnorm", "params-4096") == [4096, 8192]


# swiglu -------------------------------------------------------------------------------------------


def test_swiglu_matches_numpy_with_scipy_expit(run_entry):
    special = pytest.importorskip("scipy.special")
    ns = run_entry("swiglu")
    x, w1, w2, w3 = ns["x_np"], ns["w1_np"], ns["w2_np"], ns["w3_np"]
    gate = x @ w1.T
    expected = (gate * special.expit(gate) * (x @ w3.T)) @ w2.T
    np.testing.assert_allclose(ns["y_np"], expected, rtol=0, atol=1e-12)


def test_silu_minimum_matches_scipy(run_entry):
    optimize = pytest.importorskip("scipy.optimize")
    special = pytest.importorskip("scipy.special")
    res = optimize.minimize_scalar(
        lambda u: u * special.expit(u), bounds=(-3, 0), method="bounded", options={"xatol": 1e-10}
    )
    assert run_entry("swiglu")["silu_min"] == [round(res.fun, 4), round(res.x, 4)] == [-0.2785, -1.2785]


def test_swiglu_cards(computed_value):
    # 2/3 * 4 * 4096 = 10922.67 -> int 10922 -> 10922 / 256 = 42.66 -> 43 * 256 = 11008.
    assert computed_value("swiglu", "llama-7b-hidden") == 11008
    # 2/3 * 4 * 5120 = 13653.33 -> 13653 -> 13653 / 256 = 53.33 -> 54 * 256 = 13824.
    assert computed_value("swiglu", "llama-13b-hidden") == 13824
    # 8 * 768 / 3 = 2048; 3 * 768 * 2048 = 2 * 768 * 3072 = 4,718,592.
    assert computed_value("swiglu", "t5-equal-size") == [2048, 4_718_592]


# depthwise-separable-convolution ------------------------------------------------------------------


def test_separable_matches_scipy_correlate2d(run_entry):
    signal = pytest.importorskip("scipy.signal")
    ns = run_entry("depthwise-separable-convolution")
    x, dw, pw = ns["x_np"], ns["dw_np"], ns["pw_np"]
    for n in range(x.shape[0]):
        z = np.stack([signal.correlate2d(x[n, c], dw[c, 0], mode="same") for c in range(x.shape[1])])
        np.testing.assert_allclose(ns["y_np"][n], np.einsum("oc,chw->ohw", pw[:, :, 0, 0], z), rtol=0, atol=1e-12)


def test_separable_cards(computed_value):
    # Depthwise 3 * 3 * 64 = 576, pointwise 64 * 128 = 8192: 8768.
    assert computed_value("depthwise-separable-convolution", "separable-params") == 8768
    # 3 * 3 * 64 * 128 = 73,728; 73728 / 8768 = 8.4088 -> 8.41.
    assert computed_value("depthwise-separable-convolution", "standard-vs-separable") == 73_728
    # Weight (out=64, in/groups=1, 3, 3): 64 * 9 = 576.
    assert tuple(computed_value("depthwise-separable-convolution", "depth-multiplier")) == (64, 1, 3, 3)


# transposed-convolution ---------------------------------------------------------------------------


def _scatter_numpy(y, w, stride, padding):
    """Transposed convolution in numpy: every input pixel adds y[i, j] * w into the output, then crop."""
    n, c_in, h, wd = y.shape
    k = w.shape[-1]
    out = np.zeros((n, w.shape[1], (h - 1) * stride + k, (wd - 1) * stride + k))
    for i in range(h):
        for j in range(wd):
            out[:, :, i * stride : i * stride + k, j * stride : j * stride + k] += np.einsum(
                "nc,cokl->nokl", y[:, :, i, j], w
            )
    return out[:, :, padding : out.shape[2] - padding, padding : out.shape[3] - padding]


def test_transposed_conv_matches_numpy_scatter(run_entry):
    ns = run_entry("transposed-convolution")
    np.testing.assert_allclose(ns["ref_np"], _scatter_numpy(ns["y_np"], ns["w_np"], 2, 1), rtol=0, atol=1e-12)


def test_transposed_conv_1d_matches_scipy_upfirdn(computed_value):
    signal = pytest.importorskip("scipy.signal")
    # Upsample by 2 (zero insertion), filter with the kernel: the scatter form of a stride-2 transposed conv.
    expected = signal.upfirdn([1.0, 2.0, 3.0], [1.0, 2.0], up=2)[:5]
    assert computed_value("transposed-convolution", "scatter-1d") == [int(v) for v in expected] == [1, 2, 5, 4, 6]


def test_transposed_conv_cards(computed_value):
    # (16 - 1) * 2 - 2 * 1 + (4 - 1) + 1 = 32.
    assert computed_value("transposed-convolution", "shape-inverse") == 32
    # s - 1 = 1 zero between pixels, k - 1 - p = 2 zeros on each side.
    assert computed_value("transposed-convolution", "zero-insertion-numbers") == [1, 2]


# receptive-field ----------------------------------------------------------------------------------


def _rf_by_intervals(layers):
    """Independent of the recursion: walk the input interval of one output unit down through (k, s, d) layers."""
    lo, hi = 0, 0
    for k, s, d in reversed(layers):
        lo, hi = lo * s, hi * s + d * (k - 1)
    return hi - lo + 1


def test_receptive_field_matches_interval_walk(computed_value):
    assert computed_value("receptive-field", "stem-rf")[0] == _rf_by_intervals(
        [(7, 2, 1), (3, 2, 1), (3, 1, 1), (3, 1, 1)]
    )
    assert computed_value("receptive-field", "order-matters") == [
        _rf_by_intervals([(3, 2, 1), (3, 1, 1)]),
        _rf_by_intervals([(3, 1, 1), (3, 2, 1)]),
    ]


def test_effective_rf_matches_scipy_convolve2d(run_entry):
    signal = pytest.importorskip("scipy.signal")
    ones = np.ones((3, 3))
    np.testing.assert_array_equal(run_entry("receptive-field")["grad2_window_np"], signal.convolve2d(ones, ones))


def test_receptive_field_cards(computed_value):
    # 7 -> (jump 2) 7 + 2*2 = 11 -> (jump 4) 11 + 2*4 = 19 -> 27; final jump 2 * 2 = 4.
    assert computed_value("receptive-field", "stem-rf") == [27, 4]
    # 3 + 2 * 2 = 7 against 3 + 2 * 1 = 5.
    assert computed_value("receptive-field", "order-matters") == [7, 5]
    # Stem and pool reach 11 at jump 4. v1: stage 1 +3*8 = 35; stage 2 jump 8 first, +4*16 = 99; stage 3 jump 16,
    # +6*32 = 291; stage 4 jump 32, +3*64 = 483. v1.5: the first 3x3 of each stage still sees the old jump:
    # 35 + 8 + 3*16 = 91; + 16 + 5*32 = 267; + 32 + 2*64 = 427.
    assert computed_value("receptive-field", "resnet50-rf") == [483, 427]
    assert computed_value("receptive-field", "vgg-argument") == [7, 27, 49]
    # Path counts: [1, 2, 3, 2, 1] per axis, so 3 * 3 at the centre and 1 * 1 at a corner.
    assert computed_value("receptive-field", "effective-rf") == [9, 1]


# resnet-bottleneck --------------------------------------------------------------------------------


def _bottleneck(c_in: int, w: int, proj: bool) -> int:
    convs = c_in * w + 9 * w * w + w * 4 * w
    bns = 2 * (w + w + 4 * w)
    return convs + bns + ((c_in * 4 * w + 2 * 4 * w) if proj else 0)


def test_resnet50_params(computed_value):
    # Stem: 7*7*3*64 = 9408 weights + 128 BN. Stages: first block with projection, the rest identity.
    stem = 9408 + 128
    stages = sum(
        _bottleneck(c_in, w, True) + (n - 1) * _bottleneck(4 * w, w, False)
        for c_in, w, n in [(64, 64, 3), (256, 128, 4), (512, 256, 6), (1024, 512, 3)]
    )
    fc = 2048 * 1000 + 1000
    assert stem + stages + fc == 25_557_032
    assert computed_value("resnet-bottleneck", "resnet50-params") == 25_557_032
    assert computed_value("resnet-bottleneck", "classifier-share") == [2_049_000, 23_508_032]


def test_resnet_bottleneck_cards(computed_value):
    # 64*64 + 9*64*64 + 64*256 = 57,344 conv weights; BN 2*(64+64+256) = 768; projection 64*256 + 512 = 16,896.
    assert computed_value("resnet-bottleneck", "first-block-params") == 57_344 + 768 + 16_896 == 75_008
    # 16,384 + 36,864 + 16,384 = 69,632 against 2 * 36,864 = 73,728.
    assert computed_value("resnet-bottleneck", "bottleneck-vs-basic") == [69_632, 73_728]


def test_resnet_block_output_is_non_negative(run_entry):
    ns = run_entry("resnet-bottleneck")
    y = _np(ns["y"])
    assert y.shape == (2, 32, 5, 5) and (y >= 0).all() and math.isfinite(float(y.sum()))
