"""The YAML entry format: pydantic models of one concept file.

Classes: Bilingual, Formula, Snippet, Source, the card specs (BasicCard, ClozeCard, ChoiceCard,
TypedCard, ComputedCard) and Concept. Every model is strict (no type coercion) and forbids unknown
keys, so a typo in a user's note is an error at its line and column, never silently ignored.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from kb.bilingual import both_languages, localized  # noqa: E402,F401  (re-exported for the schema's users)
from kb.categories import CATEGORIES  # noqa: E402  (re-exported: kb.schema.CATEGORIES)

# Literal of a tuple is the Literal of its items: the one list stays in kb/categories.py.
Category = Literal[CATEGORIES]  # type: ignore[valid-type]

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
_SLUG_RE = re.compile(SLUG_PATTERN)
# C0 controls except \t \n \r, DEL, C1 controls, and lone surrogates: none of these belong in a
# note, and NUL or a lone surrogate would be truncated or refused by SQLite.
_BAD_CHARS_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# Bidi overrides and isolates can make an id look like another one.
_BIDI_RE = re.compile("[\u202a-\u202e\u2066-\u2069]")


def _clean_text(value: str) -> str:
    bad = _BAD_CHARS_RE.search(value)
    if bad:
        raise ValueError(f"contains the control character U+{ord(bad.group()):04X}")
    return value


def _clean_slug(value: str) -> str:
    value = unicodedata.normalize("NFC", value)
    if _BIDI_RE.search(value):
        raise ValueError("contains a bidirectional override character")
    if not _SLUG_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid id: use lowercase ASCII letters, digits and '-', starting with a letter or digit"
        )
    return value


def _strip_required(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or whitespace only")
    return value


# Text fields share one cleaning rule and an explicit length limit.
def _text(max_length: int) -> object:
    return Annotated[
        str,
        StringConstraints(max_length=max_length),
        AfterValidator(_clean_text),
        AfterValidator(_strip_required),
    ]


ShortText = _text(300)
MediumText = _text(4_000)
LongText = _text(40_000)
Slug = Annotated[str, StringConstraints(max_length=80), AfterValidator(_clean_slug)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Bilingual(_Model):
    """A text in English and Chinese; both are required."""

    en: ShortText  # type: ignore[valid-type]
    zh: ShortText  # type: ignore[valid-type]


class BilingualSummary(_Model):
    """A one- or two-sentence summary in English and Chinese."""

    en: MediumText  # type: ignore[valid-type]
    zh: MediumText  # type: ignore[valid-type]


# Every other text a user reads (formula names and symbols, pitfalls, every card field) is a plain
# string or the same text in both languages, `{en: ..., zh: ...}`; a card keeps one id and one
# history whatever language it is shown in.
ShortTextOrBilingual = Union[ShortText, Bilingual]  # type: ignore[valid-type]
MediumTextOrBilingual = Union[MediumText, BilingualSummary]  # type: ignore[valid-type]


class Formula(_Model):
    """A named formula in LaTeX, with the meaning of each symbol."""

    name: ShortTextOrBilingual
    latex: Annotated[
        str, StringConstraints(max_length=4_000), AfterValidator(_clean_text), AfterValidator(_strip_required)
    ]
    where: dict[Annotated[str, StringConstraints(max_length=200)], ShortTextOrBilingual] = Field(
        default_factory=dict, max_length=60
    )


def _all_devices() -> list[Literal["cpu", "cuda"]]:
    return ["cpu", "cuda"]


class Snippet(_Model):
    """Runnable Python that demonstrates the concept and asserts itself against an oracle."""

    code: LongText  # type: ignore[valid-type]
    requires: list[Literal["numpy", "torch"]] = Field(default_factory=list, max_length=2)
    devices: list[Literal["cpu", "cuda"]] = Field(default_factory=_all_devices, min_length=1, max_length=2)
    timeout_s: float | None = Field(default=None, gt=0, le=600)
    # How far computed values may differ between CPU and CUDA (relative; default 1e-4, float32's
    # last bits); an entry that needs more says why in a comment beside it.
    compare_rtol: float | None = Field(default=None, gt=0, le=1)


class Source(_Model):
    """A paper or official documentation page the entry relies on."""

    title: ShortText  # type: ignore[valid-type]
    url: Annotated[str, StringConstraints(max_length=2_000, pattern=r"^https?://\S+$")]


class _CardBase(_Model):
    id: Slug | None = None
    note: MediumTextOrBilingual | None = None


class BasicCard(_CardBase):
    """Question on the front, answer on the back."""

    type: Literal["basic"]
    front: MediumTextOrBilingual
    back: MediumTextOrBilingual


# An Anki-style deletion: {{c1::answer}} or {{c1::answer::hint}} (kb.quiz turns each number into a card).
CLOZE_RE = re.compile(r"\{\{c(\d+)::(.*?)(?:::(.*?))?\}\}", re.DOTALL)


class ClozeCard(_CardBase):
    """Text with Anki-style deletions {{c1::answer}} or {{c1::answer::hint}}; one card per number."""

    type: Literal["cloze"]
    text: MediumTextOrBilingual

    @field_validator("text")
    @classmethod
    def _has_a_deletion(cls, text: str | BilingualSummary) -> str | BilingualSummary:
        sides = both_languages(text)
        if not all(CLOZE_RE.search(side) for side in sides):
            raise ValueError("a cloze card needs at least one deletion, written {{c1::answer}}")
        numbers = [sorted({m.group(1) for m in CLOZE_RE.finditer(side)}) for side in sides]
        if len(numbers) == 2 and numbers[0] != numbers[1]:
            raise ValueError(
                f"the English and Chinese texts must have the same deletions: c{', c'.join(numbers[0])} "
                f"in English, c{', c'.join(numbers[1])} in Chinese"
            )
        return text


class ChoiceCard(_CardBase):
    """Multiple choice: the right answer plus distractors (drawn from the category when absent)."""

    type: Literal["choice"]
    question: MediumTextOrBilingual
    answer: ShortTextOrBilingual
    distractors: list[ShortTextOrBilingual] = Field(default_factory=list, max_length=10)


class TypedCard(_CardBase):
    """A short typed answer; `a|b` lists accepted alternatives; numbers match within `tolerance`."""

    type: Literal["typed"]
    question: MediumTextOrBilingual
    answer: ShortTextOrBilingual
    tolerance: float | None = Field(default=None, ge=0)


class ComputedCard(_CardBase):
    """The answer is a Python expression evaluated in the snippet's namespace after it passes."""

    type: Literal["computed"]
    question: MediumTextOrBilingual
    answer: Annotated[
        str, StringConstraints(max_length=500), AfterValidator(_clean_text), AfterValidator(_strip_required)
    ]
    digits: int | None = Field(default=None, ge=0, le=12)


