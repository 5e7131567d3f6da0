"""New attention and LLM entries: rotary-position-embedding, kv-cache, flash-attention,
grouped-query-attention, tokenization-bpe, decoding-sampling, beam-search.

Two kinds of checks: the snippets' values against oracles written here outside torch (numpy and
scipy; a test skips when its package is missing), and every computed card against its worked
value, with the expected numbers typed here independently of the snippets.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter

import numpy as np
import pytest

from helpers import as_float64 as _np
from kb.schema import Concept

IDS = {
    "rotary-position-embedding": "attention",
    "kv-cache": "attention",
    "flash-attention": "attention",
    "grouped-query-attention": "attention",
    "tokenization-bpe": "llm",
    "decoding-sampling": "llm",
    "beam-search": "llm",
}


def _softmax(s: np.ndarray) -> np.ndarray:
    special = pytest.importorskip("scipy.special")
    return special.softmax(s, axis=-1)


def _causal_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Plain numpy attention over the last two axes with the causal mask (j <= i)."""
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    n = s.shape[-1]
    s = np.where(np.tril(np.ones((n, n), dtype=bool)), s, -np.inf)
    return _softmax(s) @ v


# structure ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("concept_id", sorted(IDS))
def test_entry_structure(concept_id, load_entry):
    # The bar every entry meets is tests/content/test_every_entry.py; this adds what these entries promise.
    concept = Concept.model_validate(load_entry(concept_id))
    assert concept.id == concept_id and concept.category == IDS[concept_id]
    assert concept.formulas and concept.snippet and concept.sources and len(concept.pitfalls) >= 3
    assert "computed-card" in concept.tags
    assert any(card.type == "computed" for card in concept.cards)
    assert all(s.url.startswith(("https://arxiv.org/", "https://docs.pytorch.org/")) for s in concept.sources)


@pytest.mark.parametrize("concept_id", sorted(IDS))
def test_snippet_is_fast(concept_id, snippet_seconds):
    # Well under 1 s on one core; the machine may be shared, so the bound here is generous.
    assert snippet_seconds(concept_id) < 5.0


def test_the_two_kv_cache_cards_ask_different_things(load_entry):
    """The LLaMA-2-7B (32 K/V heads) and Mistral 7B (8 K/V heads) cache cards must not read alike."""
    cards = {c["id"]: c for c in load_entry("kv-cache")["cards"]} | {
        c["id"]: c for c in load_entry("grouped-query-attention")["cards"]
    }
    mha, gqa = cards["llama2-7b-bytes-per-token"]["question"], cards["gqa8-bytes-per-token"]["question"]
    assert mha["en"] != gqa["en"] and mha["zh"] != gqa["zh"]
    assert "8 shared key/value heads" in gqa["en"] and "32 attention heads" in mha["en"]


# rotary-position-embedding ------------------------------------------------------------------------


def test_rope_cards(computed_value):
    # theta_i = 10000^(-2i/8) = 10^(-i): 1, 0.1, 0.01, 0.001.
    assert computed_value("rotary-position-embedding", "theta-d8") == [1.0, 0.1, 0.01, 0.001]
    # 2 pi / theta_63 = 2 pi 10000^(126/128) = 2 pi 10^3.9375 = 2 pi * 8659.64 = 54,410.1 -> 54410.
    assert computed_value("rotary-position-embedding", "slowest-wavelength") == 54410


