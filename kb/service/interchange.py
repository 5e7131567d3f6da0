"""Moving concepts in and out of kb: Anki packages, JSON, Markdown, YAML decks."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from kb.interop.anki import AnkiExport
    from kb.service import KnowledgeBase

from kb.service.base import package_version
from kb.service.decks import DeckError


@contextmanager
def staged_deck(parent: Path, name: str) -> Iterator[Path]:
    """A new hidden directory under `parent` to write a deck into, removed afterwards unless it was
    renamed into place. Hidden directories are never loaded as decks, so a deck appears whole, in
    one rename, or not at all."""
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-new-", dir=parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def json_schema() -> dict:
    from kb.schema import json_schema as build

    return build()


def _export_rows(kb: KnowledgeBase, category: str | None) -> list[dict]:
    """Synced active concepts (all, or one category's) with their cards and runs."""
    from kb.interop import InteropError
    from kb.schema import CATEGORIES
    from kb.store.queries import export_rows

    if category is not None and category not in CATEGORIES:
        raise InteropError(f"--category must be one of {', '.join(CATEGORIES)}")
    kb.sync()
    return export_rows(kb.engine, category=category)


def export_anki(kb: KnowledgeBase, out: Path, *, deck: str = "kb", category: str | None = None) -> AnkiExport:
    """Write the cards as an Anki package; returns a kb.interop.anki.AnkiExport."""
    from kb.interop.anki import export_anki as write

    return write(_export_rows(kb, category), out, deck=deck)


def export_json(kb: KnowledgeBase, out: Path, *, category: str | None = None) -> int:
    """Write every concept with its cards and last run as JSON; returns the number of concepts."""
    from kb.interop.json_export import export_json as write
    from kb.store.engine import SCHEMA_VERSION

    version = package_version("mlkb")
    return write(_export_rows(kb, category), out, schema_version=SCHEMA_VERSION, kb_version=version)


def export_markdown(kb: KnowledgeBase, out_dir: Path, *, category: str | None = None) -> dict[str, int]:
    """Write one Markdown page per concept and an index per category under out_dir."""
    from kb.interop.markdown_export import export_markdown as write

    return write(_export_rows(kb, category), out_dir)


def export_html(kb: KnowledgeBase, out_dir: Path, *, category: str | None = None) -> dict[str, int]:
    """Write a static HTML site (formulas as MathML, no JavaScript) under out_dir."""
    from kb.interop.html_export import export_html as write

    return write(_export_rows(kb, category), out_dir)


@dataclass(frozen=True)
class ImportOutcome:
    """What `kb import` did: the new deck's directory, the concepts written, the notes skipped."""

    deck: Path
    concepts: list[str]
    skipped: list[str]


@dataclass(frozen=True)
class DeckImportOutcome:
    """What `kb import` of a YAML deck did."""

    name: str
    deck: Path
    updated: bool  # an existing deck was replaced by this version
    concepts: int
    snippets: int
    untrusted: int  # snippets that will not run until `kb trust` (all of them on a first import)
    added: list[str]
    changed: list[str]
    retired: list[str]
    untrusted_again: list[str]  # snippets trusted before, edited in this version
    ignored: list[str]  # files that are not YAML


class DeckImportError(DeckError):
    """An import refused as a whole; `errors` are every path:line:col problem found."""

    def __init__(self, message: str, errors: list | None = None):
        super().__init__(message)
        self.errors = errors or []


def import_deck(kb: KnowledgeBase, source: Path, *, name: str | None = None, update: bool = False) -> DeckImportOutcome:
    """Import a folder or .zip of concept files as the untrusted deck $KB_HOME/decks/<name>, all or nothing.

    Everything is read and validated first (syntax, schema, ids unique in the deck and across the
    other decks, references); on any error nothing is written and every error is reported. The deck
    then appears in one rename and is synced in one transaction; if the sync fails the rename is
    undone. With `update`, an existing deck of that name is replaced the same way: reviews stay with
    their concept ids, concepts gone from the new version are retired (their reviews kept), and a
    snippet edited since `kb trust` is untrusted again (trust is by hash).
    """
    import shutil
    import tempfile

    from kb.interop.anki_import import slugify
    from kb.interop.yaml_deck import read_deck_source
    from kb.loader import LoadError, check_parsed, parse_bytes
    from kb.store.queries import concept_owners, snippet_sources

    if not source.exists():
        raise DeckError(f"{source}: no such file or folder")
    if name is None:
        deck_name = slugify(source.stem if source.is_file() else source.resolve().name)
        if not deck_name:
            raise DeckError(
                f"cannot make a deck name from {source.name!r} (names are lowercase ASCII letters, "
                "digits and '-'); pass --name NAME"
            )
    elif not name or slugify(name) != name:
        raise DeckError(f"--name {name!r}: a deck name is lowercase letters, digits and '-'")
    else:
        deck_name = name
    target = kb.settings.imported_decks_dir / deck_name
    # `kb trust NAME` finds decks by name, so an import may not take the name of another deck.
    others = [d for d in kb.settings.decks() if d.name == deck_name and d.path.resolve() != target.resolve()]
    if others:
        raise DeckError(f"the name {deck_name!r} is taken by the deck at {others[0].path}; pass --name NAME")
    if target.exists() and not update:
        raise DeckError(
            f"a deck named {deck_name!r} is already imported ({target}); pass --update to replace it "
            f"with this version (reviews are kept), or --name to import it under another name"
        )
    if update and not target.is_dir():
        raise DeckError(f"--update: there is no imported deck named {deck_name!r} to update")
    if target.exists() and source.resolve() == target.resolve():
        raise DeckError(f"{source} is the deck itself; kb already loads it")

    read = read_deck_source(source)
    errors = list(read.errors)
    seen: dict[str, str] = {}
    for f in read.files:
        key = str(f.relpath).casefold()  # two names that one case-insensitive disk would merge
        if key in seen:
            errors.append(LoadError(f.shown, 1, 1, f"the same file name as {seen[key]}"))
        seen[key] = f.shown
    if not read.files and not errors:
        raise DeckError(f"{source}: no .yaml or .yml file to import")

    kb.sync()
    owners = {cid: where for cid, where in concept_owners(kb.engine).items() if where[0] != str(target)}
    parsed = [parse_bytes(Path(f.shown), f.data) for f in read.files]
    report = check_parsed(parsed, extra_known_ids=set(owners))
    errors.extend(report.errors)
    clashing_decks = set()
    for item in parsed:
        if item.concept is not None and item.concept.id in owners:
            deck_path, file = owners[item.concept.id]
            clashing_decks.add(deck_path)
            errors.append(
                LoadError(
                    str(item.path),
                    *item.id_position,
                    f"the id '{item.concept.id}' is already used by the deck {kb._deck_name(deck_path)} "
                    f"({file}); ids are unique across decks",
                )
            )
    if errors:
        errors = sorted(set(errors))
        message = f"{source}: {len(errors)} error(s); nothing was imported"
        imported = {str(p) for p in kb.settings.imported_decks()}
        if len(clashing_decks) == 1 and clashing_decks <= imported:
            # Every clash is with one imported deck: most likely a new version of it.
            other = kb._deck_name(next(iter(clashing_decks)))
            message += f" (if this is a new version of the deck {other}: kb import {source} --name {other} --update)"
        raise DeckImportError(message, errors)

    before = {s.concept_id: s for s in snippet_sources(kb.engine)} if update else {}
    previous = None
    with staged_deck(kb.settings.imported_decks_dir, deck_name) as staging:
        for f in read.files:
            dest = staging.joinpath(*f.relpath.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(f.data)
        if update:
            previous = Path(tempfile.mkdtemp(prefix=f".{deck_name}-old-", dir=kb.settings.imported_decks_dir))
            previous.rmdir()
            target.rename(previous)
        try:
            staging.rename(target)
            sync = kb.sync()
        except BaseException:
            if not staging.exists():
                target.rename(staging)  # back as it was: the database transaction rolled back too
            if previous is not None:
                previous.rename(target)
                previous = None
            raise
        finally:
            if previous is not None:
                shutil.rmtree(previous, ignore_errors=True)

    ids = {item.concept.id for item in parsed if item.concept is not None}
    after = {s.concept_id: s for s in snippet_sources(kb.engine, sorted(ids))}
    untrusted_again = sorted(
        cid
        for cid, src in after.items()
        if cid in before
        and before[cid].trusted_hash is not None
        and before[cid].trusted_hash != src.code_hash
        and before[cid].trusted_hash == before[cid].code_hash
    )
    return DeckImportOutcome(
        deck_name,
        target,
        update,
        len(ids),
        len(after),
        sum(s.trusted_hash != s.code_hash for s in after.values()),
        added=sorted(i for i in sync.added if i in ids),
        changed=sorted(i for i in sync.updated if i in ids),
        retired=sorted(sync.retired),
        untrusted_again=untrusted_again,
        ignored=read.ignored,
    )


def import_anki(
    kb: KnowledgeBase, package: Path, *, name: str | None = None, on_progress: Callable[[str], None] | None = None
) -> ImportOutcome:
    """Turn an .apkg's notes into a new untrusted deck under $KB_HOME/decks/<name>, all or nothing.

    `on_progress` is told each phase as it starts ("reading", "converting", "writing", "checking",
    "loading"); an import of the largest package kb takes (20,000 notes) lasts seconds.
    """

    from kb.interop import InteropError
    from kb.interop.anki_import import (
        concepts_from_notes,
        read_package,
        slugify,
        write_deck,
    )

    def phase(text: str) -> None:
        if on_progress is not None:
            on_progress(text)

    deck_name = slugify(name if name is not None else package.stem) or "anki-import"
    target = kb.settings.imported_decks_dir / deck_name
    if target.exists():
        raise InteropError(f"the deck {target} already exists; remove it or choose another --name")
    phase("reading")
    notes = read_package(package)
    kb.sync()
    phase(f"converting {len(notes):,} notes")
    concepts, skipped = concepts_from_notes(notes, set(kb.concept_ids()))
    if not concepts:
        raise InteropError(
            f"{package}: no Basic or Cloze note to import" + (f" ({len(skipped)} skipped)" if skipped else "")
        )
    with staged_deck(kb.settings.imported_decks_dir, deck_name) as staging:
        phase(f"writing {len(concepts):,} concept files")
        written = write_deck(concepts, staging)
        phase("checking them")
        report = kb.check(written)
        if not report.ok:
            first = report.errors[0]
            raise InteropError(f"the generated deck does not validate ({len(report.errors)} error(s)); first: {first}")
        staging.rename(target)
    phase("loading them")
    kb.sync()
    return ImportOutcome(target, [c["id"] for c in concepts], skipped)
