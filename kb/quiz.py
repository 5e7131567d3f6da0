"""Cards from concepts. Pure: no database, no clock.

Every concept yields a `definition` card (title -> summary and definition), a `reverse` card
(summary -> title), one `formula-N` card per formula, and its own cards. A card's key is stable
under edits of its text (the card keeps its history); a cloze card yields one card per number.

`present` turns a derived card into a `QuizCard` (prompt, answer, shuffled options); `grade` checks a
typed response to a choice, typed or computed card. The rules are in the comment above `QuizCard`.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kb.bilingual import both_languages, localized
from kb.errors import KbError
from kb.render.latex import tex_to_text
from kb.schema import (
    CLOZE_RE,  # noqa: E402  (one pattern for the schema's check and the cards)
    ClozeCard,
    Concept,
)


@dataclass(frozen=True)
class DerivedCard:
    """One reviewable card: `key` is unique within its concept; `payload` is what the quiz shows."""

    key: str
    kind: str
    payload: dict

    @property
    def payload_json(self) -> str:
        """The payload as stored: canonical JSON (sorted keys, UTF-8 text)."""
        return json.dumps(self.payload, sort_keys=True, ensure_ascii=False)

    @property
    def content_hash(self) -> str:
        return payload_hash(self.payload_json)


def payload_hash(payload_json: str) -> str:
    return hashlib.blake2b(payload_json.encode(), digest_size=12).hexdigest()


def cloze_numbers(text: object) -> list[int]:
    """The deletion numbers of a cloze text (plain, or in both languages: the schema makes both
    sides have the same numbers)."""
    return sorted({int(m.group(1)) for side in both_languages(text) for m in CLOZE_RE.finditer(side)})


def derive_cards(concept: Concept) -> list[DerivedCard]:
    cards = [
        DerivedCard(
            "definition",
            "definition",
            {
                "title": concept.title.model_dump(),
                "summary": concept.summary.model_dump(),
                "definition": concept.definition,
            },
        ),
        DerivedCard(
            "reverse", "reverse", {"summary": concept.summary.model_dump(), "title": concept.title.model_dump()}
        ),
    ]
    for i, formula in enumerate(concept.formulas):
        cards.append(DerivedCard(f"formula-{i}", "formula", formula.model_dump()))
    for i, spec in enumerate(concept.cards):
        key = spec.id or f"card-{i}"
        payload = spec.model_dump(exclude_none=True)
        if isinstance(spec, ClozeCard):
            for number in cloze_numbers(spec.text) or [1]:
                cards.append(DerivedCard(f"{key}-c{number}", "cloze", {**payload, "cloze": number}))
        else:
            cards.append(DerivedCard(key, spec.type, payload))
    return cards


# Presenting and grading ------------------------------------------------------------------------
#
# `present` turns a stored card (its kind and the payload `derive_cards` made) into a `QuizCard`;
# `grade` checks a typed response for the auto-graded kinds (choice, typed, computed).
#
# Choice: options = the answer + the card's distractors (filled up to 3 from `distractor_pool`,
# never repeating the answer or an option), shuffled with the caller's rng. A response is the option
# number (1-based) or the option text (normalised); a number beyond the options may still be an
# option's text ("8" among options 8, 12, 16, 32).
#
# Typed answers, after `normalize_answer` on both sides (a response is right if it matches any
# `|`-separated alternative):
# - text: equal, or equal once all spaces are removed; otherwise a typo is accepted when the edit
#   distance (optimal string alignment: insertions, deletions, substitutions and swaps of two
#   neighbours, in code points after normalisation) is at most 1 for 5 to 7 characters and at most 2
#   for 8 or more (none below 5: `relu` is not a typo of `gelu`), and only if both have the same
#   digits in the same order (`conv1d` is not a typo of `conv2d`); the feedback names the typo.
#   An answer that is mostly Chinese (or Japanese, Korean) is compared on characters, spaces
#   ignored, full-width and half-width forms folded by NFKC: one wrong character is accepted from 4
#   characters, two from 8, none below 4.
# - numbers: when an alternative parses as a number or a list/tuple of numbers (`28.13`, `28.13 dB`,
#   `(4, 3, 2)`, `[0.2689, 0.7311]`, `inf`, `∞`, `nan`), the response must parse to as many numbers
#   (brackets and a leading `torch.Size(` are ignored, as is a trailing unit on either side), and each
#   must be within the tolerance of the expected one; typos are never accepted for numbers.
# Tolerance: `tolerance` on the card is absolute: |response - expected| <= tolerance. Without it, an
# expected number written without a decimal point (`8`, `-1000`, `1e-3`) must match exactly (`8.0`
# and `0.001` do); one written with d decimals accepts |response - expected| <=
# max(1e-3 * |expected|, 0.5 * 10^-d): relative 1e-3 or half a unit in the last digit shown,
# whichever is larger (for `1.4e-45` the unit is 0.1e-45). Computed cards use the same rule on their
# value: a float shown with `digits` has d = digits; otherwise an integral value (0.0, 3.0) must
# match exactly and any other float has d = the decimals of its shortest repr (round(x, 4) -> 4).

KINDS: tuple[str, ...] = ("definition", "reverse", "formula", "basic", "cloze", "choice", "typed", "computed")
AUTO_GRADED: frozenset[str] = frozenset({"choice", "typed", "computed"})
MIN_DISTRACTORS = 3
_RELATIVE_TOLERANCE = 1e-3
_MAX_RESPONSE_CHARS = 2_000


@dataclass(frozen=True)
class QuizCard:
    """A card ready to show: `prompt` first, then `answer` (and `note`); choice cards have `options`."""

    card_id: str  # "concept/key"
    concept_id: str
    kind: str  # definition | reverse | formula | basic | cloze | choice | typed | computed
    prompt: str  # plain text; Markdown allowed for definition answers
    answer: str
    options: tuple[str, ...] = ()  # choice: the shuffled options (the prompt is the question alone)
    correct_option: int | None = None  # choice: index into options
    auto_graded: bool = False  # choice, typed, computed
    expected: tuple[str, ...] = ()  # typed/computed: accepted answers (alternatives)
    tolerance: float | None = None  # absolute numeric tolerance; None: the default rule above
    note: str | None = None  # shown after answering
    latex: str | None = None  # formula cards: the formula, for a front end that can typeset it


@dataclass(frozen=True)
class Grade:
    correct: bool
    proposed_rating: int  # 1 (Again) if wrong, 3 (Good) if right
    feedback: str


class CardUnavailable(KbError):
    """The card cannot be shown now (a computed card whose snippet has no passing run yet)."""


def present(
    *,
    card_id: str,
    kind: str,
    payload: dict,
    concept: dict,
    rng: random.Random,
    distractor_pool: Sequence[str] = (),
    computed_values: dict | None = None,
    language: str = "both",
) -> QuizCard:
    """The card `card_id` (`concept/key`) as shown in a quiz; `payload` is its `DerivedCard.payload`.

    `language` (en, zh or both) picks the titles, summaries and definition a concept's own cards
    show; a text missing in that language falls back to the other."""
    concept_id = str(concept.get("id") or card_id.partition("/")[0])

    def shown(value: object, sep: str = "\n\n") -> str:
        return localized(value, language, sep)

    note = shown(payload.get("note")) or None
    base: dict[str, Any] = {"card_id": card_id, "concept_id": concept_id, "kind": kind, "note": note}
    if kind == "definition":
        title = payload.get("title") or concept.get("title") or {}
        summary = payload.get("summary") or concept.get("summary") or {}
        definition = {
            "en": str(payload.get("definition") or concept.get("definition") or ""),
            "zh": str(concept.get("definition_zh") or ""),
        }
        parts = [localized(summary, language, "\n\n"), localized(definition, language, "\n\n")]
        return QuizCard(
            prompt=localized(title, language, " / "), answer="\n\n".join(p for p in parts if p.strip()), **base
        )
    if kind == "reverse":
        title = payload.get("title") or concept.get("title") or {}
        summary = payload.get("summary") or concept.get("summary") or {}
        prompt = _mask_names(localized(summary, language, "\n\n"), _names(title, concept.get("aliases") or ()))
        return QuizCard(prompt=prompt, answer=localized(title, language, " / "), **base)
    if kind == "formula":
        return QuizCard(
            prompt=_formula_prompt(payload, concept, language),
            answer=_formula_answer(payload, language),
            latex=str(payload.get("latex") or "") or None,
            **base,
        )
    if kind == "basic":
        return QuizCard(prompt=shown(payload["front"]), answer=shown(payload["back"]), **base)
    if kind == "cloze":
        number = int(payload.get("cloze", 1))
        text = payload["text"]
        sides = [cloze_sides(side, number) for side in _in_language(text, language)]
        return QuizCard(prompt="\n\n".join(p for p, _ in sides), answer="\n\n".join(a for _, a in sides), **base)
    if kind == "choice":
        return _present_choice(payload, base, rng, distractor_pool, language)
    if kind == "typed":
        # Either language's answer is right whatever the language shown; the shown one comes first.
        alternatives = tuple(
            dict.fromkeys(
                a for side in _in_language(payload["answer"], language, all_after=True) for a in _alternatives(side)
            )
        )
        answer = (
            alternatives[0]
            if len(alternatives) == 1
            else (f"{alternatives[0]} (also accepted: {', '.join(alternatives[1:])})")
        )
        tolerance = payload.get("tolerance")
        return QuizCard(
            prompt=shown(payload["question"]),
            answer=answer,
            auto_graded=True,
            expected=alternatives,
            tolerance=None if tolerance is None else float(tolerance),
            **base,
        )
    if kind == "computed":
        return _present_computed({**payload, "question": shown(payload["question"])}, base, computed_values)
    raise ValueError(f"unknown card kind {kind!r}")


def _in_language(value: object, language: str, *, all_after: bool = False) -> list[str]:
    """The sides of a text to show: the chosen language's (or both, English first); with
    `all_after`, the other language's follow (a typed answer accepts both)."""
    sides = both_languages(value)
    if len(sides) < 2 or language == "both":
        return sides
    chosen = sides[1] if language == "zh" else sides[0]
    other = sides[0] if language == "zh" else sides[1]
    return [chosen, other] if all_after else [chosen]