CardSpec = Annotated[
    Union[BasicCard, ClozeCard, ChoiceCard, TypedCard, ComputedCard],
    Field(discriminator="type"),
]
CARD_TYPES: tuple[str, ...] = ("basic", "cloze", "choice", "typed", "computed")


class Concept(_Model):
    """One concept: a YAML file under content/<category>/<id>.yaml."""

    id: Slug
    title: Bilingual
    summary: BilingualSummary
    category: Category
    status: Literal["verified", "unverified"] = "verified"
    tags: list[Slug] = Field(default_factory=list, max_length=40)
    aliases: list[ShortText] = Field(default_factory=list, max_length=40)  # type: ignore[valid-type]
    definition: LongText  # type: ignore[valid-type]
    definition_zh: LongText | None = None  # type: ignore[valid-type]
    formulas: list[Formula] = Field(default_factory=list, max_length=40)
    snippet: Snippet | None = None
    cards: list[CardSpec] = Field(default_factory=list, max_length=100)
    related: list[Slug] = Field(default_factory=list, max_length=60)
    prerequisites: list[Slug] = Field(default_factory=list, max_length=60)
    previous_ids: list[Slug] = Field(default_factory=list, max_length=20)
    sources: list[Source] = Field(default_factory=list, max_length=40)
    pitfalls: list[MediumTextOrBilingual] = Field(default_factory=list, max_length=40)


# The allowed keys of each mapping, for "did you mean" suggestions on unknown fields.
FIELDS_BY_MODEL: dict[str, tuple[str, ...]] = {
    "concept": tuple(Concept.model_fields),
    "title": tuple(Bilingual.model_fields),
    "summary": tuple(BilingualSummary.model_fields),
    "formula": tuple(Formula.model_fields),
    "snippet": tuple(Snippet.model_fields),
    "source": tuple(Source.model_fields),
    "basic": tuple(BasicCard.model_fields),
    "cloze": tuple(ClozeCard.model_fields),
    "choice": tuple(ChoiceCard.model_fields),
    "typed": tuple(TypedCard.model_fields),
    "computed": tuple(ComputedCard.model_fields),
}


def json_schema() -> dict:
    """The JSON Schema of a concept file, for editors with a YAML language server."""
    schema = Concept.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/mlkb/kb/content/schema.json"
    return schema
