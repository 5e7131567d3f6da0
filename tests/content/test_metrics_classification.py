"""Oracles and computed-card values for accuracy, precision, recall, f1-score, roc-auc and mse.

The snippets assert against torch/numpy oracles, closed forms and invariants; these tests add
independent reference implementations (scikit-learn, scipy, scikit-image, torchmetrics), each
skipped when its package is missing, and check every computed card against a value typed here
independently, at the precision the card shows.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from helpers import as_float64 as _np

# TP=3, FP=2, FN=1, TN=4: accuracy / precision / recall / F1 -> 0.70 / 0.60 / 0.75 / 0.6667 -----------


def test_example_accuracy(computed_value):
    assert computed_value("accuracy", "example-accuracy") == 0.70


# accuracy -----------------------------------------------------------------------------------------


def test_accuracy_majority_baseline(computed_value):
    assert computed_value("accuracy", "majority-baseline") == [0.95, 0.50]


def test_accuracy_matches_sklearn(run_entry):
    metrics = pytest.importorskip("sklearn.metrics")
    ns = run_entry("accuracy")
    t, p = _np(ns["y_true_np"]), _np(ns["y_pred_np"])
    assert math.isclose(metrics.accuracy_score(t, p), ns["acc_random"], abs_tol=1e-15)
    tn, fp, fn, tp = metrics.confusion_matrix(t, p).ravel()
    assert (tp, fp, fn, tn) == (ns["tp_r"], ns["fp_r"], ns["fn_r"], ns["tn_r"])
    # The card example through sklearn too.
    tn, fp, fn, tp = metrics.confusion_matrix(_np(ns["y_true"]), _np(ns["y_pred"])).ravel()
    assert (tp, fp, fn, tn) == (3, 2, 1, 4)
    # Multi-class: accuracy_score and the confusion matrix.
    yk, pk = _np(ns["labels_np"]), _np(ns["pred_k_np"])
    assert math.isclose(metrics.accuracy_score(yk, pk), ns["acc_multiclass"], abs_tol=1e-15)
    np.testing.assert_array_equal(metrics.confusion_matrix(yk, pk, labels=range(ns["K"])), _np(ns["C"]))
    # Imbalanced case: balanced accuracy.
    assert metrics.balanced_accuracy_score(ns["y_imb_np"], ns["y_const_np"]) == ns["balanced_acc_majority"] == 0.5


# precision ----------------------------------------------------------------------------------------


def test_example_precision(computed_value):
    assert computed_value("precision", "example-precision") == 0.60


def test_precision_base_rate(computed_value):
    # 0.5*0.9/(0.5*0.9+0.5*0.1) = 0.9 and 0.01*0.9/(0.01*0.9+0.99*0.1) = 0.0833..., typed independently.
    assert computed_value("precision", "base-rate") == [0.900, 0.083]


def test_precision_matches_sklearn(run_entry):
    metrics = pytest.importorskip("sklearn.metrics")
    ns = run_entry("precision")
    assert metrics.precision_score(_np(ns["y_true"]), _np(ns["y_pred"])) == ns["precision_example"]
    assert math.isclose(
        metrics.precision_score(ns["y_true_np"], ns["y_pred_np"]), ns["precision_random"], abs_tol=1e-15
    )
    yk, pk = ns["labels_np"], ns["pred_k_np"]
    np.testing.assert_allclose(metrics.precision_score(yk, pk, average=None), ns["per_class_precision"], atol=1e-15)
    assert math.isclose(metrics.precision_score(yk, pk, average="macro"), ns["precision_macro"], abs_tol=1e-15)
    assert math.isclose(metrics.precision_score(yk, pk, average="micro"), ns["precision_micro"], abs_tol=1e-15)
    assert math.isclose(metrics.accuracy_score(yk, pk), ns["precision_micro"], abs_tol=1e-15)


def test_precision_zero_division_matches_sklearn(run_entry):
    metrics = pytest.importorskip("sklearn.metrics")
    ns = run_entry("precision")
    t, none = _np(ns["y_true"]), _np(ns["y_none"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert metrics.precision_score(t, none) == 0.0 == ns["precision"](ns["y_true"], ns["y_none"])
    assert any("ill-defined" in str(w.message) for w in caught), "sklearn should warn on 0/0"
    assert math.isnan(metrics.precision_score(t, none, zero_division=np.nan))


def test_precision_matches_torchmetrics(run_entry):
    torch = pytest.importorskip("torch")
    tmc = pytest.importorskip("torchmetrics.functional.classification")
    ns = run_entry("precision")
    preds, target = torch.from_numpy(ns["y_pred_np"]), torch.from_numpy(ns["y_true_np"])
    assert math.isclose(float(tmc.binary_precision(preds, target)), ns["precision_random"], abs_tol=1e-6)
    # torchmetrics returns 0 for the 0/0 case.
    assert float(tmc.binary_precision(ns["y_none"].cpu(), ns["y_true"].cpu())) == 0.0


# recall -------------------------------------------------------------------------------------------


def test_example_recall(computed_value):
    assert computed_value("recall", "example-recall") == 0.75


def test_recall_all_positive(computed_value):
    assert computed_value("recall", "all-positive") == [1.00, 0.05]


def test_recall_matches_sklearn(run_entry):
    metrics = pytest.importorskip("sklearn.metrics")
    ns = run_entry("recall")
    t, p = _np(ns["y_true"]), _np(ns["y_pred"])
    assert metrics.recall_score(t, p) == ns["recall_example"]
    assert math.isclose(metrics.recall_score(t, p, pos_label=0), ns["specificity_example"], abs_tol=1e-15)
    assert math.isclose(metrics.recall_score(ns["y_true_np"], ns["y_pred_np"]), ns["recall_random"], abs_tol=1e-15)
    yk, pk = ns["labels_np"], ns["pred_k_np"]
    np.testing.assert_allclose(metrics.recall_score(yk, pk, average=None), ns["per_class_recall"], atol=1e-15)
    assert math.isclose(metrics.recall_score(yk, pk, average="macro"), ns["recall_macro"], abs_tol=1e-15)
    assert math.isclose(metrics.balanced_accuracy_score(yk, pk), ns["recall_macro"], abs_tol=1e-15)
    assert math.isclose(metrics.recall_score(yk, pk, average="micro"), ns["accuracy_k"], abs_tol=1e-15)


def test_recall_is_the_roc_tpr(run_entry):
    """Recall at each threshold equals sklearn's roc_curve TPR at the same threshold."""
    metrics = pytest.importorskip("sklearn.metrics")
    ns = run_entry("recall")
    y, s = ns["y_true_np"], ns["scores_np"]
    _, tpr, thr = metrics.roc_curve(y, s, drop_intermediate=False)
    for t_val, r in zip(thr[1:], tpr[1:]):
        assert math.isclose(float(np.mean(s[y == 1] >= t_val)), r, abs_tol=1e-15)
    assert math.isclose(float(np.mean(s[y == 1] >= 0.75)), ns["recall_random"], abs_tol=1e-15)