def grade(card: QuizCard, response: str) -> Grade | None:
    """Check a response to an auto-graded card; None for the kinds graded by the user."""
    if not card.auto_graded or card.kind not in AUTO_GRADED:
        return None
    response = "" if response is None else str(response)
    if len(response) > _MAX_RESPONSE_CHARS:
        response = response[:_MAX_RESPONSE_CHARS]
    if not response.strip():
        return _grade(False, f"no answer; the answer is {card.answer}")
    if card.kind == "choice":
        return _grade_choice(card, response)
    return _grade_typed(card.expected, card.tolerance, response)


_CJK_RANGES = (
    (0x1100, 0x11FF),
    (0x2E80, 0x2FDF),
    (0x3000, 0x303F),
    (0x3040, 0x30FF),
    (0x3100, 0x312F),
    (0x3130, 0x318F),
    (0x31A0, 0x31FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xA960, 0xA97F),
    (0xAC00, 0xD7AF),
    (0xF900, 0xFAFF),
    (0xFE30, 0xFE4F),
    (0x20000, 0x3134F),
)
# CJK punctuation that NFKC keeps: mapped to its ASCII counterpart.
_CJK_PUNCTUATION = str.maketrans(
    {
        "。": ".",
        "、": ",",
        "「": '"',
        "」": '"',
        "『": '"',
        "』": '"',
        "【": "[",
        "】": "]",
        "《": '"',
        "》": '"',
        "〈": '"',
        "〉": '"',
        "〔": "(",
        "〕": ")",
        "・": "·",
        "～": "~",
        "−": "-",
        "–": "-",
        "—": "-",
        "‘": "'",
        "’": "'",
        "“": '"',
        "”": '"',
        "«": '"',
        "»": '"',
        "´": "'",
        "`": "'",
    }
)
_EDGE_CHARS = " \"'.,;:!?"


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


