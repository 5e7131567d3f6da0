"""kb cards as an Anki package (.apkg), written with genanki.

One Anki note per kb card, except cloze: one Cloze note per kb cloze spec (Anki makes the card of
each number). A note's GUID derives from the kb card id, so exporting again updates the notes in
Anki instead of adding copies. Decks: `<deck>::<category>`.
"""

from __future__ import annotations

import hashlib
import html
import random
from dataclasses import dataclass, field
from pathlib import Path

from kb.bilingual import both_languages, localized
from kb.interop import InteropError
from kb.interop.html_text import latex_html, pygments_css, to_html
from kb.quiz import CardUnavailable, cloze_numbers, present

# Fixed model ids: Anki matches note types by id, so every export reuses the same three.
BASIC_MODEL_ID = 1_719_300_101
CLOZE_MODEL_ID = 1_719_300_102
TYPED_MODEL_ID = 1_719_300_103

_CSS = """\
.card { font-family: -apple-system, "Segoe UI", "Noto Sans", "PingFang SC", "Microsoft YaHei", sans-serif;
  font-size: 20px; text-align: left; color: black; background-color: white; }
.nightMode .card { color: #ddd; background-color: #222; }
.cloze { font-weight: bold; color: blue; }
.nightMode .cloze { color: lightblue; }
.kb-note, .kb-where { font-size: 16px; color: #666; }
.highlight pre { font-size: 15px; padding: 6px; overflow-x: auto; }
"""


@dataclass(frozen=True)
class AnkiNote:
    """One note to write: its model ('basic', 'cloze' or 'typed'), fields, deck and kb card id."""

    card_id: str
    model: str
    fields: tuple[str, ...]
    deck: str
    tags: tuple[str, ...]
    cards: int  # the number of Anki cards it makes

    @property
    def guid(self) -> str:
        import genanki

        # A cloze spec may be called `definition`: its id must not meet the concept's definition card.
        return genanki.guid_for("kb", self.card_id, *(["cloze"] if self.model == "cloze" else []))


@dataclass
class AnkiExport:
    """What an export wrote: notes, the Anki cards they make, decks, and the kb cards skipped."""

    notes: int = 0
    cards: int = 0
    decks: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # computed cards without a passing run

    def to_dict(self) -> dict:
        return {"notes": self.notes, "cards": self.cards, "decks": self.decks, "skipped": self.skipped}


def _models() -> dict[str, object]:
    import genanki

    css = _CSS + pygments_css()
    answer = "{{FrontSide}}\n\n<hr id=answer>\n\n{{Back}}{{#Extra}}<div class=kb-note>{{Extra}}</div>{{/Extra}}"
    basic = genanki.Model(
        BASIC_MODEL_ID,
        "kb Basic",
        fields=[{"name": "Front"}, {"name": "Back"}, {"name": "Extra"}],
        templates=[{"name": "Card 1", "qfmt": "{{Front}}", "afmt": answer}],
        css=css,
    )
    cloze = genanki.Model(
        CLOZE_MODEL_ID,
        "kb Cloze",
        model_type=genanki.Model.CLOZE,
        fields=[{"name": "Text"}, {"name": "Back Extra"}],
        templates=[
            {
                "name": "Cloze",
                "qfmt": "{{cloze:Text}}",
                "afmt": "{{cloze:Text}}{{#Back Extra}}<div class=kb-note>{{Back Extra}}</div>{{/Back Extra}}",
            }
        ],
        css=css,
    )
    typed = genanki.Model(
        TYPED_MODEL_ID,
        "kb Typed",
        fields=[{"name": "Front"}, {"name": "Back"}, {"name": "Extra"}],
        templates=[
            {
                "name": "Card 1",
                "qfmt": "{{Front}}\n\n{{type:Back}}",
                "afmt": "{{Front}}\n\n<hr id=answer>\n\n{{type:Back}}"
                "{{#Extra}}<div class=kb-note>{{Extra}}</div>{{/Extra}}",
            }
        ],
        css=css,
    )
    return {"basic": basic, "cloze": cloze, "typed": typed}


def _deck_id(name: str) -> int:
    """A stable deck id from its name (Anki also matches decks by name on import)."""
    return 1 << 40 | int.from_bytes(hashlib.blake2b(name.encode(), digest_size=5).digest(), "big")


def _tags(concept: dict) -> tuple[str, ...]:
    return tuple(dict.fromkeys([concept["category"], *concept.get("tags", [])]))


def _escape(text: str) -> str:
    return html.escape(str(text).strip(), quote=False).replace("\n", "<br>")


def _both(value: object, sep: str = "\n\n") -> str:
    """A kb text as an Anki note carries it: both languages, English first."""
    return localized(value, "both", sep)


def _note_html(card: dict) -> str:
    return to_html(_both(card["note"])) if card.get("note") else ""


def _formula_fields(card: dict, concept: dict) -> tuple[str, str]:
    """Front: the formula's name; back: the display formula and its symbols as inline math."""
    title = concept["title"]["en"]
    name = _both(card.get("name"), " / ") or "Formula"
    front = name if title.casefold() in name.casefold() else f"{title}: {name}"
    back = latex_html(card["latex"], display=True)
    where = card.get("where") or {}
    if where:
        items = "".join(
            f"<li>{latex_html(symbol, display=False)}: {to_html(_both(meaning, ' / '))}</li>"
            for symbol, meaning in where.items()
        )
        back += f"<div class=kb-where>where:<ul>{items}</ul></div>"
    return _escape(front), back