# f1-score -----------------------------------------------------------------------------------------


def test_example_f1(computed_value):
    assert computed_value("f1-score", "example-f1") == 0.6667


def test_the_worked_example_is_asked_once_per_metric(computed_value):
    # TP=3, FP=2, FN=1, TN=4: each metric's value lives in its own entry, and only there.
    assert computed_value("accuracy", "example-accuracy") == 0.70
    assert computed_value("precision", "example-precision") == 0.60
    assert computed_value("recall", "example-recall") == 0.75
    assert computed_value("f1-score", "example-f1") == 0.6667


def test_f1_lopsided(computed_value):
    # 2 * 1 * 0.01 / 1.01 = 0.019802 and (1 + 0.01) / 2 = 0.505.
    assert computed_value("f1-score", "lopsided") == [0.0198, 0.505]


def test_f1_matches_sklearn(run_entry):
    metrics = pytest.importorskip("sklearn.metrics")
    ns = run_entry("f1-score")
    t, p = _np(ns["y_true"]), _np(ns["y_pred"])
    assert math.isclose(metrics.f1_score(t, p), ns["f1_example"], abs_tol=1e-15)
    assert math.isclose(metrics.f1_score(t, p, pos_label=0), ns["f1_swapped"], abs_tol=1e-15)
    assert math.isclose(metrics.fbeta_score(t, p, beta=2), ns["f2_example"], abs_tol=1e-15)
    assert math.isclose(metrics.fbeta_score(t, p, beta=0.5), ns["f05_example"], abs_tol=1e-15)
    assert math.isclose(metrics.f1_score(ns["y_true_np"], ns["y_pred_np"]), ns["f1_random"], abs_tol=1e-15)
    yk, pk = ns["labels_np"], ns["pred_k_np"]
    np.testing.assert_allclose(metrics.f1_score(yk, pk, average=None), ns["per_class_f1"], atol=1e-15)
    assert math.isclose(metrics.f1_score(yk, pk, average="macro"), ns["f1_macro"], abs_tol=1e-15)
    assert math.isclose(metrics.f1_score(yk, pk, average="micro"), ns["f1_micro"], abs_tol=1e-15)
    # Dice = F1 and the Jaccard index.
    mt, mp = ns["mask_t_np"].ravel(), ns["mask_p_np"].ravel()
    assert math.isclose(metrics.f1_score(mt, mp), ns["dice"], abs_tol=1e-15)
    assert math.isclose(metrics.jaccard_score(mt, mp), ns["jaccard"], abs_tol=1e-15)