def normalize_answer(text: str) -> str:
    """A typed answer in comparable form: NFKC (full-width ＡＢＣ１２３ and punctuation folded),
    casefolded, CJK punctuation and typographic quotes/dashes mapped to ASCII, whitespace collapsed
    (and removed next to CJK characters, so `归一化 指数函数` equals `归一化指数函数`), and quotes and
    sentence punctuation stripped from both ends."""
    text = unicodedata.normalize("NFKC", str(text)).casefold().translate(_CJK_PUNCTUATION)
    text = unicodedata.normalize("NFKC", text)  # casefold can produce new compatibility forms
    text = " ".join(text.split())
    if " " in text:
        chars = list(text)
        text = "".join(
            ch
            for i, ch in enumerate(chars)
            if not (ch == " " and 0 < i < len(chars) - 1 and (_is_cjk(chars[i - 1]) or _is_cjk(chars[i + 1])))
        )
    return text.strip(_EDGE_CHARS)


def cloze_sides(text: str, number: int) -> tuple[str, str]:
    """(prompt, answer) of cloze `number`: its deletions hidden as `[...]`/`[hint]`, then marked `[answer]`."""

    def front(m: re.Match) -> str:
        if int(m.group(1)) != number:
            return m.group(2)
        hint = m.group(3)
        return f"[{hint}]" if hint is not None and hint.strip() else "[...]"

    def back(m: re.Match) -> str:
        return f"[{m.group(2)}]" if int(m.group(1)) == number else m.group(2)

    return CLOZE_RE.sub(front, text), CLOZE_RE.sub(back, text)


