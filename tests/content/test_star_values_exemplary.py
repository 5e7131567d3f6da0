"""The computed cards of the five exemplary entries give the worked values their cards promise.

The expected numbers are typed here, independently of the snippets, at the precision each card shows.
Where a snippet computes its example its own way, the test asserts the card's qualitative claim plus
this snippet's own closed-form values, and says so.
"""

from __future__ import annotations

import math

import pytest


def test_softmax_1000_1001(computed_value):
    assert computed_value("softmax", "stable-1000-1001") == [0.2689, 0.7311]


def test_softmax_naive_overflow_is_nan(run_entry):
    ns = run_entry("softmax")
    assert all(math.isnan(v) for v in ns["naive_big"])


def test_softmax_float32_underflow_is_exact_zero(computed_value):
    value = computed_value("softmax", "float32-underflow")
    assert value == 0.0 and isinstance(value, float)


def test_softmax_double_softmax_floor(computed_value):
    # log(1 + (K - 1)/e) for K = 5, computed here independently.
    assert computed_value("softmax", "double-softmax-floor") == round(math.log(1 + 4 / math.e), 4) == 0.9048


def test_ema_share_of_last_10_steps(computed_value):
    assert computed_value("ema-weights", "share-last-10") == 0.6513


def test_ema_other_cards(computed_value):
    assert computed_value("ema-weights", "share-limit") == round(1 - 0.999**1000, 4) == 0.6323
    assert computed_value("ema-weights", "init-share") == round(0.9999**1000, 4) == 0.9048
    assert computed_value("ema-weights", "bias-correction") == 2.048  # 5 (1 - 0.9^5) = 2.04755


def test_kl_asymmetry(computed_value):
    assert computed_value("kl-divergence", "asymmetry") == [0.2197, 0.2367]


def test_gaussian_kl_n10_vs_n01(computed_value):
    # The Gaussian KL card (this entry absorbed the former gaussian-kl-normal-kl entry).
    assert computed_value("kl-divergence", "gaussian-kl") == 0.5


def test_kl_forward_reverse_fit(computed_value):
    (mu_f, s_f), (mu_r, s_r) = computed_value("kl-divergence", "mode-fit")
    assert mu_f == 0.0 and abs(s_f - math.sqrt(0.25 + 4.0)) <= 0.05 + 1e-9  # moment matching, grid step 0.1
    assert abs(mu_r) == 2.0 and s_r == 0.5  # one mode


def test_attention_variance_before_and_after_scaling(computed_value):
    raw, scaled = computed_value("self-attention", "variance-before-after")
    # Honest tolerance around the theory (64 -> 1) ...
    assert abs(raw - 64) < 3 and abs(scaled - 1) < 3 / 64
    # ... and the seed-0 numbers the entry states (63.2 / 0.988): the snippet's construction has
    # variance 63.264, which is 63.2 to within 0.1.
    assert abs(raw - 63.2) <= 0.1
    assert scaled == 0.988


def test_attention_saturation_at_512(computed_value):
    unscaled, scaled = computed_value("self-attention", "saturation-512")
    assert f"{unscaled:.0e}" == "3e-12"  # ≈3e-12 at one significant digit (3.2e-12)
    assert unscaled == 3.2e-12
    assert scaled == 0.231


def test_attention_output_width_is_dv(computed_value):
    assert computed_value("self-attention", "output-shape-dv") == (2, 5, 12)


@pytest.mark.parametrize(("card", "expected"), [("psnr-mse-100", 28.13), ("psnr-mse-1", 48.13)])
def test_psnr_from_mse(computed_value, card, expected):
    assert computed_value("psnr", card) == expected


def test_psnr_max_i_squared(computed_value):
    assert computed_value("psnr", "max-i-squared") == 65025


def test_psnr_wrong_data_range(computed_value):
    assert computed_value("psnr", "wrong-range") == 48.13


def test_psnr_mean_per_channel_at_least_psnr_of_mean_mse(computed_value):
    mean_of_channels, of_mean_mse = computed_value("psnr", "colour-jensen")
    assert mean_of_channels >= of_mean_mse
    # This snippet's demo uses channel MSEs 4, 100, 900 (a demo with unstated MSEs gives 29.04 vs 24.68).
    mses = [4.0, 100.0, 900.0]
    expected_mean = sum(10 * math.log10(255**2 / m) for m in mses) / 3
    expected_pooled = 10 * math.log10(255**2 / (sum(mses) / 3))
    assert [mean_of_channels, of_mean_mse] == [round(expected_mean, 2), round(expected_pooled, 2)] == [29.61, 22.88]