def test_f1_zero_division_edge_cases_match_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    # TP = 0 with errors: 0 without any warning (P + R = 0 is not 0/0 in the count form).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert metrics.f1_score([1, 1, 0, 0, 0], [0, 0, 1, 1, 1]) == 0.0
    # TP = FP = FN = 0: zero_division decides.
    assert metrics.f1_score([0, 0], [0, 0], zero_division=0) == 0.0
    assert math.isnan(metrics.f1_score([0, 0], [0, 0], zero_division=np.nan))


def test_f1_matches_torchmetrics(run_entry):
    torch = pytest.importorskip("torch")
    tmc = pytest.importorskip("torchmetrics.functional.classification")
    ns = run_entry("f1-score")
    preds, target = torch.from_numpy(ns["y_pred_np"]), torch.from_numpy(ns["y_true_np"])
    assert math.isclose(float(tmc.binary_f1_score(preds, target)), ns["f1_random"], abs_tol=1e-6)
    assert math.isclose(float(tmc.binary_f1_score(ns["y_pred"].cpu(), ns["y_true"].cpu())), 2 / 3, abs_tol=1e-6)


# roc-auc ------------------------------------------------------------------------------------------


def test_example_auc(computed_value):
    assert computed_value("roc-auc", "example-auc") == 0.8125


def test_auc_hard_predictions(computed_value):
    # Thresholded at 0.4: TPR 3/4, TNR 2/4, so (0.75 + 0.5) / 2.
    assert computed_value("roc-auc", "hard-predictions") == 0.625


def test_auc_matches_sklearn(run_entry):
    metrics = pytest.importorskip("sklearn.metrics")
    ns = run_entry("roc-auc")
    for y, s, value in [(ns["y_ex_np"], ns["s_ex_np"], ns["auc_example"]), (ns["y_np"], ns["s_np"], ns["auc_random"])]:
        assert math.isclose(metrics.roc_auc_score(y, s), value, abs_tol=1e-12)
        assert math.isclose(metrics.auc(*metrics.roc_curve(y, s)[:2]), value, abs_tol=1e-12)
    # The hand-built ROC curve equals sklearn's full curve (without dropping collinear points).
    fpr, tpr, _ = metrics.roc_curve(ns["y_ex_np"], ns["s_ex_np"], drop_intermediate=False)
    np.testing.assert_allclose(_np(ns["fpr_ex"]), fpr, atol=1e-15)
    np.testing.assert_allclose(_np(ns["tpr_ex"]), tpr, atol=1e-15)
    # Hard predictions: roc_auc_score equals balanced accuracy.
    hard = (ns["s_ex_np"] >= 0.4).astype(int)
    assert math.isclose(
        metrics.roc_auc_score(ns["y_ex_np"], hard), metrics.balanced_accuracy_score(ns["y_ex_np"], hard)
    )
    assert math.isclose(metrics.roc_auc_score(ns["y_ex_np"], hard), ns["auc_hard"], abs_tol=1e-15)


