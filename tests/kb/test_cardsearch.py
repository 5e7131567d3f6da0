"""The card search language: each key, negation, OR and parentheses, errors that point at their
column; and, for any input, the parser either parses or says where it cannot (never another error),
and a search and its negation split the cards between them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kb.cardsearch import QueryError, SearchableCard, parse

CARDS = [
    SearchableCard(
        "softmax/definition",
        "softmax",
        "fundamentals",
        "bundled",
        "definition",
        "new",
        tags=("activation",),
        text="Softmax 归一化指数函数 maps scores to probabilities",
    ),
    SearchableCard(
        "softmax/c1",
        "softmax",
        "fundamentals",
        "bundled",
        "cloze",
        "review",
        tags=("activation",),
        text="softmax cloze",
        due_now=True,
        buried=True,
        flag=4,
        retrievability=0.72,
        stability=40.0,
        difficulty=7.5,
        interval_days=12,
        days_until_due=0,
        lapses=3,
        reps=9,
        ratings_by_days_ago=((0, 1), (5, 3)),
    ),
    SearchableCard(
        "attention/definition",
        "self-attention",
        "attention",
        "notes",
        "definition",
        "learning",
        tags=("transformer", "pytorch-pitfall"),
        text="Self-attention 自注意力",
        due_now=True,
        retrievability=0.95,
        stability=2.0,
        difficulty=5.0,
        reps=2,
        ratings_by_days_ago=((0, 3),),
        flag=1,
    ),
    SearchableCard(
        "conv/t",
        "convolution",
        "layers",
        "bundled",
        "typed",
        "review",
        suspended=True,
        leech=True,
        text="cross-correlation 卷积",
        retrievability=0.9,
        stability=100.0,
        difficulty=3.0,
        interval_days=60,
        days_until_due=20,
        lapses=8,
        reps=20,
        ratings_by_days_ago=((30, 1),),
    ),
]


def ids(query: str) -> list[str]:
    q = parse(query)
    return [c.card_id for c in CARDS if q.matches(c)]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", ["softmax/definition", "softmax/c1", "attention/definition", "conv/t"]),
        ("concept:softmax", ["softmax/definition", "softmax/c1"]),
        ("concept:soft*", ["softmax/definition", "softmax/c1"]),
        ('concept:"self-attention"', ["attention/definition"]),
        ("category:attention", ["attention/definition"]),
        ("tag:pytorch-pitfall", ["attention/definition"]),
        ("tag:TRANS*", ["attention/definition"]),
        ("deck:notes", ["attention/definition"]),
        ("kind:cloze", ["softmax/c1"]),
        ("is:new", ["softmax/definition"]),
        ("is:learning", ["attention/definition"]),
        ("is:review", ["softmax/c1", "conv/t"]),
        ("is:due", ["attention/definition"]),  # a suspended or buried card is never due
        ("is:buried", ["softmax/c1"]),
        ("is:flagged", ["softmax/c1", "attention/definition"]),
        ("flag:4", ["softmax/c1"]),
        ("flag:0", ["softmax/definition", "conv/t"]),
        ("-is:flagged", ["softmax/definition", "conv/t"]),
        ("is:suspended", ["conv/t"]),
        ("is:leech", ["conv/t"]),
        ("rated:1", ["softmax/c1", "attention/definition"]),
        ("rated:7:1", ["softmax/c1"]),
        ("rated:31:1", ["softmax/c1", "conv/t"]),
        ("prop:r<0.8", ["softmax/c1"]),
        ("prop:s>30", ["softmax/c1", "conv/t"]),
        ("prop:d>7", ["softmax/c1"]),
        ("prop:ivl>=10", ["softmax/c1", "conv/t"]),
        ("prop:lapses>2", ["softmax/c1", "conv/t"]),
        ("prop:reps=0", ["softmax/definition"]),
        ("prop:due>10", ["conv/t"]),
        ("自注意力", ["attention/definition"]),
        ("PROBABILITIES", ["softmax/definition"]),
        ('"maps scores"', ["softmax/definition"]),
        ("-concept:softmax", ["attention/definition", "conv/t"]),
        ("concept:softmax -kind:cloze", ["softmax/definition"]),
        ("kind:cloze OR kind:typed", ["softmax/c1", "conv/t"]),
        ("(kind:cloze OR kind:typed) -is:suspended", ["softmax/c1"]),
        ("-(concept:softmax OR is:suspended)", ["attention/definition"]),
        ("10:30", []),  # a time is text, not an unknown key
    ],
)
def test_each_part_of_the_grammar(query, expected):
    assert ids(query) == expected


@pytest.mark.parametrize(
    "query, col, words",
    [
        ("concept:softmax (kind:cloze", 17, "'(' is never closed"),
        ("kind:cloze)", 11, "')' without a matching '('"),
        ("a OR", 3, "OR needs a search term"),
        ("flavour:sweet", 1, "unknown search key 'flavour'"),
        ("is:sleepy", 4, "is:sleepy is not known"),
        ("prop:r<<1", 6, "prop: is a property"),
        ("rated:7:9", 9, "a rating is 1-4"),
        ('"open quote', 1, "never closed"),
        ("kind:", 1, "kind: needs a value"),
        ("flag:8", 6, "a number from 0 (no flag) to 7"),
        ("flag:red", 6, "a number from 0 (no flag) to 7"),
        ("()", 2, "a search term is missing"),
    ],
)
def test_errors_point_at_their_column(query, col, words):
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert caught.value.col == col and words in caught.value.user_message()
    assert caught.value.user_message().startswith(f"search, column {col}: ")


ATOMS = st.sampled_from(
    [
        "concept:softmax",
        "kind:cloze",
        "is:due",
        "is:new",
        "tag:activation",
        "prop:r<0.8",
        "rated:1",
        "softmax",
        "自注意力",
        "deck:notes",
        "prop:lapses>2",
        "is:buried",
        "is:flagged",
        "flag:4",
    ]
)


@st.composite
def queries(draw, depth: int = 0) -> str:
    if depth > 2 or draw(st.booleans()):
        return draw(ATOMS)
    left, right = draw(queries(depth + 1)), draw(queries(depth + 1))
    return draw(st.sampled_from([f"{left} {right}", f"{left} OR {right}", f"-({left})", f"({left} OR {right})"]))


@settings(max_examples=300, deadline=None)
@given(queries())
def test_a_search_and_its_negation_partition_the_cards(query):
    positive, negative = set(ids(query)), set(ids(f"-({query})"))
    assert positive | negative == {c.card_id for c in CARDS} and not positive & negative


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from(list('ab:()-"* <>=.19') + ["OR", "prop:", "rated:", "is:", "r<", "is"]), max_size=20).map(
        "".join
    )
    | st.text(max_size=40)
)
def test_the_parser_never_raises_anything_but_a_query_error(text):
    try:
        query = parse(text)
    except QueryError as exc:
        assert 1 <= exc.col <= len(text) + 1
        return
    for card in CARDS:
        assert query.matches(card) in (True, False)