def _definition_back(concept: dict) -> str:
    summary = concept["summary"]
    parts = [_escape(summary["en"]), _escape(summary["zh"]), to_html(concept["definition"])]
    return "<br><br>".join(p for p in parts if p)


def note_for(card: dict, concept: dict, *, deck: str, pool: list[str], values: dict | None) -> AnkiNote | None:
    """The Anki note of one stored kb card; None when it cannot be shown (a computed card never run)."""
    kind, tags = card["type"], _tags(concept)
    card_id = card["id"]

    def note(model: str, *fields: str, cards: int = 1, cid: str = card_id) -> AnkiNote:
        return AnkiNote(cid, model, tuple(fields), deck, tags, cards)

    if kind == "definition":
        title = concept["title"]
        return note("basic", _escape(f"{title['en']} / {title['zh']}"), _definition_back(concept), "")
    if kind == "formula":
        return note("basic", *_formula_fields(card, concept), "")
    if kind == "basic":
        return note("basic", to_html(_both(card["front"])), to_html(_both(card["back"])), _note_html(card))
    if kind == "cloze":
        numbers = cloze_numbers(card["text"])
        spec_id = card_id[: -len(f"-c{card['cloze']}")]  # one note per spec: Anki makes a card per number
        # Both languages in one note: they have the same deletions, so Anki's cards stay one per number.
        return note("cloze", to_html(_both(card["text"])), _note_html(card), cards=max(1, len(numbers)), cid=spec_id)
    if kind == "typed":
        sides = both_languages(card["answer"])
        alternatives = list(dict.fromkeys(a.strip() for side in sides for a in side.split("|") if a.strip()))
        extra = _escape("also accepted: " + ", ".join(alternatives[1:])) if len(alternatives) > 1 else ""
        extra = "<br>".join(p for p in (extra, _note_html(card)) if p)
        return note("typed", to_html(_both(card["question"])), _escape(alternatives[0]), extra)
    # reverse, choice, computed: shown as the quiz shows them (masked summary, options, the value).
    rng = random.Random(card_id)  # the same option order on every export
    try:
        shown = present(
            card_id=card_id,
            kind=kind,
            payload=card,
            concept=concept,
            rng=rng,
            distractor_pool=pool,
            computed_values=values,
            language="both",
        )
    except CardUnavailable:
        if kind == "computed":
            return None
        return note("basic", to_html(_both(card["question"])), _escape(_both(card["answer"], " / ")), _note_html(card))
    front = to_html(shown.prompt)
    if shown.options:
        front += "<ol>" + "".join(f"<li>{_escape(o)}</li>" for o in shown.options) + "</ol>"
    return note("basic", front, _escape(shown.answer), _note_html(card))


def build_notes(rows: list[dict], *, deck: str) -> tuple[list[AnkiNote], list[str]]:
    """The notes of the exported concepts (rows of kb.store.queries.export_rows), and skipped card ids."""
    pools: dict[str, list[str]] = {}
    for row in rows:
        pools.setdefault(row["data"]["category"], []).append(row["data"]["title"]["en"])
    notes: list[AnkiNote] = []
    skipped: list[str] = []
    seen: set[tuple[str, str]] = set()
    for row in rows:
        concept = row["data"]
        pool = [t for t in pools[concept["category"]] if t != concept["title"]["en"]]
        for card in row["cards"]:
            made = note_for(
                card, concept, deck=f"{deck}::{concept['category']}", pool=pool, values=row.get("passing_values")
            )
            if made is None:
                skipped.append(card["id"])
            elif (made.model, made.card_id) not in seen:  # the other numbers of a cloze spec share its note
                seen.add((made.model, made.card_id))
                notes.append(made)
    return notes, skipped


def write_package(notes: list[AnkiNote], out: Path) -> list[str]:
    """Write the notes as an .apkg (atomically); returns the deck names."""
    import genanki

    models = _models()
    decks: dict[str, genanki.Deck] = {}
    for item in notes:
        if item.deck not in decks:
            decks[item.deck] = genanki.Deck(_deck_id(item.deck), item.deck)
        decks[item.deck].add_note(
            genanki.Note(model=models[item.model], fields=list(item.fields), tags=list(item.tags), guid=item.guid)
        )
    if not decks:
        raise InteropError("nothing to export (no concepts match)")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    # Notes are stamped now: Anki updates an existing note (same GUID) only from a newer one.
    genanki.Package(list(decks.values())).write_to_file(str(partial))
    partial.replace(out)
    return list(decks)


def export_anki(rows: list[dict], out: Path, *, deck: str = "kb") -> AnkiExport:
    """Write the rows' cards to `out` as an Anki package."""
    deck = deck.strip()
    if not deck or not all(part.strip() for part in deck.split("::")):
        raise InteropError(f"--deck {deck!r}: give a deck name (parts separated by '::' must not be empty)")
    notes, skipped = build_notes(rows, deck=deck)
    names = write_package(notes, out)
    return AnkiExport(notes=len(notes), cards=sum(n.cards for n in notes), decks=names, skipped=skipped)
