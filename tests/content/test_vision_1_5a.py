"""Oracle and computed-card checks for the vision entries, first half.

imagenet, bev, fpn, clip, spatial-transformer-network, rrdb (with dense-block), swinir, unet.
Oracles outside numpy/torch are skipped when their package is missing. Every computed card's value
for these entries is typed here independently, at the precision the card shows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import as_float64 as _np

IDS = ("imagenet", "bev", "fpn", "clip", "spatial-transformer-network", "rrdb", "swinir", "unet")


# imagenet -----------------------------------------------------------------------------------------


def test_imagenet_topk_matches_sklearn(run_entry):
    metrics = pytest.importorskip("sklearn.metrics")
    ns = run_entry("imagenet")
    labels = np.arange(ns["C"])
    for k, key in ((1, "top1"), (5, "top5")):
        expected = metrics.top_k_accuracy_score(ns["labels_np"], ns["logits_np"], k=k, labels=labels)
        assert ns[key] == pytest.approx(expected, abs=1e-12)


def test_imagenet_cards(computed_value):
    assert computed_value("imagenet", "chance-top5") == 0.005
    assert (
        computed_value("imagenet", "normalised-red-range")
        == [
            round(-0.485 / 0.229, 4),
            round((1 - 0.485) / 0.229, 4),
        ]
        == [-2.1179, 2.2489]
    )


# bev ----------------------------------------------------------------------------------------------


def test_bev_counts_and_max_height_match_scipy(run_entry):
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("bev")
    pts = ns["pts_np"]
    inside = pts[:, 0] < ns["x_rng"][1]  # the x_max point: scipy, like numpy, closes the last bin
    bins = (ns["x_edges"], ns["y_edges"])
    count = stats.binned_statistic_2d(pts[inside, 0], pts[inside, 1], None, "count", bins=bins).statistic
    np.testing.assert_array_equal(count, ns["counts_np"])
    top = stats.binned_statistic_2d(pts[inside, 0], pts[inside, 1], pts[inside, 2], "max", bins=bins).statistic
    mine = _np(ns["max_height"])
    occupied = ~np.isnan(top)
    np.testing.assert_array_equal(occupied, np.isfinite(mine))
    np.testing.assert_allclose(mine[occupied], top[occupied], rtol=0, atol=0)


def test_bev_cards(computed_value):
    assert computed_value("bev", "grid-cells-50m") == (200, 200)
    assert computed_value("bev", "histogram-edge") == 1


# fpn ----------------------------------------------------------------------------------------------


def test_fpn_cards(computed_value):
    # torchvision (the natural oracle) does not import beside this torch build; closed forms instead.
    lateral = sum(c * 256 + 256 for c in (256, 512, 1024, 2048))
    assert computed_value("fpn", "resnet50-fpn-params") == lateral + 4 * (3 * 3 * 256 * 256 + 256) == 3_344_384
    assert computed_value("fpn", "level-sizes-224") == [56, 28, 14, 7, 4]
    assert computed_value("fpn", "roi-112") == 3


# clip ---------------------------------------------------------------------------------------------


def test_clip_loss_matches_scipy_log_softmax(run_entry):
    special = pytest.importorskip("scipy.special")
    ns = run_entry("clip")
    logits = _np(ns["logits"])
    n = logits.shape[0]
    rows = special.log_softmax(logits, axis=1)[np.arange(n), np.arange(n)]
    cols = special.log_softmax(logits, axis=0)[np.arange(n), np.arange(n)]
    assert ns["batch_loss"] == pytest.approx(-(rows.mean() + cols.mean()) / 2, abs=1e-12)


def test_clip_card_values(computed_value):
    # Initial logit scale 1/0.07 = 14.29 and ln 4 = 1.386 for uniform logits.
    assert computed_value("clip", "init-scale") == round(1 / 0.07, 2) == 14.29
    assert computed_value("clip", "uniform-loss") == round(math.log(4), 3) == 1.386
    assert computed_value("clip", "max-scale") == 100


# spatial-transformer-network ----------------------------------------------------------------------


def test_stn_grid_sample_matches_scipy_map_coordinates(run_entry):
    ndimage = pytest.importorskip("scipy.ndimage")
    ns = run_entry("spatial-transformer-network")
    x, grid, ref = _np(ns["x"]), _np(ns["grid"]), _np(ns["ref"])
    H, W = x.shape[-2:]
    ix = ((grid[..., 0] + 1) * W - 1) / 2  # align_corners=False: pixel-unit positions
    iy = ((grid[..., 1] + 1) * H - 1) / 2
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            # 'grid-constant' pads with zeros and interpolates towards them, like padding_mode='zeros'.
            out = ndimage.map_coordinates(x[n, c], [iy[n], ix[n]], order=1, mode="grid-constant", cval=0.0)
            np.testing.assert_allclose(out, ref[n, c], rtol=0, atol=1e-12)


def test_stn_rot90(computed_value):
    # An affine theta of a quarter turn is the same as torch.rot90.
    assert computed_value("spatial-transformer-network", "rot90-equivalent") == "torch.rot90(x, 1, dims=(2, 3))"


def test_stn_rot90_direction_matches_numpy(run_entry):
    ns = run_entry("spatial-transformer-network")
    np.testing.assert_allclose(_np(ns["rotated"]), np.rot90(_np(ns["x"]), 1, axes=(2, 3)), rtol=0, atol=1e-12)


# rrdb (with dense-block) --------------------------------------------------------------------------


def test_rrdb_card_values(computed_value):
    # Zero-initialised RDB tails give RRDB(x) = 1.2 x; RDB has 239,808 parameters.
    assert computed_value("rrdb", "zero-init-ratio") == 1.2
    assert computed_value("rrdb", "rdb-params") == 239_808
    assert computed_value("rrdb", "rrdb-params") == 719_424


def test_rrdb_closed_forms(computed_value):
    nf, gc = 64, 32
    convs = [(nf + i * gc, gc) for i in range(4)] + [(nf + 4 * gc, nf)]
    rdb = sum(9 * cin * cout + cout for cin, cout in convs)
    assert rdb == 239_808
    assert computed_value("rrdb", "dense-widths") == [cin for cin, _ in convs] == [64, 96, 128, 160, 192]
    head_tail = (9 * 3 * nf + nf) + 4 * (9 * nf * nf + nf) + (9 * nf * 3 + 3)
    assert computed_value("rrdb", "esrgan-params") == 23 * 3 * rdb + head_tail == 16_697_987


# swinir -------------------------------------------------------------------------------------------


def test_swinir_cards(computed_value):
    assert computed_value("swinir", "score-ratio-64") == (64 * 64) // (8 * 8) == 64
    assert computed_value("swinir", "shift-regions") == 9
    assert computed_value("swinir", "toy-output-shape") == (1, 3, 32, 32)


def test_swinir_flops_formula(run_entry):
    ns = run_entry("swinir")
    h = w = 64
    C, M = 180, 8
    assert ns["msa_flops"] == 4 * h * w * C**2 + 2 * (h * w) ** 2 * C
    assert ns["wmsa_flops"] == 4 * h * w * C**2 + 2 * M**2 * h * w * C


# unet ---------------------------------------------------------------------------------------------


def test_unet_cards(computed_value):
    def conv(a, b, k=3):
        return k * k * a * b + b

    widths = (64, 128, 256, 512, 1024)
    enc = sum(conv(a, b) + conv(b, b) for a, b in zip((1, 64, 128, 256, 512), widths))
    dec = sum(conv(w, w // 2, 2) + conv(w, w // 2) + conv(w // 2, w // 2) for w in (1024, 512, 256, 128))
    assert computed_value("unet", "original-params") == enc + dec + conv(64, 2, 1) == 31_030_658
    assert computed_value("unet", "original-572") == 388  # Ronneberger et al., Fig. 1
    assert computed_value("unet", "overlap-margin") == 92


# structure of all eight entries -------------------------------------------------------------------


@pytest.mark.parametrize("concept_id", IDS)
def test_entry_structure(concept_id, load_entry):
    from kb.schema import Concept

    # The bar every entry meets (file, ids, cards, sources, aliases) is tests/content/test_every_entry.py.
    concept = Concept.model_validate(load_entry(concept_id))
    assert concept.id == concept_id and concept.category == "vision"
    assert any(c.type == "computed" for c in concept.cards)
    assert concept.snippet is not None and concept.sources and concept.pitfalls


@pytest.mark.parametrize("concept_id", IDS)
def test_snippet_runs_fast(concept_id, snippet_seconds):
    # Imports inside the snippet and lazy imports (gradcheck pulls in sympy) are included; stay generous.
    assert snippet_seconds(concept_id) < 5.0