def test_rope_is_the_matrix_exponential_of_a_rotation_generator(run_entry):
    """R(m) = expm(m A), A block-diagonal with blocks [[0, -theta_i], [theta_i, 0]] (scipy oracle)."""
    linalg = pytest.importorskip("scipy.linalg")
    ns = run_entry("rotary-position-embedding")
    x, d = _np(ns["x"]), ns["d"]
    thetas = 10000.0 ** (-np.arange(0, d, 2) / d)
    generator = linalg.block_diag(*[np.array([[0.0, -t], [t, 0.0]]) for t in thetas])
    rotated = _np(ns["rope_interleaved"](ns["x"], ns["pos"]))
    for m in range(x.shape[0]):
        np.testing.assert_allclose(rotated[m], linalg.expm(m * generator) @ x[m], rtol=0, atol=1e-10)
    # The relative property with the same oracle: R(m)^T R(n) = R(n - m).
    q, k = _np(ns["q"]), _np(ns["k"])
    scores = [q @ linalg.expm(m * generator).T @ linalg.expm(n * generator) @ k for m, n in ns["pairs"]]
    np.testing.assert_allclose(scores, ns["scores"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(scores[0], q @ linalg.expm(3 * generator) @ k, rtol=0, atol=1e-10)


# kv-cache -----------------------------------------------------------------------------------------


def test_kv_cache_cards(computed_value):
    # 2 (K and V) * 32 layers * 32 heads * 128 dims * 2 bytes (fp16) = 524,288 bytes = 0.5 MiB.
    assert computed_value("kv-cache", "llama2-7b-bytes-per-token") == 2 * 32 * 32 * 128 * 2 == 524_288
    # 524,288 * 4096 = 2^19 * 2^12 = 2^31 bytes = 2 GiB.
    assert computed_value("kv-cache", "llama2-7b-4k-context") == 2.0
    # With the cache 11 projections; without, 5 + 6 + 7 + 8 + 9 + 10 + 11 = 56.
    assert computed_value("kv-cache", "projections-saved") == [11, 56]


def test_cached_decoding_matches_numpy_causal_attention(run_entry):
    ns = run_entry("kv-cache")
    x, heads = ns["x"], ns["heads"]
    q, k, v = (_np(heads(x @ ns[w])) for w in ("Wq", "Wk", "Wv"))
    expected = _causal_attention(q, k, v)
    cached = _np(np.concatenate([_np(o) for o in ns["outputs"]], axis=1))
    np.testing.assert_allclose(cached, expected, rtol=0, atol=1e-12)
    # The chunk of three tokens with the bottom-right mask gives the last three causal rows.
    np.testing.assert_allclose(_np(ns["out_chunk"]), expected[:, -3:], rtol=0, atol=1e-12)


# flash-attention ----------------------------------------------------------------------------------


def test_flash_attention_cards(computed_value):
    # 4096^2 = 16,777,216 scores per head.
    assert computed_value("flash-attention", "score-entries-4096") == 4096**2 == 16_777_216
    # 2^24 scores * 32 heads * 2 bytes = 2^30 bytes = 1 GiB.
    assert computed_value("flash-attention", "score-gib-32-heads") == 1.0
    # m = 3, l = e^-2 + 1 = 1.135335; then m = 5, l = 1.135335 e^-2 + e^-3 + 1 = 0.153652 + 0.049787 + 1.
    assert computed_value("flash-attention", "online-sum") == 1.2034


def test_tiled_attention_matches_scipy_softmax_attention(run_entry):
    special = pytest.importorskip("scipy.special")
    ns = run_entry("flash-attention")
    q, k, v = _np(ns["q"]), _np(ns["k"]), _np(ns["v"])
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    np.testing.assert_allclose(_np(ns["out"]), special.softmax(s, axis=-1) @ v, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_np(ns["lse"]), special.logsumexp(s, axis=-1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(_np(ns["out_c"]), _causal_attention(q, k, v), rtol=0, atol=1e-12)


def test_online_sum_against_scipy_logsumexp():
    special = pytest.importorskip("scipy.special")
    # l after both blocks is sum exp(s - 5) = exp(logsumexp(s) - 5).
    assert round(math.exp(special.logsumexp([1, 3, 2, 5]) - 5), 4) == 1.2034


# grouped-query-attention --------------------------------------------------------------------------


def test_gqa_cards(computed_value):
    # 2 * 32 layers * 8 K/V heads * 128 dims * 2 bytes = 131,072 bytes (a quarter of 524,288).
    assert computed_value("grouped-query-attention", "gqa8-bytes-per-token") == 2 * 32 * 8 * 128 * 2 == 131_072
    assert computed_value("grouped-query-attention", "cache-ratio") == 32 // 8 == 4
    # W_k and W_v: 4096 x (8 * 128) each, 2 * 4096 * 1024 = 8,388,608.
    assert computed_value("grouped-query-attention", "kv-proj-params") == 8_388_608


def test_gqa_matches_numpy_grouped_attention(run_entry):
    ns = run_entry("grouped-query-attention")
    q, k, v, G = _np(ns["q"]), _np(ns["k"]), _np(ns["v"]), ns["G"]
    # np.repeat repeats each head in place (0, 0, 0, 0, 1, ...), i.e. query head h uses K/V head h // G.
    expected = _causal_attention(q, np.repeat(k, G, axis=1), np.repeat(v, G, axis=1))
    np.testing.assert_allclose(_np(ns["out_sdpa"]), expected, rtol=0, atol=1e-12)
    for h in range(q.shape[1]):
        head = _causal_attention(q[:, h], k[:, h // G], v[:, h // G])
        np.testing.assert_allclose(_np(ns["out_sdpa"])[:, h], head, rtol=0, atol=1e-12)
    # np.tile is the wrong grouping (0, 1, 0, 1, ...), and so is the snippet's out_tiled.
    tiled = _causal_attention(q, np.tile(k, (1, G, 1, 1)), np.tile(v, (1, G, 1, 1)))
    np.testing.assert_allclose(_np(ns["out_tiled"]), tiled, rtol=0, atol=1e-12)


def test_which_kv_head_card(load_entry):
    # 32 query heads, 8 K/V heads: G = 4, head 13 -> 13 // 4 = 3.
    card = next(c for c in load_entry("grouped-query-attention")["cards"] if c["id"] == "which-kv-head")
    assert card["answer"] == str(13 // (32 // 8)) == "3"


# tokenization-bpe ---------------------------------------------------------------------------------


def _learn_bpe_on_strings(word_counts: dict[str, int], n_merges: int) -> list[str]:
    """Sennrich et al.'s formulation: words as space-separated symbols, merges by regex replacement."""
    vocab = {" ".join(word): count for word, count in word_counts.items()}
    merges = []
    for _ in range(n_merges):
        pairs: Counter[tuple[str, str]] = Counter()
        for word, count in vocab.items():
            symbols = word.split()
            for i in range(len(symbols) - 1):
                pairs[symbols[i], symbols[i + 1]] += count
        best = max(pairs, key=pairs.get)
        pattern = re.compile(r"(?<!\S)" + re.escape(" ".join(best)) + r"(?!\S)")
        vocab = {pattern.sub("".join(best), word): count for word, count in vocab.items()}
        merges.append(" ".join(best))
    return merges


def test_bpe_merges_pinned_and_independently_relearned(computed_value):
    # Worked by hand: o w 31 (12+10+7+2), l ow 29, s low 22, e r 19 (12+7), slow er 12, low er 7.
    expected = ["o w", "l ow", "s low", "e r", "slow er", "low er"]
    assert computed_value("tokenization-bpe", "toy-merges") == expected
    corpus = {"slower": 12, "slow": 10, "lower": 7, "show": 2}
    assert _learn_bpe_on_strings(corpus, 6) == expected


def test_bpe_cards(computed_value):
    # blower: o w -> b l ow e r; l ow -> b low e r; e r -> b low er; low er -> b lower.
    assert computed_value("tokenization-bpe", "encode-blower") == ["b", "lower"]
    assert computed_value("tokenization-bpe", "gpt2-vocab") == 256 + 50_000 + 1 == 50_257
    # Four CJK characters of the Basic Multilingual Plane, 3 UTF-8 bytes each.
    assert computed_value("tokenization-bpe", "chinese-bytes") == 4 * 3 == 12


# decoding-sampling --------------------------------------------------------------------------------


def test_sampling_cards(computed_value):
    # softmax([4, 2, 0])[0] = e^4 / (e^4 + e^2 + 1) = 54.598 / 62.987 = 0.8668.
    assert computed_value("decoding-sampling", "temperature-half") == 0.8668
    # top-k 2: [0.5, 0.3] / 0.8 = [0.625, 0.375].
    assert computed_value("decoding-sampling", "top-k-two") == [0.625, 0.375, 0.0, 0.0]
    # top-p 0.9: 0.5 + 0.3 = 0.8 < 0.9, so 0.15 is kept too: [0.5, 0.3, 0.15] / 0.95.
    assert computed_value("decoding-sampling", "top-p-nine") == [0.5263, 0.3158, 0.1579, 0.0]


def test_sample_frequencies_pass_a_chi_square_test(run_entry):
    stats = pytest.importorskip("scipy.stats")
    ns = run_entry("decoding-sampling")
    n = ns["n_draws"]
    for name, dist in [("temperature", ns["t_probs"]), ("top-k", ns["topk2"]), ("top-p", ns["topp09"])]:
        p = _np(dist)
        counts = np.rint(np.asarray(ns["frequencies"][name]) * n)
        assert counts.sum() == n and counts[p == 0].sum() == 0
        support = p > 0
        result = stats.chisquare(counts[support], n * p[support])
        assert result.pvalue > 1e-3, (name, result)


def test_nucleus_matches_a_numpy_implementation(run_entry):
    ns = run_entry("decoding-sampling")
    p = _np(ns["p1"])
    order = np.argsort(-p, kind="stable")
    cumulative = np.cumsum(p[order])
    n_keep = int(np.searchsorted(cumulative, 0.8) + 1)  # first rank whose cumulative mass reaches 0.8
    kept = np.zeros_like(p)
    kept[order[:n_keep]] = p[order[:n_keep]]
    np.testing.assert_allclose(_np(ns["nucleus"]), kept / kept.sum(), rtol=0, atol=1e-14)
    assert ns["n_kept"] == n_keep


# beam-search --------------------------------------------------------------------------------------


def test_beam_search_cards(computed_value):
    # Greedy: A (0.5) then A (0.4) = 0.20; beam 2 keeps A and B, finds BB = 0.4 * 0.9 = 0.36.
    assert computed_value("beam-search", "greedy-vs-beam") == [["AA", 0.2], ["BB", 0.36]]
    # (-0.9 - 1.2) / 2 = -1.05; (-0.5 - 0.4 - 0.6 - 0.5 - 0.3) / 5 = -2.3 / 5 = -0.46.
    assert computed_value("beam-search", "per-token-score") == [-1.05, -0.46]


def _best_by_enumeration(probs: dict[tuple[int, ...], list[float]], length: int) -> tuple[str, float]:
    best = max(
        itertools.product(range(3), repeat=length),
        key=lambda seq: math.prod(probs[seq[:t]][tok] for t, tok in enumerate(seq)),
    )
    prob = math.prod(probs[best[:t]][tok] for t, tok in enumerate(best))
    return "".join("ABC"[t] for t in best), prob


def test_beam_results_against_enumeration_in_plain_python(run_entry):
    ns = run_entry("beam-search")
    toy = {(): [0.5, 0.4, 0.1], (0,): [0.4, 0.3, 0.3], (1,): [0.05, 0.9, 0.05], (2,): [0.3, 0.3, 0.4]}
    assert _best_by_enumeration(toy, 2) == ("BB", pytest.approx(0.36))
    trap = {(): [0.46, 0.44, 0.10], (0,): [0.50, 0.48, 0.02], (1,): [0.47, 0.51, 0.02], (2,): [0.02, 0.02, 0.96]}
    trap |= {p: [0.34, 0.33, 0.33] for p in itertools.product(range(3), repeat=2)}
    trap[(2, 2)] = [0.01, 0.01, 0.98]
    name, prob = _best_by_enumeration(trap, 3)
    # CCC = 0.1 * 0.96 * 0.98 = 0.09408; the beam of 3 returned AAA = 0.46 * 0.5 * 0.34 = 0.0782.
    assert (name, round(prob, 4)) == ("CCC", 0.0941) == ("CCC", ns["trap_probs"][1])
    assert ns["trap_probs"][0] == round(0.46 * 0.5 * 0.34, 4) == 0.0782