def test_auc_matches_mann_whitney(run_entry):
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("roc-auc")
    for y, s, value in [(ns["y_ex_np"], ns["s_ex_np"], ns["auc_example"]), (ns["y_np"], ns["s_np"], ns["auc_random"])]:
        pos, neg = s[y == 1], s[y == 0]
        u = stats.mannwhitneyu(pos, neg).statistic
        assert math.isclose(u / (len(pos) * len(neg)), value, abs_tol=1e-12)


def test_auc_matches_torchmetrics(run_entry):
    torch = pytest.importorskip("torch")
    tmc = pytest.importorskip("torchmetrics.functional.classification")
    ns = run_entry("roc-auc")
    for y, s, value in [(ns["y_ex_np"], ns["s_ex_np"], ns["auc_example"]), (ns["y_np"], ns["s_np"], ns["auc_random"])]:
        # binary_auroc passes scores outside [0, 1] through its own sigmoid, whose vectorised kernel can
        # split exact ties by one ulp; an exact min-max rescaling into [0, 1] keeps ties and the AUC.
        u = (s - s.min()) / (s.max() - s.min())
        got = float(tmc.binary_auroc(torch.from_numpy(u), torch.from_numpy(y)))
        assert math.isclose(got, value, abs_tol=1e-6)


# mse ----------------------------------------------------------------------------------------------


def test_mse_cards(computed_value):
    assert computed_value("mse", "same-mse-different-damage") == [100.0, 100.0]
    assert computed_value("mse", "broadcast-pitfall") == round(12 / 9, 4) == 1.3333


def test_mse_matches_skimage_and_sklearn(run_entry):
    sk_metrics = pytest.importorskip("skimage.metrics")
    skl_metrics = pytest.importorskip("sklearn.metrics")
    ns = run_entry("mse")
    ref, noisy = ns["ref_np"], _np(ns["noisy"])
    assert math.isclose(sk_metrics.mean_squared_error(ref, noisy), ns["mse"](ns["ref"], ns["noisy"]), rel_tol=1e-12)
    assert math.isclose(
        skl_metrics.mean_squared_error(ref.ravel(), noisy.ravel()), ns["mse"](ns["ref"], ns["noisy"]), rel_tol=1e-12
    )
    assert sk_metrics.mean_squared_error(ref, ns["shifted_np"]) == ns["mse_shift"] == 100.0
    assert sk_metrics.mean_squared_error(ref, ns["speckled_np"]) == ns["mse_noise"] == 100.0
    # PSNR is MSE on a log scale.
    assert math.isclose(
        sk_metrics.peak_signal_noise_ratio(ref, ns["shifted_np"], data_range=255), ns["psnr_100"], abs_tol=1e-9
    )


def test_mse_is_blind_to_structure_ssim_is_not(run_entry):
    """Equal MSE, very different SSIM, so MSE is not a structural metric."""
    sk_metrics = pytest.importorskip("skimage.metrics")
    ns = run_entry("mse")
    ref = ns["ref_np"]
    ssim_shift = sk_metrics.structural_similarity(ref, ns["shifted_np"], data_range=255)
    ssim_noise = sk_metrics.structural_similarity(ref, ns["speckled_np"], data_range=255)
    assert ssim_shift > 0.95 and ssim_noise < ssim_shift - 0.2, (ssim_shift, ssim_noise)
