"""Layers, second half: mpnn, layernorm-add-norm, shift-operation, proj-in, pixel-shuffle,
upsampling, downsampling, mamba-ssm.

Structural checks, oracles outside numpy/torch (each skips when its package is missing), and the
computed cards' values, typed here independently of the snippets.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from helpers import as_float64 as _np
from kb.schema import Concept

IDS = (
    "mpnn",
    "layernorm-add-norm",
    "shift-operation",
    "proj-in",
    "pixel-shuffle",
    "upsampling",
    "downsampling",
    "mamba-ssm",
)


CONTENT = Path(__file__).resolve().parents[2] / "content"


def _present(concept_id: str) -> bool:
    return len(list(CONTENT.glob(f"**/{concept_id}.yaml"))) == 1


@pytest.fixture(params=IDS)
def concept_id(request) -> str:
    if not _present(request.param):
        pytest.skip(f"{request.param} not written yet")
    return request.param


# structure ----------------------------------------------------------------------------------------


def test_entry_structure(concept_id, load_entry):
    # The bar every entry meets (file, ids, cards, sources, aliases) is tests/content/test_every_entry.py.
    concept = Concept.model_validate(load_entry(concept_id))
    assert concept.id == concept_id and concept.category == "layers"


def test_snippet_is_fast(concept_id, run_entry, snippet_output, snippet_seconds):
    run_entry(concept_id)
    assert snippet_output(concept_id).strip(), "the snippet should print a few informative lines"
    # Generous bound (first-call lazy imports, loaded CI machines); each snippet needs well under 1 s of CPU.
    assert snippet_seconds(concept_id) < 5.0


# mpnn ---------------------------------------------------------------------------------------------


def test_mpnn_sum_aggregation_matches_scipy_sparse(run_entry):
    sparse = pytest.importorskip("scipy.sparse")
    if not _present("mpnn"):
        pytest.skip("mpnn not written yet")
    ns = run_entry("mpnn")
    src, dst = _np(ns["src"]).astype(int), _np(ns["dst"]).astype(int)
    n = ns["X_np"].shape[0]
    # Adjacency from the edge list: row = receiver v, column = sender w.
    A = sparse.coo_matrix((np.ones(len(src)), (dst, src)), shape=(n, n)).tocsr()
    np.testing.assert_array_equal(A.toarray(), ns["A_np"])
    np.testing.assert_allclose(ns["AXW_np"], A @ ns["X_np"] @ ns["W_np"], rtol=0, atol=1e-12)


def test_mpnn_cards(computed_value):
    if not _present("mpnn"):
        pytest.skip("mpnn not written yet")
    assert computed_value("mpnn", "two-round-reach") == 3
    assert computed_value("mpnn", "sum-vs-mean") == [[2.0, 1.0], [1.0, 1.0]]


def _need(concept_id: str) -> None:
    if not _present(concept_id):
        pytest.skip(f"{concept_id} not written yet")


# layernorm-add-norm -------------------------------------------------------------------------------


def test_layernorm_matches_numpy_population_variance(run_entry):
    _need("layernorm-add-norm")
    ns = run_entry("layernorm-add-norm")
    x, gamma, beta = _np(ns["x"]), _np(ns["ln"].weight), _np(ns["ln"].bias)
    ref = gamma * (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, ddof=0, keepdims=True) + 1e-5) + beta
    np.testing.assert_allclose(_np(ns["y"]), ref, rtol=0, atol=1e-12)


def test_layernorm_cards(computed_value):
    _need("layernorm-add-norm")
    assert computed_value("layernorm-add-norm", "unbiased-variance-mistake") == round(math.sqrt(7 / 8), 4) == 0.9354
    assert computed_value("layernorm-add-norm", "constant-token") == [0.0, 0.0, 0.0, 0.0]
    assert computed_value("layernorm-add-norm", "ln-params") == 1024


# shift-operation ----------------------------------------------------------------------------------


def test_shift_zero_filled_matches_scipy_ndimage(run_entry):
    ndimage = pytest.importorskip("scipy.ndimage")
    _need("shift-operation")
    ns = run_entry("shift-operation")
    img = _np(ns["img"])[0, 0]
    ref = ndimage.shift(img, (0, 1), order=0, mode="constant", cval=0.0)
    np.testing.assert_array_equal(_np(ns["shifted"])[0, 0], ref)
    x = _np(ns["x"])
    np.testing.assert_array_equal(_np(ns["xs"]), np.roll(x, (-3, -3), axis=(1, 2)))


def test_shift_cards(computed_value):
    _need("shift-operation")
    assert computed_value("shift-operation", "shift-right") == [1, 5, 6, 7]
    assert computed_value("shift-operation", "roll-1d") == [4, 5, 1, 2, 3]
    assert computed_value("shift-operation", "roll-without-dims") == [[5, 0, 1], [2, 3, 4]]
    assert computed_value("shift-operation", "swin-shift-size") == 3
    assert computed_value("shift-operation", "tsm-fraction") == 0.25


# proj-in ------------------------------------------------------------------------------------------


def test_proj_in_matches_numpy_einsum(run_entry):
    _need("proj-in")
    ns = run_entry("proj-in")
    x, w, b = _np(ns["x"]), _np(ns["conv"].weight)[:, :, 0, 0], _np(ns["conv"].bias)
    tokens = x.transpose(0, 2, 3, 1).reshape(x.shape[0], -1, x.shape[1])  # b (h w) c
    np.testing.assert_allclose(_np(ns["z_lin"]), tokens @ w.T + b, rtol=0, atol=1e-12)


def test_proj_in_cards(computed_value):
    _need("proj-in")
    assert computed_value("proj-in", "sd-proj-in-params") == 320 * 320 + 320 == 102_720
    assert computed_value("proj-in", "sd-inner-dim") == 320
    assert computed_value("proj-in", "reshape-trap") is False


# pixel-shuffle ------------------------------------------------------------------------------------


def test_pixel_shuffle_matches_numpy_reshape(run_entry):
    _need("pixel-shuffle")
    ns = run_entry("pixel-shuffle")
    x = _np(ns["x"])
    B, Cr2, H, W = x.shape
    r = 2
    ref = x.reshape(B, Cr2 // r**2, r, r, H, W).transpose(0, 1, 4, 2, 5, 3).reshape(B, -1, H * r, W * r)
    np.testing.assert_array_equal(_np(ns["y"]), ref)


def test_pixel_shuffle_shape(computed_value):
    """nn.PixelShuffle(2) on (1, 12, 4, 5) -> (1, 3, 8, 10)."""
    _need("pixel-shuffle")
    assert computed_value("pixel-shuffle", "shape-12-4-5") == [1, 3, 8, 10]
    assert computed_value("pixel-shuffle", "source-channel") == 2
    assert computed_value("pixel-shuffle", "channels-x3-rgb") == 27


# upsampling ---------------------------------------------------------------------------------------


def test_upsampling_bilinear_matches_scipy_and_skimage(run_entry):
    ndimage = pytest.importorskip("scipy.ndimage")
    _need("upsampling")
    ns = run_entry("upsampling")
    img = _np(ns["img"])
    for c in range(img.shape[1]):
        plane = img[0, c]
        # align_corners=True is scipy's default grid_mode=False (corner samples coincide).
        np.testing.assert_allclose(
            _np(ns["img_bilinear_ac"])[0, c], ndimage.zoom(plane, 2, order=1), rtol=0, atol=1e-12
        )
        # align_corners=False is grid_mode=True (pixel areas aligned) with edge clamping.
        ref = ndimage.zoom(plane, 2, order=1, grid_mode=True, mode="nearest")
        np.testing.assert_allclose(_np(ns["img_bilinear"])[0, c], ref, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(
            _np(ns["up_nearest"])[0, c], ndimage.zoom(plane, 2, order=0, grid_mode=True, mode="nearest")
        )
    transform = pytest.importorskip("skimage.transform")
    ref = transform.resize(img[0, 0], (10, 14), order=1, mode="edge", anti_aliasing=False)
    np.testing.assert_allclose(_np(ns["img_bilinear"])[0, 0], ref, rtol=0, atol=1e-12)


def test_upsampling_cards(computed_value):
    _need("upsampling")
    assert computed_value("upsampling", "k4s2p1") == 32
    assert computed_value("upsampling", "align-corners") == [[0.0, 0.3333, 0.6667, 1.0], [0.0, 0.25, 0.75, 1.0]]
    assert computed_value("upsampling", "output-padding") == [7, 8]
    assert computed_value("upsampling", "checkerboard") == [1.0, 2.0]


# downsampling -------------------------------------------------------------------------------------


def test_downsampling_pools_match_skimage_block_reduce(run_entry):
    measure = pytest.importorskip("skimage.measure")
    _need("downsampling")
    ns = run_entry("downsampling")
    x = _np(ns["x"])
    np.testing.assert_allclose(_np(ns["x_avg"]), measure.block_reduce(x, (1, 1, 2, 2), np.mean), rtol=0, atol=1e-14)
    np.testing.assert_array_equal(_np(ns["x_max"]), measure.block_reduce(x, (1, 1, 2, 2), np.max))


def test_downsampling_cards(computed_value):
    _need("downsampling")
    # The dilated conv keeps 32 px, the strided conv halves it.
    assert computed_value("downsampling", "stride-vs-dilation") == [16, 32]
    assert computed_value("downsampling", "aliasing-stripes") == [0.0, 0.5]
    assert computed_value("downsampling", "odd-size-pooling") == [3, 4]
    no_aa, aa = computed_value("downsampling", "antialias-contrast")
    assert no_aa == 1.0 and 0 < aa < 0.2


# mamba-ssm ----------------------------------------------------------------------------------------


def test_mamba_zoh_matches_scipy_cont2discrete_and_expm(run_entry):
    signal = pytest.importorskip("scipy.signal")
    linalg = pytest.importorskip("scipy.linalg")
    _need("mamba-ssm")
    ns = run_entry("mamba-ssm")
    A, B, C = ns["A_np"], ns["B_np"], ns["C_np"]
    Ad, Bd, Cd, _, dt = signal.cont2discrete((A, B, C, np.zeros((1, 1))), ns["dt"], method="zoh")
    assert dt == ns["dt"]
    np.testing.assert_allclose(ns["A_bar_np"], Ad, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ns["B_bar_np"], Bd, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ns["A_bar_np"], linalg.expm(ns["dt"] * A), rtol=0, atol=1e-12)


def test_mamba_scalar_ssm_matches_lfilter(run_entry):
    signal = pytest.importorskip("scipy.signal")
    _need("mamba-ssm")
    ns = run_entry("mamba-ssm")
    ref = signal.lfilter([ns["b_bar"]], [1.0, -ns["a_bar"]], ns["x_scalar"])
    np.testing.assert_allclose(ns["y_scalar"], ref, rtol=0, atol=1e-12)


def test_mamba_lti_recurrence_matches_lfilter_impulse_response(run_entry):
    """The SSM kernel K_j = C A_bar^j B_bar is the impulse response of the discrete system."""
    signal = pytest.importorskip("scipy.signal")
    _need("mamba-ssm")
    ns = run_entry("mamba-ssm")
    A_bar, B_bar, C = ns["A_bar_np"], ns["B_bar_np"], ns["C_np"]
    # The entry updates the state before reading it (y_t = C h_t with h_t = A_bar h_{t-1} + B_bar x_t);
    # scipy's convention reads it first, so the equivalent system has C' = C A_bar and D' = C B_bar.
    num, den = signal.ss2tf(A_bar, B_bar, C @ A_bar, C @ B_bar)
    x = _np(ns["x"])
    np.testing.assert_allclose(_np(ns["y_rec"]), signal.lfilter(num[0], den, x), rtol=0, atol=1e-9)


def test_mamba_cards(computed_value):
    _need("mamba-ssm")
    assert (
        computed_value("mamba-ssm", "zoh-scalar")
        == [round(math.exp(-0.1), 4), round(1 - math.exp(-0.1), 4)]
        == [0.9048, 0.0952]
    )
    assert computed_value("mamba-ssm", "delta-gate") == [0.99005, 4.5e-05]
    assert computed_value("mamba-ssm", "state-size") == 768 * 2 * 16 == 24_576