# present helpers -------------------------------------------------------------------------------


def _names(title, aliases) -> list[str]:
    """The concept's names, to hide in its summary on the reverse card."""
    names: set[str] = set()
    values = [title] if isinstance(title, str) else [title.get("en") or "", title.get("zh") or ""]
    for value in [*values, *aliases]:
        value = str(value).strip()
        names.add(value)
        # "Softmax 函数（归一化指数函数）": its parts are names too.
        names.update(p.strip() for p in re.split(r"[()（）/／,，]", value))
    return sorted((n for n in names if len(n) >= 2), key=len, reverse=True)


def _mask_names(text: str, names: list[str]) -> str:
    for name in names:
        escaped = re.escape(name)
        if name.isascii():
            escaped = rf"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])"
        text = re.sub(escaped, "[...]", text, flags=re.IGNORECASE)
    return text


def _formula_prompt(payload: dict, concept: dict, language: str = "both") -> str:
    name = localized(payload.get("name"), language).strip() or "Formula"
    title = concept.get("title") or {}
    title_en = str(title.get("en") or "").strip() if isinstance(title, dict) else str(title)
    if title_en and title_en.casefold() not in name.casefold():
        name = f"{title_en}: {name}"
    return name if name.endswith("?") else f"{name}?"


def _formula_answer(payload: dict, language: str = "both") -> str:
    text = tex_to_text(str(payload.get("latex") or ""))
    where = payload.get("where") or {}
    if where:
        lines = [f"  {tex_to_text(str(symbol))}: {localized(meaning, language)}" for symbol, meaning in where.items()]
        text += "\n\nwhere:\n" + "\n".join(lines)
    return text


def _present_choice(
    payload: dict, base: dict, rng: random.Random, pool: Sequence[str], language: str = "both"
) -> QuizCard:
    answer = localized(payload["answer"], language).strip()
    seen = {normalize_answer(answer)}
    distractors: list[str] = []
    for item in payload.get("distractors") or ():
        item = localized(item, language).strip()
        key = normalize_answer(item)
        if item and key not in seen:
            seen.add(key)
            distractors.append(item)
    if len(distractors) < MIN_DISTRACTORS:
        candidates: list[str] = []
        for item in pool:
            item = str(item).strip()
            key = normalize_answer(item)
            if item and key not in seen:
                seen.add(key)
                candidates.append(item)
        wanted = min(MIN_DISTRACTORS - len(distractors), len(candidates))
        distractors += rng.sample(candidates, wanted)
    if not distractors:
        raise CardUnavailable("this choice card has no distractors, and none could be drawn from its category")
    options = [answer, *distractors]
    rng.shuffle(options)
    correct = options.index(answer)
    return QuizCard(
        prompt=localized(payload["question"], language, "\n\n"),
        answer=f"{correct + 1}. {answer}",
        options=tuple(options),
        correct_option=correct,
        auto_graded=True,
        **base,
    )


