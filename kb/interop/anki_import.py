"""Anki Basic and Cloze notes from an .apkg as a new kb deck of YAML files (one concept per note).

Reads the package's SQLite collection directly (the `anki` library is only a test dependency):
`collection.anki21` or `collection.anki2` (schema 11, note types as JSON in `col.models`), or the
zstd-compressed `collection.anki21b` of newer Anki (schema 18) when `zstandard` is installed.
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from kb.interop import InteropError
from kb.interop.html_text import from_html
from kb.quiz import CLOZE_RE
from kb.schema import CATEGORIES
from kb.store.anki_collection import CollectionError, read_collection

MAX_TEXT = 4_000  # MediumText: card sides and summaries
MAX_DEFINITION = 40_000  # LongText
MAX_TITLE = 80
_BAD_CHARS_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class AnkiNoteIn:
    """One note read from a package: its note type's kind and its fields by name, in order."""

    guid: str
    notetype: str
    is_cloze: bool
    fields: tuple[tuple[str, str], ...]
    tags: tuple[str, ...]

    def field(self, name: str, position: int) -> str:
        """The field called `name`, else the one at `position`, else ''."""
        for key, value in self.fields:
            if key == name:
                return value
        return self.fields[position][1] if position < len(self.fields) else ""


MAX_COLLECTION_BYTES = 256 * 1024**2  # the collection unpacked; checked before and while extracting
_CHUNK = 1 << 20


def _copy_bounded(source, target, package: Path) -> None:
    """Copy a stream to a file, refusing more than MAX_COLLECTION_BYTES whatever the archive said."""
    copied = 0
    while chunk := source.read(_CHUNK):
        copied += len(chunk)
        if copied > MAX_COLLECTION_BYTES:
            raise InteropError(
                f"{package}: its collection unpacks to more than {MAX_COLLECTION_BYTES // 2**20} MiB, "
                "kb's limit for one import"
            )
        target.write(chunk)


def _extract_collection(archive: zipfile.ZipFile, target: Path, package: Path) -> None:
    """The package's collection database, written to `target` (streamed, never whole in memory)."""
    names = set(archive.namelist())
    member = next((n for n in ("collection.anki21b", "collection.anki21", "collection.anki2") if n in names), None)
    if member is None:
        raise InteropError(f"{package}: not an Anki package: it holds no collection")
    declared = archive.getinfo(member).file_size
    if member != "collection.anki21b" and declared > MAX_COLLECTION_BYTES:
        raise InteropError(
            f"{package}: its collection is {declared / 2**20:,.0f} MiB unpacked; kb imports at most "
            f"{MAX_COLLECTION_BYTES // 2**20} MiB at a time (export one Anki deck at a time)"
        )
    with archive.open(member) as raw, open(target, "wb") as out:
        if member == "collection.anki21b":
            try:
                import zstandard
            except ImportError:
                raise InteropError(
                    "this package uses the newer Anki format (collection.anki21b): export it from Anki "
                    "with 'Support older Anki versions' ticked, or `pip install zstandard`"
                ) from None
            _copy_bounded(zstandard.ZstdDecompressor().stream_reader(raw), out, package)
        else:
            _copy_bounded(raw, out, package)


def read_package(path: Path) -> list[AnkiNoteIn]:
    """The notes of an .apkg file, in creation order. InteropError, naming the file, for anything wrong."""
    with tempfile.TemporaryDirectory(prefix="kb-apkg-") as tmp:
        db_path = Path(tmp) / "collection.sqlite"
        try:
            with zipfile.ZipFile(path) as archive:
                _extract_collection(archive, db_path, path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError, ValueError) as exc:
            # RuntimeError: an encrypted member; ValueError and EOFError: a damaged stream (zstd, deflate).
            raise InteropError(f"{path}: not an Anki package, or a damaged one ({exc})") from None
        try:
            types, rows = read_collection(db_path)
        except CollectionError as exc:
            raise InteropError(f"{path}: the Anki collection in it is not valid: {exc}") from None
    notes = []
    for guid, mid, tags, flds in rows:
        name, is_cloze, names = types.get(mid, ("?", False, []))
        values = flds.split("\x1f")
        labels = names + [f"Field {i + 1}" for i in range(len(names), len(values))]
        notes.append(AnkiNoteIn(guid, name, is_cloze, tuple(zip(labels, values)), tuple(tags.split())))
    return notes


