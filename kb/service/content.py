"""Concepts and their files: sync the decks, check files, search, show, and the user's own notes."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kb.errors import KbError
from kb.loader import CheckReport, check_files, find_yaml_files
from kb.service.base import ServiceBase

if TYPE_CHECKING:
    from kb.loader import SyncReport

    pass


@dataclass(frozen=True)
class SearchHit:
    id: str
    title_en: str
    title_zh: str
    category: str
    snippet_text: str

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "title": {"en": self.title_en, "zh": self.title_zh},
            "category": self.category,
            "snippet_text": self.snippet_text,
        }


class NoteError(KbError):
    """A note cannot be edited: not the user's own, or its file is gone. The message says which."""


NOTE_TEMPLATE = """\
# yaml-language-server: $schema={schema}
# A new concept. Every field is checked when you save; errors point at path:line:col.
id: {id}                      # lowercase letters, digits and '-'; unique across all decks
title:
  en: My concept
  zh: 我的概念
summary:
  en: One sentence that says what it is.
  zh: 一句话说明它是什么。
category: {category}          # fundamentals | training | layers | attention | generative | vision | image-processing | metrics | llm | software
tags: []
aliases: []
definition: |
  Explain the concept in your own words. Math: inline $x^2$ or display $$\\sum_i x_i$$.
formulas: []
#  - name: a formula
#    latex: 'y = W x + b'
#    where: {{y: output, W: weights, x: input, b: bias}}
cards:
  - type: basic
    id: first-card
    front: A question about it?
    back: Its answer.
related: []
prerequisites: []
sources: []
pitfalls: []
"""


