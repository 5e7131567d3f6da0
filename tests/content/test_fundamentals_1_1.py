"""The twelve fundamentals entries: structure, computed-card values and oracles.

Expected numbers are typed here independently of the snippets, at the precision each card shows.
Oracles outside numpy/torch (scipy) are skipped when missing.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from kb.schema import Concept

ENTRIES = (
    "hparam-dim",
    "swin-hyperparameters",
    "data-dimensionality-1d-2d-3d",
    "tensor-layout-nchw-nhwc",
    "computational-graph",
    "numpy-flatten-transpose",
    "broadcasting-batched-matmul",
    "einsum",
    "detach",
    "vanishing-exploding-gradients",
    "end-to-end-learning",
    "gaussian-nll",
)

# Every concept id the bundled content is meant to have, duplicates merged (related/prerequisites may
# only point at these).
PLANNED = set(
    """
    softmax ema-weights kl-divergence hparam-dim swin-hyperparameters data-dimensionality-1d-2d-3d
    tensor-layout-nchw-nhwc computational-graph numpy-flatten-transpose broadcasting-batched-matmul einsum
    detach vanishing-exploding-gradients end-to-end-learning gaussian-nll
    convolution conv-output-size dilated-convolution channels residual-shortcut ffn gelu gru mpnn
    layernorm-add-norm shift-operation proj-in pixel-shuffle upsampling downsampling mamba-ssm
    self-attention transformer multi-head-attention causal-mask cross-attention attention-head-dims
    linear-attention window-attention sinusoidal-positional-encoding vision-transformer ldm-spatial-transformer
    vae reparameterization-trick gan conditional-gan face-privacy-gans diffusion-ddpm latent-diffusion-model
    imagenet bev fpn clip spatial-transformer-network rrdb swinir unet canny hed mlsd midas openpose
    uniformer face-landmarks mask self-blended-images
    image-noise affine-transform dct total-variation quantization spatial-filtering
    accuracy precision recall f1-score roc-auc mse psnr psnr-color image-entropy spatial-frequency image-std
    mutual-information vif average-gradient correlation-coefficient scd qabf ssim ms-ssim nabf
    fusion-metrics-overview
    bert large-language-model 3d-parallelism zero-optimizer hhh-alignment rlhf emergent-abilities
    hard-coding
    """.split()
)


@pytest.fixture(params=ENTRIES)
def concept_id(request) -> str:
    return request.param


# Structure ----------------------------------------------------------------------------------------


def test_entry_structure(concept_id, load_entry):
    # The bar every entry meets (file, ids, cards, sources, aliases) is tests/content/test_every_entry.py.
    concept = Concept.model_validate(load_entry(concept_id))
    assert concept.id == concept_id and concept.category == "fundamentals"
    assert concept.formulas and concept.snippet is not None and len(concept.pitfalls) >= 3
    assert set(concept.related) | set(concept.prerequisites) <= PLANNED
    assert len({c.type for c in concept.cards}) >= 3


def test_snippet_runs_quickly_and_prints(concept_id, run_entry, snippet_seconds, snippet_output):
    run_entry(concept_id)
    assert snippet_output(concept_id).strip()
    # The budget is 1 s after imports; allow slack for a loaded machine and the first gradcheck call.
    assert snippet_seconds(concept_id) < 3.0


# computed-card values and oracle numbers ----------------------------------------------------------------


def test_transpose_reverses_all_axes(computed_value):
    # np.arange(24).reshape(2, 3, 4).T.shape -> (4, 3, 2)
    assert tuple(computed_value("numpy-flatten-transpose", "nd-transpose-shape")) == (4, 3, 2)
    assert tuple(computed_value("numpy-flatten-transpose", "swap-last-two")) == (2, 4, 3)
    assert tuple(computed_value("numpy-flatten-transpose", "flatten-copy")) == (0, 100)


def test_detach_gradient_is_2x(computed_value):
    # The gradient of ((2x).detach() * x).sum() is 2x, not 4x; x = [1, 2, 3].
    assert computed_value("detach", "detached-product-grad") == [2.0, 4.0, 6.0]
    assert computed_value("detach", "shares-storage") is True
    assert computed_value("detach", "inplace-backward") is True


def test_swin_stage1_resolution(computed_value):
    # Swin-T, 224 px, patch 4 -> a 56 x 56 token grid in stage 1.
    assert tuple(computed_value("swin-hyperparameters", "stage1-resolution-windows")) == (56, 56)
    assert computed_value("swin-hyperparameters", "stage-resolutions") == [56, 28, 14, 7]
    assert computed_value("swin-hyperparameters", "stage1-tokens") == 3136


def test_ffn_params(computed_value):
    # Swin-T stage 1 (dim 96, r = 4): 2*96*384 + 384 + 96 (the 512-wide FFN is the ffn entry's card).
    assert computed_value("swin-hyperparameters", "mlp-params-swin-t") == 74_208


def test_conv2d_params(computed_value):
    # Conv2d(3, 64, 3) has 1,792 parameters; Conv1d 640, Conv3d 5,248.
    assert computed_value("data-dimensionality-1d-2d-3d", "conv-param-counts") == [640, 1_792, 5_248]
    assert tuple(computed_value("data-dimensionality-1d-2d-3d", "video-shape")) == (1, 8, 16, 32, 32)


def test_channels_last_strides(computed_value):
    # For (2, 3, 4, 5), channels_last strides are (60, 1, 15, 3).
    assert tuple(computed_value("tensor-layout-nchw-nhwc", "channels-last-stride")) == (60, 1, 15, 3)
    assert tuple(computed_value("tensor-layout-nchw-nhwc", "nchw-stride")) == (60, 20, 5, 1)


def test_batched_matmul_shapes(computed_value):
    # (5, 1, 3, 4) @ (1, 6, 4, 2) -> (5, 6, 3, 2).
    assert tuple(computed_value("broadcasting-batched-matmul", "matmul-broadcast-shape")) == (5, 6, 3, 2)
    assert tuple(computed_value("broadcasting-batched-matmul", "np-dot-shape")) == (5, 1, 3, 1, 6, 2)
    assert tuple(computed_value("broadcasting-batched-matmul", "column-minus-vector")) == (6, 6)


def test_grad_fn_chain(computed_value):
    chain = computed_value("computational-graph", "grad-fn-chain")
    assert chain == ["SumBackward0", "MulBackward0", "AccumulateGrad"]
    expected = 6 * math.sin(3) + 9 * math.cos(3)  # d/dx x^2 sin x at 3
    assert computed_value("computational-graph", "diamond-gradient") == round(expected, 4)
    assert computed_value("computational-graph", "accumulation") == round(2 * expected, 4)


def test_einsum_values(computed_value):
    assert computed_value("einsum", "trace") == 12
    assert tuple(computed_value("einsum", "attention-scores-shape")) == (2, 4, 6, 7)
    assert computed_value("einsum", "implicit-transpose") is True
    assert computed_value("einsum", "contraction-order") == round((8 * 64 * 64 + 8 * 64) / (64 * 64 + 8 * 64), 1)


def test_exploding_gradient_1p5_pow_50(run_entry, computed_value):
    # A 50-layer linear stack with W = 1.5 I has gradient 1.5^50, about 6.4e8.
    ns = run_entry("vanishing-exploding-gradients")
    assert math.isclose(ns["explode_grad"], 637_621_500.21, rel_tol=1e-10)
    assert computed_value("vanishing-exploding-gradients", "linear-explode") == 6.38e8
    assert computed_value("vanishing-exploding-gradients", "relu-not-the-cause") == 6.38e8
    assert computed_value("vanishing-exploding-gradients", "sigmoid-slope") == 0.25
    plain, residual = computed_value("vanishing-exploding-gradients", "sigmoid-vs-residual")
    assert plain < 1e-20 < 1.0 < residual  # vanishes without shortcuts, survives with them


def test_end_to_end_handoff(computed_value):
    assert computed_value("end-to-end-learning", "detached-handoff-grad") == "None"
    assert computed_value("end-to-end-learning", "round-grad") == 0.0


def test_hparam_dim_values(computed_value):
    assert tuple(computed_value("hparam-dim", "sum-dim-shape")) == (2, 4)
    assert computed_value("hparam-dim", "layernorm-params") == 192
    assert computed_value("hparam-dim", "swin-t-widths") == [96, 192, 384, 768]


def test_gaussian_nll_cards(computed_value):
    half_log_2pi = round(0.5 * math.log(2 * math.pi), 4)
    assert half_log_2pi == 0.9189
    assert computed_value("gaussian-nll", "std-normal-at-mean") == half_log_2pi
    assert computed_value("gaussian-nll", "full-false-gap") == half_log_2pi
    assert computed_value("gaussian-nll", "best-variance") == 0.49


# Oracles outside numpy/torch -----------------------------------------------------------------------


def test_gaussian_nll_matches_scipy(run_entry):
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("gaussian-nll")
    expected = -float(np.sum(stats.norm.logpdf(ns["x_np"], loc=ns["mu_np"], scale=ns["std_np"])))
    assert math.isclose(ns["nll"], expected, rel_tol=0, abs_tol=1e-12)
    assert math.isclose(ns["nll_loss_full"], expected, rel_tol=0, abs_tol=1e-12)


def test_gaussian_nll_default_loss_matches_scipy(run_entry):
    """GaussianNLLLoss() (full=False, mean) = mean over elements of (-logpdf - 1/2 log 2 pi)."""
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("gaussian-nll")
    per_element = -stats.norm.logpdf(ns["x_np"], loc=ns["mu_np"], scale=ns["std_np"]) - 0.5 * np.log(2 * np.pi)
    assert math.isclose(ns["loss_default"], float(per_element.mean()), rel_tol=0, abs_tol=1e-12)


def test_best_variance_matches_scipy_minimiser():
    optimize = pytest.importorskip("scipy.optimize")
    r = 0.7
    res = optimize.minimize_scalar(lambda lv: 0.5 * (math.log(2 * math.pi) + lv + r**2 / math.exp(lv)))
    assert math.isclose(math.exp(res.x), r**2, rel_tol=1e-5)