def slugify(text: str, *, max_length: int = 60) -> str:
    """A kb slug from any text: ASCII letters and digits joined by '-' ('' when none remain)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    return slug[:max_length].rstrip("-")


def _clean(text: str) -> str:
    return _BAD_CHARS_RE.sub("", text).strip()


def short_title(text: str) -> str:
    """The first line of a text, at most MAX_TITLE characters (cut at a word, with an ellipsis)."""
    line = " ".join(text.strip().split("\n", 1)[0].split())
    if len(line) <= MAX_TITLE:
        return line
    cut = line[: MAX_TITLE - 1]
    if " " in cut[MAX_TITLE // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "…"


def _unique(base: str, taken: set[str]) -> str:
    candidate, n = base, 2
    while candidate in taken:
        suffix = f"-{n}"
        candidate = base[: 80 - len(suffix)] + suffix
        n += 1
    taken.add(candidate)
    return candidate


def _category_and_tags(tags: tuple[str, ...]) -> tuple[str, list[str]]:
    """The first tag naming a kb category (its last '::' part) is the category; the rest become slugs."""
    category = None
    out: list[str] = []
    for tag in tags:
        last = tag.rsplit("::", 1)[-1].lower()
        if category is None and last in CATEGORIES:
            category = last
            continue
        slug = slugify(tag.replace("::", "-"), max_length=80)
        if slug and slug not in out:
            out.append(slug)
    return category or "fundamentals", out[:40]


def concept_from_note(note: AnkiNoteIn, taken: set[str]) -> dict | str:
    """A concept dict (schema field order) for one note, or the reason it is skipped."""
    extra = _clean(from_html(note.field("Back Extra" if note.is_cloze else "Extra", 1 if note.is_cloze else 2)))
    if note.is_cloze or CLOZE_RE.search(note.field("Text", 0)):
        text = _clean(from_html(note.field("Text", 0)))
        if not text:
            return "empty Text field"
        front = back = CLOZE_RE.sub(lambda m: m.group(2), text)
        card: dict = {"type": "cloze", "id": "card", "text": text}
    else:
        front, back = (_clean(from_html(note.field(n, i))) for n, i in (("Front", 0), ("Back", 1)))
        if not front or not back:
            return "empty front or back (media-only fields are not imported)"
        card = {"type": "basic", "id": "card", "front": front, "back": back}
    if extra:
        card["note"] = extra
    title = short_title(front)
    if max(len(front), len(extra), len(card.get("text", ""))) > MAX_TEXT or len(back) > MAX_DEFINITION:
        return f"{title!r}: a field is too long for a kb note"
    # A back too long for a card side still fits the definition, whose own card shows it.
    cards = [] if len(back) > MAX_TEXT else [card]
    category, tags = _category_and_tags(note.tags)
    concept_id = _unique(slugify(title) or f"note-{slugify(note.guid) or 'x'}", taken)
    return {
        "id": concept_id,
        "title": {"en": title, "zh": title},
        "summary": {"en": front, "zh": front},
        "category": category,
        "tags": tags,
        "definition": back,
        "cards": cards,
    }


def concepts_from_notes(notes: list[AnkiNoteIn], taken: set[str]) -> tuple[list[dict], list[str]]:
    """Concepts for the notes, with ids unique against `taken`; and 'guid: reason' for each skipped."""
    taken = set(taken)
    concepts, skipped = [], []
    for note in notes:
        made = concept_from_note(note, taken)
        if isinstance(made, str):
            skipped.append(f"{note.guid}: {made}")
        else:
            concepts.append(made)
    return concepts, skipped


_BaseDumper: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's emitter: 20,000 notes in seconds


class _Dumper(_BaseDumper):  # chosen at import time
    """Multi-line text as literal blocks (`|`), as a person would write it."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value and not any(line != line.rstrip() for line in value.split("\n")):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def concept_yaml(concept: dict) -> str:
    """The YAML file of one imported concept."""
    body = yaml.dump(
        concept, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1_000, default_flow_style=False
    )
    return "# Imported from Anki by `kb import`.\n" + body


def write_deck(concepts: list[dict], root: Path) -> list[Path]:
    """Write each concept to root/<category>/<id>.yaml; returns the paths."""
    paths = []
    for concept in concepts:
        path = root / concept["category"] / f"{concept['id']}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(concept_yaml(concept), encoding="utf-8")
        paths.append(path)
    return paths