class ContentUseCases(ServiceBase):
    """Decks on disk into the database, and concepts out of it."""

    def sync(self) -> SyncReport:
        from kb.store.ingest import sync_decks

        engine = self.engine  # first: an unwritable KB_HOME is reported as such, not as a failed mkdir
        self.settings.notes_dir.mkdir(parents=True, exist_ok=True)
        report = sync_decks(engine, self.settings.decks(), now=self.clock())
        missing = self.bundled_deck_problem()
        if missing is not None:
            from kb.loader import LoadError

            report.errors.insert(0, LoadError(str(self.settings.bundled_content), 1, 1, missing))
        return report

    def bundled_deck_problem(self) -> str | None:
        """Why the deck that ships with kb is not there (an incomplete installation), or None."""
        from kb.config import BUNDLED_CONTENT

        folder = self.settings.bundled_content
        if folder != BUNDLED_CONTENT:
            return None  # another bundled deck was chosen (KB_BUNDLED_CONTENT): it may be empty
        if folder.is_dir() and any(folder.glob("*/*.yaml")):
            return None
        return (
            "the bundled deck is missing from this installation of kb (no concept files here); reinstall it "
            "(`pip install --force-reinstall mlkb`, or from a checkout `pip install -e .`)"
        )

    def deck_files(self, problems: list | None = None) -> list[Path]:
        files = []
        for deck in self.settings.decks():
            if deck.path.is_dir():
                files.extend(find_yaml_files(deck.path, problems))
        return files

    def check(self, paths: list[Path] | None = None) -> CheckReport:
        """Validate files without touching the database. Given paths, ids of the decks count as known."""
        problems: list = []  # folders that could not be read, symbolic link loops
        if not paths:
            report = check_files(self.deck_files(problems))
            report.errors.extend(p.as_error() for p in problems)
            report.errors.sort()
            return report
        targets: list[Path] = []
        for path in paths:
            targets.extend(find_yaml_files(path, problems) if path.is_dir() else [path])
        from kb.loader import duplicate_id_at

        resolved = {p.resolve() for p in targets}
        others = check_files([p for p in self.deck_files() if p.resolve() not in resolved])
        known = {item.concept.id: item for item in others.parsed if item.concept is not None}
        report = check_files(targets, extra_known_ids=set(known))
        for item in report.parsed:
            declared = item.concept.id if item.concept is not None else item.declared_id
            if declared is not None and declared in known:
                other = known[declared]
                report.errors.append(
                    duplicate_id_at(str(item.path), item.id_position, declared, str(other.path), other.id_position)
                )
        report.errors.extend(p.as_error() for p in problems)
        report.errors.sort()
        return report

    def search(self, query: str, *, limit: int = 50) -> list[SearchHit]:
        from kb.store.queries import search

        return [
            SearchHit(r.id, r.title_en, r.title_zh, r.category, r.snippet_text)
            for r in search(self.engine, query, limit=limit)
        ]

    def concept_ids(self) -> list[str]:
        from kb.store.queries import all_concept_ids

        return all_concept_ids(self.engine)

    def list_concepts(self, category: str | None = None) -> list[dict]:
        """Active concepts (all, or one category's), in category order then by id."""
        from kb.store.queries import list_concepts

        concepts = [
            {"id": i, "title": {"en": en, "zh": zh}, "category": cat}
            for i, en, zh, cat in list_concepts(self.engine, category=category)
        ]
        if category is None:
            self._write_list_cache(concepts)
        return concepts

    def _write_list_cache(self, concepts: list[dict]) -> None:
        """Keep the full list where the TUI can show it before the store is even imported."""
        import json

        from kb.cache import list_cache_path

        path = list_cache_path(self.settings)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(concepts, ensure_ascii=False), encoding="utf-8")
            temporary.replace(path)
        except OSError:
            pass  # only a start-up speed-up: never worth an error

    def suggest_ids(self, concept_id: str) -> list[str]:
        return difflib.get_close_matches(concept_id, self.concept_ids(), n=3, cutoff=0.6)

    def show(self, concept_id: str) -> dict | None:
        """The concept as loaded (every schema field) plus its cards, last run and origin."""
        from kb.store.queries import cards_of, concept_data, last_run, titles_of

        stored = concept_data(self.engine, concept_id)
        if stored is None:
            return None
        out = dict(stored["data"])
        out["cards"] = cards_of(self.engine, concept_id)
        run = last_run(self.engine, concept_id)
        if run is not None:
            # A run of code that has since changed says nothing about the snippet shown now.
            run["current"] = run["code_hash"] == stored["snippet_hash"]
        out["last_run"] = run
        out["source_path"] = stored["source_path"]
        out["deck"] = self._deck_name(stored["deck_path"])
        out["snippet_line_offset"] = stored["snippet_line_offset"]
        out["retired"] = stored["retired"]
        # The titles of what it links to, so that a link reads as a title, not an id.
        out["link_titles"] = titles_of(
            self.engine, list(dict.fromkeys(out.get("prerequisites", []) + out.get("related", [])))
        )
        return out

    def is_own_note(self, concept: dict) -> bool:
        """Whether a concept (as `show` gives it) is a note of the user's notes deck."""
        notes = self.settings.notes_dir.resolve()
        return Path(concept["source_path"]).resolve().is_relative_to(notes)

    def note_source(self, concept_id: str) -> Path:
        """The file of one of the user's own notes, to edit; NoteError says why another cannot be."""
        concept = self.show(concept_id)
        if concept is None:
            raise NoteError(f"no concept {concept_id!r}")
        path = Path(concept["source_path"])
        if not self.is_own_note(concept):
            raise NoteError(
                f"only notes in your notes deck can be edited here; {concept_id} comes from the deck "
                f"{concept.get('deck', '?')} and is read-only in kb"
            )
        if concept.get("retired") or not path.is_file():
            raise NoteError(
                f"the file of {concept_id} is gone ({path}): it was deleted or moved, so the note is retired "
                "(its cards and reviews are kept); `a` writes a new one"
            )
        return path

    def note_template(self, concept_id: str = "my-concept", category: str = "fundamentals") -> str:
        """A new note's YAML, valid as it stands, with a comment for each field."""
        schema = self.settings.bundled_content / "schema.json"
        return NOTE_TEMPLATE.format(id=concept_id, category=category, schema=schema)

    def save_note(self, text: str, *, replace: Path | None = None) -> tuple[Path | None, str | None, list]:
        """Validate a note; if valid, write it to the notes deck and sync. Returns (path, id, errors).

        The draft is checked from `$KB_HOME/notes/.drafts/` (hidden, so never synced) against the
        ids of every deck; on success it lands in `notes/<category>/<id>.yaml` (or replaces `replace`).
        """
        import re

        drafts = self.settings.notes_dir / ".drafts"
        drafts.mkdir(parents=True, exist_ok=True)
        # The id and category only name the draft and the file in messages: read them with a bounded
        # pattern, never by loading the text (the loader checks it properly below).
        declared = dict(
            re.findall(
                r"^(id|category):[ \t]*['\"]?([a-z0-9][a-z0-9-]{0,79})['\"]?[ \t]*(?:#.*)?$", text[:100_000], re.M
            )
        )
        stem = declared.get("id", "draft")
        draft = drafts / f"{Path(stem).name or 'draft'}.yaml"
        draft.write_text(text, encoding="utf-8")
        report = self.check([draft])
        errors = report.errors
        if replace is not None:
            # Editing a note: its own id, still defined by the file being replaced, is not a duplicate.
            errors = [e for e in errors if not (e.message.startswith("duplicate id") and str(replace) in e.message)]
        # Errors name the file the user is editing (or the one a new note will be saved as), never the draft.
        category = declared.get("category")
        shown = replace or (
            self.settings.notes_dir / category / f"{stem}.yaml" if stem != "draft" and category else None
        )
        from kb.loader import LoadError

        errors = [
            LoadError(str(shown) if shown else "new note", e.line, e.col, e.message) if e.path == str(draft) else e
            for e in errors
        ]
        concept = report.parsed[0].concept if report.parsed else None
        if errors or concept is None:
            return None, None, errors
        target = replace or self.settings.notes_dir / concept.category / f"{concept.id}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".yaml.tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(target)  # atomic: a watcher never sees half a file
        draft.unlink(missing_ok=True)
        self.sync()
        return target, concept.id, []
