"""Search: English and Chinese, short Chinese terms, aliases, tags, and hostile FTS syntax."""

from __future__ import annotations

import pytest

from helpers import write_concept

pytestmark = pytest.mark.both_backends


@pytest.fixture
def searchable(kb, deck):
    write_concept(
        deck,
        "self-attention",
        title_en="Self-Attention",
        title_zh="自注意力",
        category="attention",
        definition="Every token attends to every other token with softmax weights.",
        extra="aliases: [scaled dot-product attention, 自注意力机制]\ntags: [transformer]\n",
    )
    write_concept(
        deck,
        "convolution",
        title_en="Convolution",
        title_zh="卷积",
        category="layers",
        definition="A sliding cross-correlation of a kernel with the input.",
        extra="tags: [cnn]\n",
    )
    write_concept(
        deck,
        "softmax",
        title_en="Softmax",
        title_zh="归一化指数函数",
        definition="Turns logits into probabilities; used inside attention.",
        extra="aliases: [softargmax]\n",
    )
    kb.sync()
    return kb


def ids(kb, query):
    return [h.id for h in kb.search(query)]


@pytest.mark.parametrize(
    ("query", "expected_first"),
    [
        ("attention", "self-attention"),
        ("ATTENTION", "self-attention"),
        ("注意力", "self-attention"),
        ("注意", "self-attention"),  # two characters: below the trigram minimum
        ("卷积", "convolution"),
        ("积", "convolution"),
        ("dot-product", "self-attention"),  # alias
        ("softargmax", "softmax"),  # alias
        ("cnn", "convolution"),  # tag
        ("cross-correlation", "convolution"),  # body
        ("归一化", "softmax"),
    ],
)
def test_finds(searchable, query, expected_first):
    assert ids(searchable, query)[0] == expected_first


def test_title_match_ranks_above_body_match(searchable):
    # "attention" is in self-attention's title and in softmax's definition.
    assert ids(searchable, "attention")[:2] == ["self-attention", "softmax"]
    assert ids(searchable, "at")[0] == "self-attention"


def test_multiple_terms_are_anded(searchable):
    assert ids(searchable, "softmax weights") == ["self-attention"]
    assert ids(searchable, "卷积 cnn") == ["convolution"]


def test_snippet_text_marks_the_match(searchable):
    hit = searchable.search("cross-correlation")[0]
    assert "«cross-correlation»" in hit.snippet_text
    short = searchable.search("积")[0]
    assert "«积»" in short.snippet_text


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '""',
        "*",
        "a*",
        "AND",
        "OR NOT",
        "NEAR(a b)",
        "title:x",
        "(",
        ")",
        "^",
        "'",
        "-",
        "--",
        'a"b',
        "\\",
        "%",
        "_",
        "注意 AND",
        '"注意力"',
        "\x00",
        "😀",
    ],
)
def test_fts_syntax_never_crashes(searchable, query):
    searchable.search(query)


def test_empty_query_returns_nothing(searchable):
    assert searchable.search("   ") == []


def test_quoted_phrase_is_literal(searchable):
    assert ids(searchable, '"attention"') == []  # the quotes are part of the text searched


def test_an_exact_alias_or_id_comes_first(kb, deck):
    write_concept(
        deck,
        "kl-divergence",
        title_en="KL divergence",
        title_zh="KL 散度",
        definition="Compares distributions.",
        extra="aliases: [gaussian-kl-normal-kl]\n",
    )
    write_concept(
        deck,
        "gaussian-nll",
        title_en="Gaussian NLL",
        title_zh="高斯负对数似然",
        definition="Gaussian normal likelihood, gaussian normal again; KL appears, normal kl gaussian.",
    )
    kb.sync()
    assert [h.id for h in kb.search("gaussian-kl-normal-kl", limit=1)] == ["kl-divergence"]
    assert kb.search("Gaussian NLL")[0].id == "gaussian-nll"