def _present_computed(payload: dict, base: dict, computed_values: dict | None) -> QuizCard:
    expression = str(payload["answer"])
    entry = (computed_values or {}).get(expression)
    if entry is None:
        raise CardUnavailable(f"run `kb verify {base['concept_id']}` first: this computed card needs a passing run")
    if isinstance(entry, dict) and "value" in entry:
        value, text = entry["value"], entry.get("text")
    else:
        value, text = entry, None
    digits = payload.get("digits")
    expected = _canonical(value, digits)
    if digits is not None and _has_float(value):
        shown = expected
    elif isinstance(value, str):
        shown = value
    elif text is not None:
        shown = str(text)
    else:
        shown = expected
    return QuizCard(prompt=str(payload["question"]), answer=shown, auto_graded=True, expected=(expected,), **base)


def _has_float(value) -> bool:
    if isinstance(value, float):
        return True
    return isinstance(value, (list, tuple)) and any(_has_float(v) for v in value)


def _canonical(value, digits: int | None) -> str:
    """A computed value as the text it is graded against (see the tolerance rule above)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if digits is not None and math.isfinite(value):
            return f"{round(value, digits):.{digits}f}"
        if math.isfinite(value) and value == int(value) and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_canonical(v, digits) for v in value) + "]"
    if value is None:
        return "None"
    return str(value)


def _alternatives(answer: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in answer.split("|") if p.strip())
    return parts or (answer.strip(),)


# grading helpers -------------------------------------------------------------------------------


def _grade(correct: bool, feedback: str) -> Grade:
    return Grade(correct=correct, proposed_rating=3 if correct else 1, feedback=feedback)


def _grade_choice(card: QuizCard, response: str) -> Grade:
    text = unicodedata.normalize("NFKC", response).strip().strip(_EDGE_CHARS + "()")
    right = (
        f"{(card.correct_option or 0) + 1}. {card.options[card.correct_option or 0]}" if card.options else card.answer
    )
    chosen: int | None = None
    number = int(text) if text.isdigit() and text.isascii() and len(text) < 6 else None
    if number is not None and 1 <= number <= len(card.options):
        chosen = number - 1  # an option number wins over an option whose text is that number
    else:
        key = normalize_answer(response)
        for i, option in enumerate(card.options):
            if normalize_answer(option) == key:
                chosen = i
                break
    if chosen is None:
        if number is not None:
            return _grade(False, f"there is no option {number}; the answer is {right}")
        return _grade(False, f"{response.strip()!r} is not one of the options; the answer is {right}")
    if chosen == card.correct_option:
        return _grade(True, "correct")
    return _grade(False, f"wrong: you chose {chosen + 1}. {card.options[chosen]}; the answer is {right}")


_NUMBER = r"[+-]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?|[+-]?(?:(?:inf(?:inity)?|nan)(?![a-z])|∞)"
_NUMBER_RE = re.compile(rf"\s*({_NUMBER})\s*((?:[^\W\d_]|[%°µ])[^\d,;]*)?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class _Number:
    value: float
    text: str
    integer: bool  # written without a decimal point (8, 1e-3): compared exactly by default
    decimals: int  # decimals shown in the mantissa
    exponent: int


def _parse_number(token: str) -> _Number | None:
    m = _NUMBER_RE.fullmatch(token)
    if m is None:
        return None
    text = m.group(1)
    lowered = text.lower().replace("∞", "inf").replace("_", "")
    try:
        value = float(lowered)
    except ValueError:
        return None
    mantissa, _, exponent = lowered.lstrip("+-").partition("e")
    decimals = len(mantissa.partition(".")[2]) if "." in mantissa else 0
    is_integer = math.isfinite(value) and "." not in mantissa  # 8, -1000, 1e-3: exact
    try:
        exp = int(exponent) if exponent else 0
    except ValueError:
        exp = 0
    return _Number(value, text, is_integer, decimals, exp)


def _parse_numbers(text: str) -> list[_Number] | None:
    """A number, or a list/tuple of numbers, in `text`; None if it is not one."""
    text = unicodedata.normalize("NFKC", text).translate(_CJK_PUNCTUATION).strip().strip("\"'`")
    if not text:
        return None
    single = _parse_number(text)
    if single is not None:
        return [single]
    if not re.search(r"\d|inf|nan|∞", text, re.IGNORECASE):
        return None
    flat = re.sub(r"[()\[\]{}]", " ", text).strip()
    # "torch.Size([4, 3, 2])", "array([1, 2])": a leading name is not part of the numbers.
    flat = re.sub(r"^[A-Za-z_][\w.]*\s+(?=[-+.\d])", "", flat) if re.match(r"^[A-Za-z_][\w.]*[(\[]", text) else flat
    tokens = [t for t in re.split(r"[,;]", flat)] if re.search(r"[,;]", flat) else flat.split()
    tokens = [t.strip() for t in tokens]
    if tokens and not tokens[-1]:
        tokens.pop()  # a trailing comma: (4,)
    if not tokens or any(not t for t in tokens):
        return None
    numbers = [_parse_number(t) for t in tokens]
    if any(n is None for n in numbers):
        return None
    return numbers  # type: ignore[return-value]


# 135,266,304 / 135 266 304 / 135_266_304 / 135'266'304: one number with thousands separators.
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:([,\u2009\u202f _'])\d{3})(?:\1\d{3})*(?:\.\d+)?")
# 1x16x16x16 / 1×16×16×16 / (2 * 3): a shape written as a product of sizes.
_PRODUCT_RE = re.compile(r"[(\[]?\s*\d+(?:\s*[x×✕*]\s*\d+)+\s*[)\]]?", re.IGNORECASE)


def _readings(text: str) -> list[list[_Number]]:
    """Every way `text` can be read as numbers (a list per reading), the usual one first."""
    readings = []
    usual = _parse_numbers(text)
    if usual is not None:
        readings.append(usual)
    cleaned = unicodedata.normalize("NFKC", text).strip().strip("\"'`")
    if _THOUSANDS_RE.fullmatch(cleaned):
        number = _parse_number(re.sub(r"[,\u2009\u202f _']", "", cleaned))
        if number is not None:
            readings.append([number])
    if _PRODUCT_RE.fullmatch(cleaned):
        sizes = [_parse_number(n) for n in re.findall(r"\d+", cleaned)]
        if all(n is not None for n in sizes):
            readings.append(sizes)  # type: ignore[arg-type]
    return readings


def _default_tolerance(expected: _Number) -> float:
    if expected.integer:
        return 0.0
    half_unit = 0.5 * 10.0 ** (expected.exponent - expected.decimals)
    return max(_RELATIVE_TOLERANCE * abs(expected.value), half_unit)


def _numbers_close(expected: _Number, got: _Number, tolerance: float | None) -> bool:
    e, g = expected.value, got.value
    if math.isnan(e) or math.isnan(g):
        return math.isnan(e) and math.isnan(g)
    if math.isinf(e) or math.isinf(g):
        return e == g
    allowed = _default_tolerance(expected) if tolerance is None else float(tolerance)
    slack = 1e-9 * max(abs(e), abs(g))  # float noise in the subtraction itself (none around 0)
    return abs(g - e) <= allowed + slack


def _format_difference(expected: _Number, got: _Number) -> str:
    e, g = expected.value, got.value
    if not (math.isfinite(e) and math.isfinite(g)):
        return ""
    diff = g - e
    if diff == 0:
        return "+0"
    return f"{diff:+.3g}"


def _show_numbers(numbers: list[_Number]) -> str:
    if len(numbers) == 1:
        return numbers[0].text
    return "[" + ", ".join(n.text for n in numbers) + "]"


def _grade_numeric(
    expected_text: str, expected: list[_Number], tolerance: float | None, response: str
) -> tuple[bool, str, float]:
    """(correct, feedback, badness) of a response to a numeric alternative."""
    readings = _readings(response)
    # "1,234" is one number or two: the reading with as many numbers as the answer is meant.
    got = next((r for r in readings if len(r) == len(expected)), readings[0] if readings else None)
    shown = expected_text.strip()
    if got is None:
        return False, f"expected {shown}, you wrote {response.strip()!r} (not a number)", math.inf
    if len(got) != len(expected):
        return (
            False,
            f"expected {len(expected)} number{'s' * (len(expected) != 1)} ({shown}), "
            f"you wrote {len(got)} ({_show_numbers(got)})",
            1e300,
        )
    close = [_numbers_close(e, g, tolerance) for e, g in zip(expected, got)]
    diffs = [_format_difference(e, g) for e, g in zip(expected, got)]
    exact = all(d in ("", "+0") for d in diffs)
    badness = sum(
        abs(g.value - e.value) for e, g in zip(expected, got) if math.isfinite(g.value) and math.isfinite(e.value)
    )
    if all(close):
        if exact:
            return True, "correct", 0.0
        return True, f"correct (expected {shown}, you wrote {_show_numbers(got)}; off by {', '.join(diffs)})", badness
    off = ", ".join(d or "?" for d in diffs)
    return False, f"expected {shown}, you wrote {_show_numbers(got)} (off by {off})", badness


def _digits(text: str) -> list[str]:
    return re.findall(r"\d+", text)


def _unbracket(text: str) -> str:
    return re.sub(r"[\[\]()'\"\s]", "", text)


def _typo_allowance(expected: str) -> int:
    if _mostly_cjk(expected):
        # A Chinese character carries a word's worth: one wrong character is allowed from 4
        # characters (梯度消失 / 梯度消逝), two from 8; below 4 none (卷积 is not 卷集).
        n = len(expected.replace(" ", ""))
        return 0 if n < 4 else 1 if n < 8 else 2
    n = len(expected)
    if n < 5:  # relu/gelu, adam/adaw: short terms one edit apart are usually different terms
        return 0
    if n <= 7:
        return 1
    return 2


def _mostly_cjk(text: str) -> bool:
    """At least half of the non-space characters are CJK ideographs (or kana, hangul)."""
    letters = [ch for ch in text if not ch.isspace()]
    cjk = sum(1 for ch in letters if _is_cjk(ch))
    return bool(letters) and 2 * cjk >= len(letters)


def _grade_text(expected_text: str, response: str) -> tuple[bool, str, float]:
    key, got = normalize_answer(expected_text), normalize_answer(response)
    if key == got or key.replace(" ", "") == got.replace(" ", ""):
        return True, "correct", 0.0
    if key[:1] in "[(" and _unbracket(key) == _unbracket(got):  # a computed list of strings
        return True, "correct", 0.0
    from rapidfuzz.distance import OSA

    if _mostly_cjk(key):  # Chinese is graded on characters: spaces are no part of it
        key, got = key.replace(" ", ""), got.replace(" ", "")
    distance = OSA.distance(key, got)
    if distance <= _typo_allowance(key) and _digits(key) == _digits(got):
        return True, f"correct (typo: you wrote {response.strip()!r}, expected {expected_text.strip()!r})", distance
    return False, f"expected {expected_text.strip()!r}, you wrote {response.strip()!r}", 1e6 + distance


def _grade_typed(expected: tuple[str, ...], tolerance: float | None, response: str) -> Grade:
    results: list[tuple[bool, str, float, int]] = []
    for order, alternative in enumerate(expected):
        numbers = _parse_numbers(alternative)
        if numbers is not None:
            ok, feedback, badness = _grade_numeric(alternative, numbers, tolerance, response)
            if not ok and not _readings(response):
                # A numeric alternative may still be matched as text ("infinity" for "inf").
                text_ok, text_feedback, _ = _grade_text(alternative, response)
                if text_ok and text_feedback == "correct":
                    ok, feedback, badness = True, "correct", 0.0
        else:
            ok, feedback, badness = _grade_text(alternative, response)
        results.append((ok, feedback, badness, order))
    right = [r for r in results if r[0]]
    if right:
        best = min(right, key=lambda r: (r[2], r[3]))
        return _grade(True, best[1])
    best = min(results, key=lambda r: (r[2], r[3]))
    feedback = best[1]
    if len(expected) > 1:
        feedback += f"; accepted: {' | '.join(expected)}"
    return _grade(False, feedback)
