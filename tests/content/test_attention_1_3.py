"""The attention entries: structure, computed-card values and oracles.

Expected numbers are typed here independently of the snippets (closed forms, or the worked values
at the precision each card shows). Oracles outside numpy/torch (scipy) are skipped when the package
is missing.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import as_float64 as _np
from kb.schema import Concept

IDS = (
    "transformer",
    "multi-head-attention",
    "causal-mask",
    "cross-attention",
    "attention-head-dims",
    "linear-attention",
    "window-attention",
    "sinusoidal-positional-encoding",
    "vision-transformer",
    "ldm-spatial-transformer",
)


# structure ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("concept_id", IDS)
def test_entry_structure(concept_id, load_entry):
    # The bar every entry meets (file, ids, cards, sources, aliases) is tests/content/test_every_entry.py.
    concept = Concept.model_validate(load_entry(concept_id))
    assert concept.id == concept_id and concept.category == "attention"
    assert concept.formulas and concept.snippet and concept.sources and concept.pitfalls


def test_merged_ids_are_aliases(load_entry):
    assert "hparam-num-heads" in load_entry("attention-head-dims")["aliases"]
    assert "shifted-window-attention" in load_entry("window-attention")["aliases"]
    assert "attention context" in load_entry("cross-attention")["aliases"]


@pytest.mark.parametrize("concept_id", IDS)
def test_snippet_is_fast(concept_id, snippet_seconds):
    # < 1 s after imports on one core; the first gradcheck imports its helpers (~0.4 s), and the
    # machine may be shared, so the bound here is generous.
    assert snippet_seconds(concept_id) < 5.0


# computed-card values ----------------------------------------------------------------------------


def test_mha_shapes_and_params(computed_value):
    # Output (2,5,16), per-head weights (2,4,5,5), 4E^2 + 4E = 1088 parameters.
    assert computed_value("multi-head-attention", "shapes-and-params") == [(2, 5, 16), (2, 4, 5, 5), 1088]
    assert 4 * 16**2 + 4 * 16 == 1088


def test_vit_tokens(computed_value):
    # 197 tokens with CLS, flattened patch length 768.
    assert computed_value("vision-transformer", "tokens-and-patch-length") == [197, 768]
    assert computed_value("vision-transformer", "tokens-384") == (384 // 16) ** 2 + 1 == 577


def test_window_flops(computed_value):
    # FLOPs of global vs window attention: 3.372e9 vs 2.013e8.
    assert computed_value("window-attention", "flops-msa-vs-wmsa") == [3.372e9, 2.013e8]


def test_swin_t_stage1(computed_value):
    # Swin-T stage 1: 56 x 56 and 64 windows.
    assert computed_value("window-attention", "swin-t-stage1") == 64


def test_pe_card(computed_value):
    # PE(1, 0..1) = (0.8415, 0.5403).
    assert computed_value("sinusoidal-positional-encoding", "pe-pos1") == [0.8415, 0.5403]
    assert computed_value("sinusoidal-positional-encoding", "longest-wavelength") == round(
        2 * math.pi * 10000 ** (510 / 512), 1
    )
    assert computed_value("sinusoidal-positional-encoding", "dot-symmetric") is True


def test_head_dims_cards(computed_value):
    # n_heads = 8, d_head = 40 gives inner_dim = 320.
    assert computed_value("attention-head-dims", "inner-dim") == 320
    assert computed_value("attention-head-dims", "qkv-params-cross") == 320 * 320 + 2 * 768 * 320 == 593_920
    assert computed_value("attention-head-dims", "swin-head-dims") == [32, 32, 32, 32]
    assert computed_value("attention-head-dims", "sd2-heads") == [320 // 64, 640 // 64, 1280 // 64] == [5, 10, 20]


# other computed cards, against closed forms typed here ---------------------------------------------


def test_transformer_layer_params(computed_value):
    d, d_ff = 512, 2048
    assert computed_value("transformer", "base-layer-params") == 4 * d * d + 4 * d + 2 * d * d_ff + d_ff + d + 4 * d
    assert computed_value("transformer", "base-layer-params") == 3_152_384


def test_causal_mask_cards(computed_value):
    assert computed_value("causal-mask", "allowed-pairs") == 6 * 7 // 2 == 21
    assert computed_value("causal-mask", "first-row-weight") == 1.0
    assert computed_value("causal-mask", "mask-diagonal-nan") is True


def test_cross_attention_cards(computed_value):
    assert computed_value("cross-attention", "output-length") == [6, 3]
    assert computed_value("cross-attention", "ldm-shape") == (1, 16, 320)


def test_linear_attention_cards(computed_value):
    assert computed_value("linear-attention", "cost-ratio") == 4096 / 32 == 128
    assert computed_value("linear-attention", "ldm-rows") is False


def test_window_regions(computed_value):
    assert computed_value("window-attention", "shift-regions") == 9


def test_vit_b16_params(computed_value):
    D, L, mlp = 768, 12, 3072
    block = 12 * D * D + 13 * D  # 4D^2+4D (attention) + 8D^2+3072+768 (MLP) + 4D (LNs), at mlp = 4D
    assert block == (4 * D * D + 4 * D) + (2 * D * mlp + mlp + D) + 4 * D
    expected = (768 * D + D) + D + 197 * D + L * block + 2 * D + (D * 1000 + 1000)
    assert computed_value("vision-transformer", "vit-b16-params") == expected == 86_567_656


def test_ldm_spatial_transformer_cards(computed_value):
    assert computed_value("ldm-spatial-transformer", "identity-at-init") == 0.0
    assert computed_value("ldm-spatial-transformer", "token-shape") == (1, 16, 320)
    c, ctx = 320, 768
    self_attn = 4 * c * c + c
    cross_attn = 2 * c * c + 2 * ctx * c + c
    ff = (c * 8 * c + 8 * c) + (4 * c * c + c)
    expected = 2 * c + (c * c + c) + self_attn + cross_attn + ff + 6 * c + (c * c + c)
    assert computed_value("ldm-spatial-transformer", "params-sd1-320") == expected == 2_546_240


# oracles outside numpy/torch ----------------------------------------------------------------------


def test_pe_gram_is_toeplitz_scipy(run_entry):
    linalg = pytest.importorskip("scipy.linalg")
    ns = run_entry("sinusoidal-positional-encoding")
    G = ns["G"]
    np.testing.assert_allclose(G, linalg.toeplitz(G[0]), rtol=0, atol=1e-10)


def test_causal_attention_matches_scipy_softmax(run_entry):
    special = pytest.importorskip("scipy.special")
    ns = run_entry("causal-mask")
    q, k, v = (_np(ns[name])[0] for name in ("Q", "K", "V"))
    n, d = q.shape
    scores = q @ k.T / math.sqrt(d)
    scores[np.triu_indices(n, 1)] = -np.inf
    np.testing.assert_allclose(special.softmax(scores, axis=-1) @ v, _np(ns["out"])[0], rtol=0, atol=1e-12)


def test_linear_attention_context_matches_scipy_softmax(run_entry):
    special = pytest.importorskip("scipy.special")
    ns = run_entry("linear-attention")
    k, v, q = _np(ns["k"]), _np(ns["v"]), _np(ns["q"])
    k_soft = special.softmax(k, axis=-1)
    context = np.einsum("bhdn,bhen->bhde", k_soft, v)
    np.testing.assert_allclose(context, _np(ns["context"]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.einsum("bhde,bhdn->bhen", context, q), _np(ns["out"]), rtol=0, atol=1e-12)


def test_window_flops_closed_form(run_entry):
    ns = run_entry("window-attention")
    h = w = 64
    C, M = 96, 8
    assert ns["omega_msa"] == 4 * h * w * C**2 + 2 * (h * w) ** 2 * C == 3_372_220_416
    assert ns["omega_wmsa"] == 4 * h * w * C**2 + 2 * M**2 * h * w * C == 201_326_592
