"""kb.quiz: presenting every kind of card and grading the auto-graded ones (pure, deterministic)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from kb.loader import parse_file
from kb.quiz import (
    CardUnavailable,
    Grade,
    QuizCard,
    cloze_sides,
    derive_cards,
    grade,
    normalize_answer,
    present,
)

ROOT = Path(__file__).resolve().parents[2]

CONCEPT = {
    "id": "softmax",
    "title": {"en": "Softmax", "zh": "归一化指数函数"},
    "summary": {"en": "Softmax turns scores into probabilities.", "zh": "Softmax 把打分变成概率。"},
    "category": "fundamentals",
    "aliases": ["softargmax", "归一化指数函数"],
    "definition": "**Softmax** is $e^{z_i}/\\sum_k e^{z_k}$.",
}


def show(kind: str, payload: dict, *, seed: int = 0, pool=(), values=None, key: str = "k") -> QuizCard:
    return present(
        card_id=f"softmax/{key}",
        kind=kind,
        payload=payload,
        concept=CONCEPT,
        rng=random.Random(seed),
        distractor_pool=pool,
        computed_values=values,
    )


# Presenting -------------------------------------------------------------------------------------


def test_definition_card():
    payload = {"title": CONCEPT["title"], "summary": CONCEPT["summary"], "definition": CONCEPT["definition"]}
    card = show("definition", payload, key="definition")
    assert card.card_id == "softmax/definition" and card.concept_id == "softmax" and card.kind == "definition"
    assert card.prompt == "Softmax / 归一化指数函数"
    assert card.answer.startswith("Softmax turns scores into probabilities.\n\nSoftmax 把打分变成概率。\n\n")
    assert card.answer.endswith(CONCEPT["definition"])
    assert not card.auto_graded and grade(card, "anything") is None


def test_definition_prompt_with_identical_titles_is_not_doubled():
    concept = {**CONCEPT, "title": {"en": "GELU", "zh": "GELU"}}
    card = present(
        card_id="gelu/definition",
        kind="definition",
        concept=concept,
        rng=random.Random(0),
        payload={"title": concept["title"], "summary": CONCEPT["summary"], "definition": "d"},
    )
    assert card.prompt == "GELU"


def test_reverse_card_hides_the_names_in_the_summary():
    card = show("reverse", {"summary": CONCEPT["summary"], "title": CONCEPT["title"]}, key="reverse")
    assert card.answer == "Softmax / 归一化指数函数"
    assert "Softmax" not in card.prompt and "softmax" not in card.prompt.lower()
    assert card.prompt == "[...] turns scores into probabilities.\n\n[...] 把打分变成概率。"
    assert grade(card, "softmax") is None


def test_formula_card_renders_latex_and_symbols():
    payload = {
        "name": "Softmax",
        "latex": r"\mathrm{softmax}(z)_i = \frac{e^{z_i}}{\sum_{k=1}^{K} e^{z_k}}",
        "where": {"z_i": "score of class i", r"\tau": "temperature"},
    }
    card = show("formula", payload, key="formula-0")
    assert card.prompt == "Softmax?"
    assert card.answer == (
        "softmax(z)ᵢ = (e^(zᵢ))/(∑[k=1]ᴷ e^(z[k]))\n\nwhere:\n  zᵢ: score of class i\n  τ: temperature"
    )
    assert "\\" not in card.answer


def test_formula_prompt_names_the_concept_when_the_name_does_not():
    card = show("formula", {"name": "Jacobian", "latex": "J = \\mathrm{diag}(p) - pp^\\top", "where": {}})
    assert card.prompt == "Softmax: Jacobian?"
    assert card.answer == "J = diag(p) - ppᵀ"


def test_basic_card_and_note():
    card = show("basic", {"type": "basic", "front": "Q?", "back": "A.", "note": "a note"})
    assert (card.prompt, card.answer, card.note, card.auto_graded) == ("Q?", "A.", "a note", False)
    assert grade(card, "A.") is None


def test_cloze_with_several_numbers_and_hints():
    text = "{{c1::Paris}} is the capital of {{c2::France::country}}; {{c1::it}} has {{c3::2.1 million::number}} people."
    payload = {"type": "cloze", "text": text}
    one = show("cloze", {**payload, "cloze": 1})
    assert one.prompt == "[...] is the capital of France; [...] has 2.1 million people."
    assert one.answer == "[Paris] is the capital of France; [it] has 2.1 million people."
    two = show("cloze", {**payload, "cloze": 2})
    assert two.prompt == "Paris is the capital of [country]; it has 2.1 million people."
    assert two.answer == "Paris is the capital of [France]; it has 2.1 million people."
    three = show("cloze", {**payload, "cloze": 3})
    assert three.prompt == "Paris is the capital of France; it has [number] people."
    assert three.answer == "Paris is the capital of France; it has [2.1 million] people."
    assert not one.auto_graded and grade(one, "Paris") is None


def test_cloze_without_deletions_and_multiline():
    assert cloze_sides("no deletions here", 1) == ("no deletions here", "no deletions here")
    assert cloze_sides("a {{c1::b\nc}} d", 1) == ("a [...] d", "a [b\nc] d")


CHOICE = {
    "type": "choice",
    "question": "What does CrossEntropyLoss take?",
    "answer": "logits",
    "distractors": ["probabilities", "log-probabilities", "one-hot vectors"],
    "note": "n",
}


def test_choice_options_are_the_answer_and_distractors_stably_shuffled():
    card = show("choice", CHOICE, seed=1)
    assert sorted(card.options) == sorted(["logits", *CHOICE["distractors"]])
    assert card.options[card.correct_option] == "logits"
    assert card.answer == f"{card.correct_option + 1}. logits"
    assert card.prompt == CHOICE["question"] and card.auto_graded and card.note == "n"
    assert show("choice", CHOICE, seed=1) == card  # the same seed, the same order
    orders = {show("choice", CHOICE, seed=seed).options for seed in range(20)}
    assert len(orders) > 1  # another seed, another order


def test_choice_with_a_different_seed_differs():
    assert show("choice", CHOICE, seed=1).options != show("choice", CHOICE, seed=2).options


def test_choice_fills_from_the_pool_without_duplicating_the_answer():
    payload = {**CHOICE, "distractors": ["probabilities"]}
    pool = ["Logits", "probabilities", "ReLU", "GELU", "ReLU", "Sigmoid", " "]
    for seed in range(30):
        card = show("choice", payload, seed=seed, pool=pool)
        assert len(card.options) == 4
        normalized = [normalize_answer(o) for o in card.options]
        assert len(set(normalized)) == 4, card.options  # no duplicates, and "Logits" is not the answer twice
        assert normalized.count("logits") == 1
        assert "probabilities" in card.options
        assert set(card.options) <= {"logits", "probabilities", "ReLU", "GELU", "Sigmoid"}


def test_choice_pool_draw_is_stable_for_a_seed():
    payload = {**CHOICE, "distractors": []}
    pool = [f"concept {i}" for i in range(10)]
    assert show("choice", payload, seed=5, pool=pool) == show("choice", payload, seed=5, pool=pool)
    draws = {frozenset(show("choice", payload, seed=s, pool=pool).options) for s in range(10)}
    assert len(draws) > 1


def test_choice_own_distractors_are_all_kept_and_deduplicated():
    payload = {**CHOICE, "distractors": ["a", "b", "c", "d", "A", "logits"]}
    card = show("choice", payload, pool=["x", "y"])
    assert sorted(card.options) == ["a", "b", "c", "d", "logits"]


def test_choice_with_too_small_a_pool_uses_what_there_is_and_none_is_unavailable():
    card = show("choice", {**CHOICE, "distractors": []}, pool=["x"])
    assert sorted(card.options) == ["logits", "x"]
    with pytest.raises(CardUnavailable):
        show("choice", {**CHOICE, "distractors": []}, pool=["logits", "LOGITS"])


def test_choice_graded_by_number_and_by_text():
    card = show("choice", CHOICE, seed=3)
    right = card.correct_option + 1
    wrong = 1 if right != 1 else 2
    assert grade(card, str(right)) == Grade(True, 3, "correct")
    assert grade(card, f" {right}. ").correct
    assert grade(card, "LOGITS").correct
    assert grade(card, "ｌｏｇｉｔｓ").correct  # full width
    bad = grade(card, str(wrong))
    assert not bad.correct and bad.proposed_rating == 1
    assert f"the answer is {right}. logits" in bad.feedback
    assert not grade(card, "probabilities").correct
    assert "no option 9" in grade(card, "9").feedback
    assert "not one of the options" in grade(card, "softmax").feedback
    assert not grade(card, "").correct


def test_choice_numeric_option_text_is_found_when_the_number_is_out_of_range():
    payload = {"type": "choice", "question": "How many heads?", "answer": "8", "distractors": ["12", "16", "32"]}
    card = show("choice", payload)
    assert len(card.options) == 4
    assert grade(card, "8").correct  # no option 8: the option whose text is 8
    assert not grade(card, "12").correct
    assert grade(card, str(card.correct_option + 1)).correct  # in range, a number is an option number


TYPED = {"type": "typed", "question": "Which function?", "answer": "softmax"}


def test_typed_card():
    card = show("typed", {**TYPED, "answer": "softmax|softargmax", "tolerance": 0.5})
    assert card.expected == ("softmax", "softargmax")
    assert card.answer == "softmax (also accepted: softargmax)"
    assert card.tolerance == 0.5 and card.auto_graded and card.prompt == "Which function?"


@pytest.mark.parametrize(
    "raw,normalized",
    [
        ("  Softmax  ", "softmax"),
        ("SOFTMAX.", "softmax"),
        ('"softmax"', "softmax"),
        ("“softmax”", "softmax"),
        ("'log  softmax'", "log softmax"),
        ("log\tsoftmax\n", "log softmax"),
        ("ＳＯＦＴＭＡＸ", "softmax"),  # full-width letters
        ("ＡＢＣ１２３", "abc123"),
        ("（ａ，ｂ）", "(a,b)"),  # full-width punctuation
        ("归一化 指数函数", "归一化指数函数"),
        ("归一化指数函数。", "归一化指数函数"),
        ("Softmax 函数", "softmax函数"),
        ("ﬁne", "fine"),  # NFKC ligature
        ("x²", "x2"),
        ("Straße", "strasse"),  # casefold
        ("e\u0301", "é"),  # combining accent composed
        ("torch.softmax(x, dim=1)", "torch.softmax(x, dim=1)"),
        ("-1000", "-1000"),
    ],
)
def test_normalize_answer(raw, normalized):
    assert normalize_answer(raw) == normalized


@pytest.mark.parametrize(
    "expected,response,correct",
    [
        ("softmax", "Softmax", True),
        ("softmax", " SOFTMAX. ", True),
        ("softmax", "ｓｏｆｔｍａｘ", True),
        ("归一化指数函数", "归一化 指数函数", True),
        ("归一化指数函数", "归一化指数函数。", True),
        ("Softmax 函数", "softmax函数", True),
        ("max pooling", "maxpooling", True),
        ("softmax|softargmax", "softargmax", True),
        ("softmax|softargmax", "argmax", False),
        ("yes", "Yes!", True),
        ("yes", "no", False),
        ("inf|infinity|∞", "∞", True),
        ("inf|infinity|∞", "Infinity", True),
        ("inf|infinity|∞", "-inf", False),
        ("relu", "gelu", False),  # no typos below 5 characters
        ("ReLU", "relu", True),
        ("nanoGPT", "NanoGPT", True),  # not the number nan
        ("nanoGPT", "nanoGTP", True),  # so typos are fine; a swap of neighbours is one edit
        ("information", "informaton", True),
    ],
)
def test_typed_grading_table(expected, response, correct):
    card = show("typed", {**TYPED, "answer": expected})
    result = grade(card, response)
    assert result.correct is correct, result.feedback
    assert result.proposed_rating == (3 if correct else 1)


def test_typos_are_accepted_with_feedback_and_rejected_when_too_far():
    card = show("typed", TYPED)
    ok = grade(card, "softmx")
    assert ok.correct and ok.proposed_rating == 3
    assert ok.feedback == "correct (typo: you wrote 'softmx', expected 'softmax')"
    assert not grade(card, "sftmx").correct  # two edits on 7 characters
    long = show("typed", {**TYPED, "answer": "cross-entropy"})
    assert grade(long, "cross-entrpy").correct and grade(long, "cros-entrpy").correct  # two edits on 13
    assert not grade(long, "cros-entrpyy").correct
    short = show("typed", {**TYPED, "answer": "ReLU"})
    assert grade(short, "reLu").feedback == "correct" and not grade(short, "relu6").correct
    assert not grade(short, "GELU").correct  # no typos below 5 characters
    five = show("typed", {**TYPED, "answer": "swish"})
    assert grade(five, "swsh").correct and not grade(five, "swi").correct
    chinese = show("typed", {**TYPED, "answer": "归一化指数函数"})
    typo = grade(chinese, "归一化指数涵数")
    assert typo.correct and "typo" in typo.feedback
    assert not grade(chinese, "归一指数涵数").correct


def test_a_typo_never_changes_a_digit():
    card = show("typed", {**TYPED, "answer": "conv2d"})
    assert not grade(card, "conv1d").correct
    assert grade(card, "conv2b").correct
    card = show("typed", {**TYPED, "answer": "float32"})
    assert not grade(card, "float16").correct and not grade(card, "float3").correct


def test_wrong_text_feedback_names_both():
    result = grade(show("typed", TYPED), "sigmoid")
    assert result == Grade(False, 1, "expected 'softmax', you wrote 'sigmoid'")
    result = grade(show("typed", {**TYPED, "answer": "softmax|softargmax"}), "sigmoid")
    assert "accepted: softmax | softargmax" in result.feedback


@pytest.mark.parametrize(
    "expected,tolerance,response,correct",
    [
        ("28.13", None, "28.13", True),
        ("28.13", None, "28.13 dB", True),
        ("28.13 dB", None, "28.13", True),
        ("28.13", None, "28.134", True),
        ("28.13", None, "28.15", True),  # within relative 1e-3 (0.028)
        ("28.13", None, "28.2", False),
        ("28.13", None, "２８．１３", True),  # full width
        ("0.2689", None, "0.269", True),  # relative 1e-3 beats half a unit (5e-5)
        ("0.2689", None, "0.27", False),
        ("8", None, "8.0", True),
        ("8", None, "8.4", False),  # integers are exact by default
        ("-1000|-1000.0", 0.001, "-1000.0005", True),
        ("-1000|-1000.0", 0.001, "-1000.01", False),
        ("-1000|-1000.0", 0.001, "−1000", True),  # a Unicode minus
        ("0.9", 0.0001, "0.90005", True),
        ("0.9", 0.0001, "0.9002", False),
        ("246", None, "246", True),
        ("246", None, "245", False),
        ("1.4e-45", None, "1.43e-45", True),  # half a unit of 0.1e-45
        ("1.4e-45", None, "1.5e-45", False),
        ("1e-3", None, "0.001", True),  # no decimal point: exact
        ("1e-3", None, "0.0011", False),
        ("(4, 3, 2)", None, "4, 3, 2", True),
        ("(4, 3, 2)", None, "[4,3,2]", True),
        ("(4, 3, 2)", None, "torch.Size([4, 3, 2])", True),
        ("(4, 3, 2)", None, "4 3 2", True),
        ("(4, 3, 2)", None, "(4, 2, 3)", False),
        ("(4, 3, 2)", None, "(4, 3)", False),
        ("[0.2689, 0.7311]", None, "[0.2689, 0.7311]", True),
        ("[0.2689, 0.7311]", None, "0.269, 0.731", True),
        ("[0.2689, 0.7311]", None, "0.27, 0.73", False),
        ("nan", None, "NaN", True),
        ("28.13", None, "twenty-eight", False),
        ("28.13", None, "28.13.1", False),
    ],
)
def test_numeric_typed_answers(expected, tolerance, response, correct):
    payload = {**TYPED, "answer": expected}
    if tolerance is not None:
        payload["tolerance"] = tolerance
    result = grade(show("typed", payload), response)
    assert result.correct is correct, result.feedback


def test_numeric_feedback_shows_the_difference():
    card = show("typed", {**TYPED, "answer": "28.13"})
    assert grade(card, "28.2").feedback == "expected 28.13, you wrote 28.2 (off by +0.07)"
    assert grade(card, "28.13").feedback == "correct"
    assert grade(card, "28.14").feedback == "correct (expected 28.13, you wrote 28.14; off by +0.01)"
    assert "not a number" in grade(card, "abc").feedback
    lists = show("typed", {**TYPED, "answer": "(4, 3, 2)"})
    assert grade(lists, "4, 3").feedback == "expected 3 numbers ((4, 3, 2)), you wrote 2 ([4, 3])"
    assert grade(lists, "4, 3, 1").feedback == "expected (4, 3, 2), you wrote [4, 3, 1] (off by +0, +0, -1)"


def test_empty_answer_is_wrong():
    card = show("typed", TYPED)
    assert grade(card, "   ") == Grade(False, 1, "no answer; the answer is softmax")


def test_huge_response_is_graded_without_trouble():
    assert not grade(show("typed", TYPED), "x" * 100_000).correct


COMPUTED = {"type": "computed", "question": "softmax([1000, 1001])?", "answer": "[round(v, 4) for v in p_big]"}


def test_computed_card_with_values():
    values = {COMPUTED["answer"]: {"value": [0.2689, 0.7311], "text": "[0.2689, 0.7311]"}}
    card = show("computed", COMPUTED, values=values)
    assert card.prompt == COMPUTED["question"] and card.answer == "[0.2689, 0.7311]" and card.auto_graded
    assert card.expected == ("[0.2689, 0.7311]",)
    assert grade(card, "[0.2689, 0.7311]").correct
    assert grade(card, "0.269 0.731").correct
    assert not grade(card, "0.27, 0.73").correct
    assert not grade(card, "0.2689").correct


def test_computed_card_without_values_is_unavailable():
    with pytest.raises(CardUnavailable, match="kb verify softmax"):
        show("computed", COMPUTED, values=None)
    with pytest.raises(CardUnavailable):
        show("computed", COMPUTED, values={"other": {"value": 1, "text": "1"}})


def test_computed_digits_round_for_display_and_grading():
    payload = {**COMPUTED, "answer": "x", "digits": 2}
    card = show("computed", payload, values={"x": {"value": 28.130000001, "text": "28.130000001"}})
    assert card.answer == "28.13" and card.expected == ("28.13",)
    assert grade(card, "28.13").correct and not grade(card, "28.2").correct
    lists = show("computed", payload, values={"x": {"value": [0.123456, 2.0], "text": "(0.123456, 2.0)"}})
    assert lists.answer == "[0.12, 2.00]"


def test_computed_integral_floats_are_exact_and_ints_too():
    card = show("computed", {**COMPUTED, "answer": "p"}, values={"p": {"value": 0.0, "text": "0.0"}})
    assert card.answer == "0.0"
    assert grade(card, "0").correct and grade(card, "0.0").correct
    assert not grade(card, "0.01").correct and not grade(card, "1e-30").correct
    shape = show("computed", {**COMPUTED, "answer": "s"}, values={"s": {"value": [2, 5, 16], "text": "(2, 5, 16)"}})
    assert shape.answer == "(2, 5, 16)"
    assert grade(shape, "(2, 5, 16)").correct and grade(shape, "2,5,16").correct and not grade(shape, "2,5").correct


def test_computed_unrounded_float_uses_relative_tolerance():
    card = show(
        "computed",
        {**COMPUTED, "answer": "p"},
        values={"p": {"value": 0.2689414213699951, "text": "0.2689414213699951"}},
    )
    assert grade(card, "0.2689").correct and grade(card, "0.269").correct and not grade(card, "0.27").correct


def test_computed_strings_and_booleans():
    card = show(
        "computed", {**COMPUTED, "answer": "s"}, values={"s": {"value": "mode-seeking", "text": "'mode-seeking'"}}
    )
    assert card.answer == "mode-seeking"
    assert grade(card, "Mode-seeking").correct
    flag = show("computed", {**COMPUTED, "answer": "b"}, values={"b": {"value": True, "text": "True"}})
    assert grade(flag, "true").correct and not grade(flag, "false").correct
    pair = show("computed", {**COMPUTED, "answer": "p"}, values={"p": {"value": ["a", "b"], "text": "('a', 'b')"}})
    assert grade(pair, "a, b").correct


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError):
        show("essay", {})


# Every card of every real entry -------------------------------------------------------------------


def _content_cards():
    for path in sorted((ROOT / "content").rglob("*.yaml")):
        parsed = parse_file(path)
        assert parsed.concept is not None, parsed.errors
        concept = parsed.concept
        for card in derive_cards(concept):
            yield concept, card


CONTENT_CARDS = list(_content_cards())


def test_the_content_has_every_kind():
    assert {card.kind for _, card in CONTENT_CARDS} == {
        "definition",
        "reverse",
        "formula",
        "basic",
        "cloze",
        "choice",
        "typed",
        "computed",
    }


@pytest.mark.parametrize("concept,card", CONTENT_CARDS, ids=[f"{c.id}/{d.key}" for c, d in CONTENT_CARDS])
def test_every_content_card_presents(concept, card):
    data = concept.model_dump(mode="json")
    kwargs = dict(
        card_id=f"{concept.id}/{card.key}",
        kind=card.kind,
        payload=card.payload,
        concept=data,
        rng=random.Random(7),
        distractor_pool=["A", "B", "C"],
    )
    if card.kind == "computed":
        with pytest.raises(CardUnavailable):
            present(**kwargs, computed_values=None)
        shown = present(**kwargs, computed_values={card.payload["answer"]: {"value": 1.5, "text": "1.5"}})
        assert grade(shown, "1.5").correct
        return
    shown = present(**kwargs)
    assert shown.card_id == f"{concept.id}/{card.key}" and shown.concept_id == concept.id
    assert shown.prompt.strip() and shown.answer.strip()
    assert "{{c" not in shown.prompt and "{{c" not in shown.answer
    if card.kind == "formula":
        assert "\\" not in shown.answer.split("\n\nwhere:")[0]
    if card.kind == "choice":
        right = shown.correct_option + 1
        assert grade(shown, str(right)).correct
        assert grade(shown, shown.options[shown.correct_option]).correct
    elif card.kind == "typed":
        for alternative in shown.expected:
            assert grade(shown, alternative).correct, alternative
    else:
        assert grade(shown, "x") is None


@pytest.mark.parametrize(
    ("expected", "response", "correct"),
    [
        ("(1, 16, 16, 16)", "1x16x16x16", True),
        ("(1, 16, 16, 16)", "1 × 16 × 16 × 16", True),
        ("[1, 16, 16, 16]", "(1, 16, 16, 16)", True),
        ("(1, 16, 16, 16)", "1x16x16x8", False),
        ("135266304", "135,266,304", True),
        ("135266304", "135 266 304", True),
        ("135266304", "135_266_304", True),
        ("135266304", "135,266,305", False),
        ("[1, 234]", "1,234", True),  # a list answer: the comma separates
        ("1234", "1,234", True),  # a single number: the comma groups thousands
        ("12", "4x3", False),  # a product is a shape, not its value
    ],
)
def test_shapes_and_thousands_are_read_as_people_write_them(expected, response, correct):
    from kb.quiz import _grade_typed

    assert _grade_typed((expected,), None, response).correct is correct


def test_definition_and_reverse_cards_follow_the_language_setting():
    import random

    from kb.quiz import present

    concept = {
        "id": "softmax",
        "title": {"en": "Softmax", "zh": "归一化指数函数"},
        "summary": {"en": "Scores to probabilities.", "zh": "把打分变成概率。"},
        "definition": "Exponentiate and normalise.",
        "definition_zh": "取指数再归一化。",
    }

    def card(kind: str, language: str):
        return present(
            card_id=f"softmax/{kind}", kind=kind, payload={}, concept=concept, rng=random.Random(0), language=language
        )

    assert card("definition", "en").prompt == "Softmax"
    assert "取指数" not in card("definition", "en").answer and "Exponentiate" in card("definition", "en").answer
    assert card("definition", "zh").prompt == "归一化指数函数"
    assert card("definition", "zh").answer == "把打分变成概率。\n\n取指数再归一化。"
    assert card("definition", "both").prompt == "Softmax / 归一化指数函数"
    assert card("reverse", "zh").prompt == "把打分变成概率。" and card("reverse", "zh").answer == "归一化指数函数"
    # A text missing in the chosen language falls back to the other.
    concept["definition_zh"] = None
    assert card("definition", "zh").answer.endswith("Exponentiate and normalise.")


@pytest.mark.parametrize(
    "answer, response, right",
    [
        ("梯度消失|vanishing gradient", "梯度消失", True),
        ("梯度消失|vanishing gradient", "梯 度 消 失", True),  # characters, not words: spaces do not count
        ("梯度消失|vanishing gradient", "梯度消逝", True),  # one wrong character of four
        ("梯度消失|vanishing gradient", "梯度爆炸", False),  # two of four
        ("梯度消失|vanishing gradient", "vanishing gradients", True),
        ("卷积", "卷集", False),  # below four characters, no typo
        ("批量归一化层", "批量规一化层", True),
        ("批量归一化（BatchNorm）", "批量归一化(BatchNorm)", True),  # full-width brackets folded
        ("ＧＥＬＵ激活函数", "GELU激活函数", True),  # full-width letters folded
        ("残差连接的恒等映射", "残差链接的恒等应射", True),  # two wrong of nine
        ("残差连接的恒等映射", "残差链接的恒等应设", False),  # three wrong
    ],
)
def test_chinese_typed_answers_are_graded_on_characters(answer, response, right):
    from kb.quiz import QuizCard, grade

    card = QuizCard(
        card_id="x/t",
        concept_id="x",
        kind="typed",
        prompt="?",
        answer=answer,
        auto_graded=True,
        expected=tuple(answer.split("|")),
    )
    graded = grade(card, response)
    assert graded is not None and graded.correct is right, graded


BILINGUAL = {
    "id": "bi",
    "title": {"en": "Vanishing gradient", "zh": "梯度消失"},
    "summary": {"en": "Gradients shrink.", "zh": "梯度越来越小。"},
    "category": "fundamentals",
    "definition": "Gradients shrink layer by layer.",
    "formulas": [
        {
            "name": {"en": "Chain rule", "zh": "链式法则"},
            "latex": "a b",
            "where": {"a": {"en": "first", "zh": "第一项"}},
        }
    ],
    "pitfalls": [{"en": "Deep nets.", "zh": "深层网络。"}],
    "cards": [
        {
            "type": "basic",
            "id": "b",
            "front": {"en": "Why?", "zh": "为什么？"},
            "back": "plain back",
            "note": {"en": "N.", "zh": "注。"},
        },
        {"type": "cloze", "id": "c", "text": {"en": "The {{c1::gradient}} shrinks.", "zh": "{{c1::梯度}}变小。"}},
        {
            "type": "choice",
            "id": "ch",
            "question": {"en": "Which?", "zh": "哪个？"},
            "answer": {"en": "sigmoid", "zh": "sigmoid 函数"},
            "distractors": [{"en": "ReLU", "zh": "ReLU 函数"}, "GELU", "SiLU"],
        },
        {
            "type": "typed",
            "id": "t",
            "question": {"en": "Name?", "zh": "名称？"},
            "answer": {"en": "vanishing gradient", "zh": "梯度消失"},
        },
    ],
}


@pytest.mark.parametrize("language", ["en", "zh", "both"])
def test_bilingual_cards_show_the_chosen_language_and_grade_either(language):
    import random

    from kb.quiz import derive_cards, grade, present
    from kb.schema import Concept

    concept = Concept.model_validate(BILINGUAL)
    shown = {}
    for card in derive_cards(concept):
        shown[card.key] = present(
            card_id=f"bi/{card.key}",
            kind=card.kind,
            payload=card.payload,
            concept=concept.model_dump(),
            rng=random.Random(0),
            language=language,
        )
    expect = {
        "en": {"b": "Why?", "c-c1": "The [...] shrinks.", "ch": "Which?", "t": "Name?", "formula-0": "Chain rule"},
        "zh": {"b": "为什么？", "c-c1": "[...]变小。", "ch": "哪个？", "t": "名称？", "formula-0": "链式法则"},
        "both": {"b": "Why?\n\n为什么？", "c-c1": "The [...] shrinks.\n\n[...]变小。", "ch": "Which?\n\n哪个？"},
    }[language]
    for key, prompt in expect.items():
        assert prompt in shown[key].prompt, (key, shown[key].prompt)
    assert (
        shown["b"].answer == "plain back"
        and shown["b"].note == {"en": "N.", "zh": "注。", "both": "N.\n\n注。"}[language]
    )
    options = shown["ch"].options
    assert ("sigmoid 函数" in options) is (language == "zh") and ("ReLU 函数" in options) is (language == "zh")
    assert "第一项" in shown["formula-0"].answer or language == "en"
    # A typed answer is right in either language, whichever is shown.
    assert grade(shown["t"], "梯度消失").correct and grade(shown["t"], "vanishing gradient").correct
    assert shown["t"].answer.startswith("梯度消失" if language == "zh" else "vanishing gradient")


def test_a_cloze_must_delete_the_same_numbers_in_both_languages():
    from pydantic import ValidationError

    from kb.schema import Concept

    broken = {**BILINGUAL, "cards": [{"type": "cloze", "text": {"en": "{{c1::a}} {{c2::b}}", "zh": "{{c1::甲}} 乙"}}]}
    with pytest.raises(ValidationError, match="the same deletions: c1, c2 in English, c1 in Chinese"):
        Concept.model_validate(broken)
