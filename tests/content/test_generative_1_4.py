"""The generative entries: structure, computed-card values, and oracles beyond numpy/torch.

Entries: vae, reparameterization-trick, gan, conditional-gan, face-privacy-gans, diffusion-ddpm,
latent-diffusion-model. The expected numbers are typed here independently of the snippets, at the
precision each card shows; scipy / scikit-image oracles skip when the package is missing.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from kb.bilingual import localized
from kb.schema import Concept

ENTRIES = (
    "vae",
    "reparameterization-trick",
    "gan",
    "conditional-gan",
    "face-privacy-gans",
    "diffusion-ddpm",
    "latent-diffusion-model",
)


# Every concept id the bundled content is meant to have, duplicates merged: these entries may
# reference only these.
PLANNED = set(
    """softmax ema-weights kl-divergence hparam-dim swin-hyperparameters data-dimensionality-1d-2d-3d
    tensor-layout-nchw-nhwc computational-graph numpy-flatten-transpose broadcasting-batched-matmul einsum
    detach vanishing-exploding-gradients end-to-end-learning gaussian-nll convolution conv-output-size
    dilated-convolution channels residual-shortcut ffn gelu gru mpnn layernorm-add-norm shift-operation
    proj-in pixel-shuffle upsampling downsampling mamba-ssm self-attention transformer multi-head-attention
    causal-mask cross-attention attention-head-dims linear-attention window-attention
    sinusoidal-positional-encoding vision-transformer ldm-spatial-transformer vae reparameterization-trick
    gan conditional-gan face-privacy-gans diffusion-ddpm latent-diffusion-model imagenet bev fpn clip
    spatial-transformer-network rrdb swinir unet canny hed mlsd midas openpose uniformer face-landmarks mask
    self-blended-images image-noise affine-transform dct total-variation quantization spatial-filtering
    accuracy precision recall f1-score roc-auc mse psnr psnr-color image-entropy spatial-frequency image-std
    mutual-information vif average-gradient correlation-coefficient scd qabf ssim ms-ssim nabf
    fusion-metrics-overview bert large-language-model 3d-parallelism zero-optimizer hhh-alignment rlhf
    emergent-abilities hard-coding""".split()
)


# Structure -----------------------------------------------------------------------------------------


@pytest.fixture(params=ENTRIES)
def concept_id(request) -> str:
    return request.param


def test_entry_structure(concept_id, load_entry):
    # The bar every entry meets (file, ids, cards, sources, aliases) is tests/content/test_every_entry.py.
    concept = Concept.model_validate(load_entry(concept_id))
    assert concept.id == concept_id and concept.category == "generative"
    assert set(concept.related) | set(concept.prerequisites) <= PLANNED
    if concept.status == "verified":
        assert concept.formulas and concept.snippet is not None
        assert "computed-card" in concept.tags
        assert len(concept.pitfalls) >= 3


def test_snippet_runs_fast_and_prints(concept_id, load_entry, run_entry, snippet_seconds, snippet_output):
    if load_entry(concept_id).get("snippet") is None:
        pytest.skip("no snippet")
    run_entry(concept_id)
    assert snippet_output(concept_id).strip()
    # Includes the one-off lazy imports of the first gradcheck (about 1 s).
    assert snippet_seconds(concept_id) < 3.0


def test_computed_cards_evaluate(concept_id, load_entry, computed_value):
    for card in load_entry(concept_id).get("cards", []):
        if card["type"] == "computed":
            assert computed_value(concept_id, card["id"]) is not None, card["id"]


# VAE -----------------------------------------------------------------------------------------------


def test_vae_kl_n10_vs_n01(computed_value):
    # KL(N(1,1) || N(0,1)) = 0.5.
    assert computed_value("vae", "kl-mean-shift") == 0.5


def test_vae_logvar_readings(computed_value):
    # 0.5 (s2 - 1 - log s2) for s2 = e^2, 2, 4.
    expected = [round(0.5 * (s2 - 1 - math.log(s2)), 4) for s2 in (math.e**2, 2.0, 4.0)]
    assert computed_value("vae", "logvar-readings") == expected == [2.1945, 0.1534, 0.8069]
    assert computed_value("vae", "std-two") == 0.8069


def test_vae_log_evidence_matches_scipy(run_entry):
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("vae")
    ref = stats.multivariate_normal(mean=ns["b_np"], cov=ns["cov_x_np"]).logpdf(ns["x_np"])
    assert math.isclose(ns["log_px"], float(ref), rel_tol=0, abs_tol=1e-10)
    assert math.isclose(ns["elbo_exact_q"], float(ref), rel_tol=0, abs_tol=1e-9)


# Reparameterization trick --------------------------------------------------------------------------


def test_reparam_estimator_variances(computed_value):
    # Var[2(mu + s eps)] = 4 s^2 = 4; score function: E[(1 + e)^4 e^2] - 2^2 = (1 + 18 + 15) - 4 = 30.
    assert computed_value("reparameterization-trick", "estimator-variances") == [4.0, 30.0]
    assert computed_value("reparameterization-trick", "sample-grad-fn") is False


def test_reparam_score_variance_matches_scipy_moments(run_entry):
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("reparameterization-trick")
    # E[g^2] with g = (1 + e)^2 e: expand (1 + e)^4 e^2 and use scipy's normal moments.
    coef = [1, 4, 6, 4, 1]
    second = sum(c * stats.norm.moment(k + 2) for k, c in enumerate(coef))
    assert math.isclose(ns["var_score"], second - 4.0, rel_tol=1e-12)


# GAN -----------------------------------------------------------------------------------------------


def test_gan_minus_log4(computed_value):
    # V(D*, G) at p_g = p_data is -ln 4 = -1.3863.
    assert computed_value("gan", "value-at-equilibrium") == -1.3863


def test_gan_saturation_gradients(computed_value):
    s = 1 / (1 + math.exp(6))
    assert computed_value("gan", "saturation-gradients") == [round(-s, 4), round(-(1 - s), 4)] == [-0.0025, -0.9975]


def test_gan_jsd_matches_scipy(run_entry):
    distance = pytest.importorskip("scipy.spatial.distance")
    ns = run_entry("gan")
    # scipy returns the Jensen-Shannon *distance*: the square root of the divergence.
    js_scipy = distance.jensenshannon(ns["p_data_np"], ns["p_g_np"]) ** 2
    assert math.isclose(ns["jsd_nats"], float(js_scipy), rel_tol=0, abs_tol=1e-12)
    assert math.isclose(ns["v_star"], -math.log(4) + 2 * float(js_scipy), rel_tol=0, abs_tol=1e-12)


# Conditional GAN ------------------------------------------------------------------------------------


def test_cgan_label_blind_generator(computed_value):
    def jsd(p, q):
        m = [(a + b) / 2 for a, b in zip(p, q)]
        return 0.5 * sum(a * math.log(a / c) for a, c in zip(p, m)) + 0.5 * sum(
            b * math.log(b / c) for b, c in zip(q, m)
        )

    marginal = [0.4, 0.2, 0.4]
    v_cond = -math.log(4) + 2 * (0.5 * jsd([0.7, 0.2, 0.1], marginal) + 0.5 * jsd([0.1, 0.2, 0.7], marginal))
    assert (
        computed_value("conditional-gan", "label-blind-generator") == [-1.3863, round(v_cond, 4)] == [-1.3863, -1.2485]
    )


def test_cgan_shapes(computed_value):
    # G's input: 16 noise dimensions and the 10-class one-hot label; D's: 8 features and the label.
    assert computed_value("conditional-gan", "concat-shapes") == (4, 26)
    assert computed_value("conditional-gan", "d-input-shape") == (4, 18)


def test_cgan_jsd_matches_scipy(run_entry):
    distance = pytest.importorskip("scipy.spatial.distance")
    ns = run_entry("conditional-gan")
    per_class = [distance.jensenshannon(p, q) ** 2 for p, q in zip(ns["p_x_given_y_np"], ns["p_g_given_y_np"])]
    assert math.isclose(ns["v_cond"], -math.log(4) + 2 * float(np.mean(per_class)), rel_tol=0, abs_tol=1e-12)


# Face-privacy GANs ------------------------------------------------------------------------------------


def test_face_privacy_identity_output(computed_value):
    assert computed_value("face-privacy-gans", "identity-output-penalty") == [0.7, 1.0]
    curve = computed_value("face-privacy-gans", "blend-tradeoff")
    assert curve[0] == 1.0 and all(a > b for a, b in zip(curve, curve[1:]))


def test_face_privacy_ssim_matches_skimage(run_entry):
    metrics = pytest.importorskip("skimage.metrics")
    ns = run_entry("face-privacy-gans")
    kw = dict(data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    ref_other = metrics.structural_similarity(ns["x_np"], ns["other_np"], **kw)
    ref_noisy = metrics.structural_similarity(ns["x_np"], ns["noisy_np"], **kw)
    assert math.isclose(ns["ssim_x_other"], ref_other, rel_tol=0, abs_tol=1e-10)
    assert math.isclose(ns["ssim_x_noisy"], ref_noisy, rel_tol=0, abs_tol=1e-10)
    assert ns["ssim_curve"][-1] == round(ref_other, 4)


def test_face_privacy_lc_gan_is_unverified(load_entry):
    entry = load_entry("face-privacy-gans")
    assert "LC-GAN" in entry["aliases"] and "PP-GAN" in entry["aliases"]
    assert "unverified" in entry["definition"].lower()
    assert not any("LC-GAN" in localized(f["name"], "both") or "LC-GAN" in f["latex"] for f in entry["formulas"])


# DDPM ---------------------------------------------------------------------------------------------------


def test_ddpm_alpha_bar_T(computed_value):
    # abar_1000 ≈ 4.04e-5 for the linear 1e-4 -> 0.02 schedule.
    betas = [1e-4 + (0.02 - 1e-4) * k / 999 for k in range(1000)]
    abar = math.prod(1 - b for b in betas)
    assert computed_value("diffusion-ddpm", "alpha-bar-final") == float(f"{abar:.3g}") == 4.04e-5


def test_ddpm_alpha_bar_500(computed_value):
    betas = [1e-4 + (0.02 - 1e-4) * k / 999 for k in range(500)]
    assert computed_value("diffusion-ddpm", "alpha-bar-500") == round(math.prod(1 - b for b in betas), 4) == 0.0786


# Latent diffusion ----------------------------------------------------------------------------------------


def test_ldm_latent_shape_and_ratio(computed_value):
    # 512x512x3 -> 4x64x64, 48x fewer numbers.
    assert computed_value("latent-diffusion-model", "latent-compression") == [(4, 64, 64), 48]
    assert 512 * 512 * 3 // (4 * 64 * 64) == 48
