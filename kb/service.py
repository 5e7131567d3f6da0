"""The facade the CLI and the TUI call: one place for each use case (Anki's "Collection").

It returns plain dicts and dataclasses, never table rows, and opens the database lazily so that
`import kb.service` stays cheap.
"""

from __future__ import annotations

import difflib
import os
import platform
import sqlite3
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable

from kb.config import Settings, load_settings
from kb.loader import CheckReport, check_files, find_yaml_files


class DeckError(ValueError):
    """A deck command that cannot be done (unknown deck, invalid import); the message says why."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


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


def save_user_setting(settings: Settings, key: str, value: object | None) -> None:
    """Keep one user setting in $KB_HOME/settings.toml (checked first; SettingsError says why not)."""
    from kb.config import write_setting

    write_setting(settings.home, key, value)


def is_damaged_database(exc: BaseException | None) -> bool:
    """Whether an error raised by the service means the database file was found damaged in use."""
    from kb.store.errors import StoreCorruptError

    return isinstance(exc, StoreCorruptError)


class KnowledgeBase:
    """The knowledge base of one KB_HOME: its decks and its database."""

    def __init__(self, settings: Settings | None = None, *, clock: Callable[[], datetime] = utc_now):
        self.settings = settings or load_settings()
        self.clock = clock
        self._engine = None
        self._pool = None  # a warm worker for run_snippet, started on first use
        self.notices: list[str] = []  # things opening the database did that the user should hear of

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def engine(self):
        if self._engine is None:
            from kb.store.engine import open_engine  # sqlmodel costs ~0.4 s: only when needed

            self._engine = open_engine(self.settings.db_path, now=self.clock(), backup_day=self.study_day,
                                       on_notice=self.notices.append)
        return self._engine

    def recover_damaged(self) -> str:
        """After a StoreCorruptError: rebuild the file if only its search index is hurt, else move it
        aside (never deleting it). Returns the line to show; the next use opens afresh."""
        from kb.store.backup import default_backup_dir
        from kb.store.repair import recover

        self.close()
        return recover(self.settings.db_path, default_backup_dir(self.settings.db_path), self.clock())

    def moved_aside_notice(self) -> str | None:
        """While a damaged database moved aside is neither restored nor dismissed: what to say."""
        from kb.store.backup import default_backup_dir
        from kb.store.repair import notice

        return notice(self.settings.home, default_backup_dir(self.settings.db_path))

    def dismiss_moved_aside(self) -> list[Path]:
        """Keep the new database: the moved-aside files stay (renamed .dismissed), the notice stops."""
        from kb.store.repair import dismiss_moved_aside

        return dismiss_moved_aside(self.settings.home)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> "KnowledgeBase":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- content -------------------------------------------------------------------------------

    def sync(self):
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
        return ("the bundled deck is missing from this installation of kb (no concept files here); reinstall it "
                "(`pip install --force-reinstall mlkb`, or from a checkout `pip install -e .`)")

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
                report.errors.append(duplicate_id_at(str(item.path), item.id_position, declared, str(other.path),
                                                     other.id_position))
        report.errors.extend(p.as_error() for p in problems)
        report.errors.sort()
        return report

    def search(self, query: str, *, limit: int = 50) -> list[SearchHit]:
        from kb.store.queries import search

        return [SearchHit(r.id, r.title_en, r.title_zh, r.category, r.snippet_text) for r in search(self.engine, query, limit=limit)]

    def concept_ids(self) -> list[str]:
        from kb.store.queries import all_concept_ids

        return all_concept_ids(self.engine)

    def list_concepts(self, category: str | None = None) -> list[dict]:
        """Active concepts (all, or one category's), in category order then by id."""
        from kb.store.queries import list_concepts

        concepts = [{"id": i, "title": {"en": en, "zh": zh}, "category": cat}
                    for i, en, zh, cat in list_concepts(self.engine, category=category)]
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
        out["link_titles"] = titles_of(self.engine, list(dict.fromkeys(out.get("prerequisites", []) + out.get("related", []))))
        return out

    # --- snippets ------------------------------------------------------------------------------

    def devices(self) -> list[str]:
        from kb.runner import detect_devices

        return detect_devices()

    @staticmethod
    def isolation_level() -> str:
        """How snippets are confined here: landlock+seccomp | landlock | seccomp | rlimits-only."""
        from kb.runner.sandbox import sandbox_level

        return sandbox_level()

    def _resolve_device(self, device: str) -> str:
        available = self.devices()
        if device == "auto":
            return "cuda" if "cuda" in available else "cpu"
        if device not in available:
            raise VerifyError(f"--device {device}: no {device.upper()} device is available here (found: {', '.join(available)})")
        return device

    @staticmethod
    def _untrusted_reason(src, own_decks: set[str], names: dict[str, str]) -> str | None:
        """Why `src` may not run unconfined, or None: own decks always run; others by trusted hash."""
        if src.deck_path in own_decks or (src.trusted_hash is not None and src.trusted_hash == src.code_hash):
            return None
        name = names.get(src.deck_path, src.deck_path)
        if src.trusted_hash is not None:
            return (f"the snippet of {src.concept_id} changed since you trusted the deck {name}; "
                    f"read it, then run `kb trust {name}` again (or `kb verify --sandbox {src.concept_id}`)")
        return (f"the deck {name} is not trusted; read its snippets, then run `kb trust {name}` "
                f"(or `kb verify --sandbox {src.concept_id}` to run this one confined)")

    def _deck_name(self, deck_path: str) -> str:
        for deck in self.settings.decks():
            if str(deck.path) == deck_path:
                return deck.name
        return deck_path

    def _plan(self, ids: list[str] | None, device: str, changed_only: bool, sandbox: bool = False):
        """RunSpecs for what should run, and outcomes for what will not (untrusted, skipped).

        With `sandbox`, untrusted snippets run too, but only where the runner can confine them
        (bubblewrap, Landlock file rules or the seccomp filter); elsewhere they are refused.
        """
        from kb.runner import Limits, RunSpec
        from kb.runner.sandbox import sandbox_level
        from kb.store.queries import last_passes, snippet_sources

        chosen = self._resolve_device(device)
        available = self.devices()
        sources = snippet_sources(self.engine, ids)
        passes = last_passes(self.engine) if changed_only else {}
        current = self.library_versions()
        decks = self.settings.decks()
        own_decks = {str(d.path) for d in decks if d.trusted}
        names = {str(d.path): d.name for d in decks}
        level = None
        specs, skipped = [], []
        for src in sources:
            reason = self._untrusted_reason(src, own_decks, names)
            confined = reason is not None  # may run only with --sandbox, and then only confined
            if confined and sandbox:
                level = level or sandbox_level()
                if level == "rlimits-only":
                    reason = (f"{src.concept_id} is untrusted and this machine has no sandbox for it (neither bubblewrap, "
                              f"Landlock nor seccomp is available; `kb doctor` shows the isolation); it will not run")
                else:
                    reason = None
            if reason is not None:
                skipped.append(VerifyOutcome(src.concept_id, "untrusted", None, 0.0, reason, source_path=src.source_path))
                continue
            run_on = chosen if chosen in src.devices else next((d for d in src.devices if d in available), None)
            if run_on is None:
                skipped.append(VerifyOutcome(src.concept_id, "skipped", None, 0.0,
                                             f"needs {' or '.join(src.devices)}, not available here",
                                             source_path=src.source_path))
                continue
            last = passes.get(src.concept_id)
            if changed_only and last and last["code_hash"] == src.code_hash and last["device"] == run_on and all(
                last[k] == current[k] for k in ("python", "torch", "numpy")
            ):
                continue
            limits = self.settings.run_limits
            if src.timeout_s:
                limits = Limits(**{**limits.__dict__, "wall_s": src.timeout_s, "cpu_s": src.timeout_s})
            specs.append((src, RunSpec(key=src.concept_id, code=src.code, device=run_on, limits=limits,
                                       expressions=src.expressions, line_offset=src.line_offset,
                                       source_path=src.source_path, sandbox=confined)))
        return specs, skipped

    @staticmethod
    def library_versions() -> dict[str, str | None]:
        """The versions a run would report, read without importing torch or numpy."""

        def version(name: str) -> str | None:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                return None

        return {"python": platform.python_version(), "torch": version("torch"), "numpy": version("numpy")}

    def _record(self, src, result) -> VerifyOutcome:
        import json

        from kb.store.queries import record_run

        record_run(self.engine, src.concept_id, {
            "code_hash": src.code_hash, "status": result.status, "device": result.device,
            "python_version": result.versions.get("python"), "torch_version": result.versions.get("torch"),
            "numpy_version": result.versions.get("numpy"), "duration_s": result.duration_s,
            "output": result.output, "truncated": result.truncated, "message": result.message,
            "line": result.line, "signal": result.signal, "exit_code": result.exit_code,
            "values_json": json.dumps(result.values, ensure_ascii=False),
        }, now=self.clock())
        return VerifyOutcome(result.key, result.status, result.device, result.duration_s, result.message,
                             result.line, src.source_path, result.output, result.values)

    def verify(self, ids: list[str] | None = None, *, device: str = "auto", jobs: int | None = None,
               changed_only: bool = False, sandbox: bool = False, on_planned: Callable[[int], None] | None = None,
               on_result: Callable[[VerifyOutcome], None] | None = None) -> list[VerifyOutcome]:
        """Run snippets in warm isolated workers, record every verdict, return them in id order.

        Snippets of decks that are not the user's own run only when trusted by hash, or, with
        `sandbox`, confined (see _plan).
        """
        from kb.runner import WorkerPool

        planned, skipped = self._plan(ids, device, changed_only, sandbox)
        if on_planned:
            on_planned(len(planned))
        outcomes: dict[str, VerifyOutcome] = {o.id: o for o in skipped}
        if planned:
            by_id = {src.concept_id: src for src, _ in planned}
            jobs = max(1, min(jobs or (os.cpu_count() or 1), len(planned)))

            def done(result) -> None:
                outcome = self._record(by_id[result.key], result)
                outcomes[outcome.id] = outcome
                if on_result:
                    on_result(outcome)

            with WorkerPool(jobs=jobs, device=planned[0][1].device) as pool:
                pool.run_many([spec for _, spec in planned], on_result=done)
        return [outcomes[k] for k in sorted(outcomes)]

    def run_snippet(self, concept_id: str, *, device: str = "auto", sandbox: bool = False,
                    on_output: Callable[[str], None] | None = None) -> VerifyOutcome:
        """Run one concept's snippet on a warm worker kept for this KnowledgeBase, streaming output."""
        planned, skipped = self._plan([concept_id], device, changed_only=False, sandbox=sandbox)
        if skipped:
            return skipped[0]
        if not planned:
            concept = self.show(concept_id)
            if concept is None:
                raise VerifyError(f"no concept {concept_id!r}")
            if concept.get("retired"):
                raise VerifyError(f"{concept_id} is retired: its file is gone ({concept['source_path']}), so its snippet "
                                  "does not run; its cards and reviews are kept")
            raise VerifyError(f"{concept_id} has no snippet")
        src, spec = planned[0]
        if self._pool is None:
            from kb.runner import WorkerPool

            self._pool = WorkerPool(jobs=1, device=spec.device)
        return self._record(src, self._pool.run(spec, on_output=on_output))

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
            raise NoteError(f"only notes in your notes deck can be edited here; {concept_id} comes from the deck "
                            f"{concept.get('deck', '?')} and is read-only in kb")
        if concept.get("retired") or not path.is_file():
            raise NoteError(f"the file of {concept_id} is gone ({path}): it was deleted or moved, so the note is retired "
                            "(its cards and reviews are kept); `a` writes a new one")
        return path

    def find_deck(self, name_or_path: str):
        """The deck named so (as `kb decks` lists it), or whose directory this is; None if none."""
        decks = self.settings.decks()
        named = [deck for deck in decks if deck.name == name_or_path]
        if len(named) > 1:
            raise DeckError(f"{len(named)} decks are named {name_or_path!r} ({', '.join(str(d.path) for d in named)}); "
                            "give the directory instead")
        if named:
            return named[0]
        path = Path(name_or_path).expanduser()
        if path.exists():
            resolved = path.resolve()
            for deck in decks:
                if deck.path.resolve() == resolved:
                    return deck
        return None

    def trust(self, name_or_path: str, trusted: bool = True) -> tuple[object, int]:
        """Record (or, with trusted=False, forget) the hash of every current snippet of a deck.

        Returns (the deck, how many snippets). Raises DeckError for an unknown deck or one that is
        the user's own.
        """
        from kb.store.queries import revoke_deck_trust, trust_deck_snippets

        deck = self.find_deck(name_or_path)
        if deck is None:
            names = ", ".join(d.name for d in self.settings.decks())
            raise DeckError(f"no deck {name_or_path!r} (decks: {names}; `kb decks` lists them)")
        if deck.trusted:
            raise DeckError(f"the deck {deck.name} is your own ({deck.path}): its snippets always run")
        self.sync()  # trust what is on disk now, not what the last sync saw
        if trusted:
            return deck, trust_deck_snippets(self.engine, str(deck.path), now=self.clock())
        return deck, revoke_deck_trust(self.engine, str(deck.path))

    def changes_since_trusted(self, deck_path: str) -> dict[str, list[str]]:
        """concept id -> what its executed strings (code, computed expressions) changed since `kb trust`."""
        from kb.store.queries import changed_since_trusted
        from kb.trust import describe_changes

        return {c.concept_id: describe_changes(c.trusted, c.current) for c in changed_since_trusted(self.engine, deck_path)}

    def decks(self) -> list["DeckInfo"]:
        """Every deck kb loads, with its concepts and the trust of its snippets."""
        from kb.store.queries import DeckCounts, deck_counts

        stats = deck_counts(self.engine)
        imported = {p.resolve() for p in self.settings.imported_decks()}
        out = []
        for i, deck in enumerate(self.settings.decks()):
            kind = ("bundled" if i == 0 else "notes" if i == 1 else
                    "imported" if deck.path.resolve() in imported else "KB_CONTENT")
            c = stats.get(str(deck.path), DeckCounts())
            changes = self.changes_since_trusted(str(deck.path)) if c.changed and not deck.trusted else {}
            out.append(DeckInfo(deck.name, deck.path, kind, deck.path.is_dir(), deck.trusted, c.concepts,
                                c.snippets, c.trusted, c.changed, changes))
        return out

    # --- the daily quiz --------------------------------------------------------------------------

    def zone(self):
        from kb.studyday import local_zone

        return local_zone(self.settings.timezone)

    def study_day(self, moment: datetime):
        """The study day `moment` belongs to (the user's zone, the day starting at the rollover hour)."""
        from kb.studyday import study_day

        return study_day(moment, tz=self.zone(), rollover_hour=self.settings.rollover_hour)

    def study_day_bounds(self, now: datetime | None = None):
        """(study day, its start, the next day's start) for `now` in the user's zone."""
        from kb.studyday import day_bounds, study_day

        now = now or self.clock()
        day = study_day(now, tz=self.zone(), rollover_hour=self.settings.rollover_hour)
        start, end = day_bounds(day, tz=self.zone(), rollover_hour=self.settings.rollover_hour)
        return day, start, end

    def scheduler_config(self):
        from kb.config import parse_steps
        from kb.scheduler import SchedulerConfig
        from kb.store.reviews import get_setting

        parameters = get_setting(self.engine, "fsrs_parameters")
        return SchedulerConfig(
            desired_retention=self.settings.desired_retention,
            learning_steps=parse_steps(self.settings.learning_steps),
            relearning_steps=parse_steps(self.settings.relearning_steps),
            maximum_interval_days=self.settings.maximum_interval,
            leech_lapses=self.settings.leech_lapses,
            parameters=tuple(parameters) if parameters else None,
            zone=self.zone(),
            rollover_hour=self.settings.rollover_hour,
        )

    def due_queue(self, now: datetime | None = None):
        """Today's queue of cards (learning, then due reviews, then new), within the daily limits."""
        from kb.store.reviews import build_queue

        now = now or self.clock()
        _, start, end = self.study_day_bounds(now)
        return build_queue(self.engine, now=now, day_start=start, day_end=end,
                           new_limit=self.settings.new_per_day, review_limit=self.settings.reviews_per_day)

    def due_overview(self) -> "DueOverview":
        """What today's queue holds that can be shown now, and what waits (a computed card whose
        snippet has not yet produced its value): the header and the quiz's end say the same."""
        waiting: list[str] = []
        showable = 0
        for entry in self.due_queue():
            if entry.kind in ("computed", "choice") and self.quiz_item(entry.card_id) is None:
                waiting.append(entry.concept_id)
            else:
                showable += 1
        return DueOverview(showable, sorted(set(waiting)))

    def quiz_item(self, card_id: str, *, rng=None) -> "QuizItem | None":
        """A card ready to show: prompt, answer, options, and the interval each rating would give."""
        import random

        from kb.quiz import CardUnavailable, present
        from kb.scheduler import format_interval, next_states
        from kb.store.queries import concept_data, last_passing_values, titles_in_category
        from kb.store.reviews import get_card

        stored = get_card(self.engine, card_id)
        if stored is None:
            return None
        concept = concept_data(self.engine, stored.concept_id)["data"]
        now = self.clock()
        if rng is None:  # the same options in the same order all day
            day, _, _ = self.study_day_bounds(now)
            rng = random.Random(f"{card_id}:{day.isoformat()}")
        pool = [title for cid, title in titles_in_category(self.engine, concept["category"]) if cid != stored.concept_id]
        try:
            card = present(card_id=card_id, kind=stored.kind, payload=stored.payload, concept=concept, rng=rng,
                           distractor_pool=pool, computed_values=last_passing_values(self.engine, stored.concept_id))
        except CardUnavailable:
            return None
        state = self._card_state(stored)
        states = next_states(state, now, config=self.scheduler_config(), fuzz_seed=stored.card_pk)
        return QuizItem(card, stored.state["state"] if stored.state else "new",
                        {rating: format_interval(now, s.due) for rating, s in states.items()}, stored.state)

    @staticmethod
    def _card_state(stored):
        from kb.scheduler import CardState

        return CardState.from_dict(stored.state) if stored.state else None

    def next_quiz_item(self, *, skip: set[str] = frozenset(), rng=None) -> "QuizItem | None":
        """The first card of today's queue that can be shown (computed cards need a passing run)."""
        for entry in self.due_queue():
            if entry.card_id in skip:
                continue
            item = self.quiz_item(entry.card_id, rng=rng)
            if item is not None:
                return item
        return None

    def grade(self, card, response: str):
        from kb.quiz import grade

        return grade(card, response)

    def answer(self, card_id: str, rating: int, *, duration_ms: int | None = None,
               shown_state: dict | None | object = ...) -> "AnswerOutcome":
        """Store an answer and the card's next state in one transaction.

        With `shown_state` (QuizItem.shown_state), the answer is refused with AnsweredElsewhere when
        the card's state changed since it was shown: two quizzes at once never answer a card twice.
        """
        from kb.scheduler import CardState, answer, became_leech, format_interval
        from kb.store.reviews import NextState, get_card, record_answer

        if rating not in (1, 2, 3, 4):
            raise ValueError(f"rating must be 1-4, got {rating!r}")
        stored = get_card(self.engine, card_id)
        if stored is None:
            raise KeyError(card_id)
        now = self.clock()
        config = self.scheduler_config()
        decided: list = []

        def decide(before: dict | None) -> NextState:
            if shown_state is not ... and before != shown_state:  # checked inside the write transaction
                raise AnsweredElsewhere(card_id)
            previous = CardState.from_dict(before) if before else None
            state = answer(previous, rating, now, config=config, fuzz_seed=stored.card_pk)
            leech = became_leech(previous, state, config)
            decided.append((state, leech))
            return NextState(state.to_dict(), state.state, state.due, state.lapses, state.reps, leech,
                             suspend_leech=self.settings.leech_action == "suspend")

        review_id = record_answer(self.engine, card_id, rating=rating, now=now, duration_ms=duration_ms, decide=decide)
        state, leech = decided[-1]
        return AnswerOutcome(review_id, card_id, rating, state.due, format_interval(now, state.due), leech,
                             suspended=leech and self.settings.leech_action == "suspend")

    def undo(self, review_id: int) -> str | None:
        """Take back one answer of the caller's session (its review id, from AnswerOutcome); returns the
        card id, or None when it is no longer its card's newest answer. Answers of other sessions and
        earlier days are never touched: a quiz keeps the ids of its own answers and offers only those."""
        from kb.store.reviews import undo_review

        return undo_review(self.engine, review_id)

    def stats(self) -> dict:
        from datetime import timedelta

        from kb.store.reviews import get_setting, stats_rows
        from kb.studyday import study_day

        now = self.clock()
        day, start, end = self.study_day_bounds(now)
        zone, hour = self.zone(), self.settings.rollover_hour
        raw = stats_rows(self.engine, since=now - timedelta(days=30), horizon=end + timedelta(days=7),
                         day_start=start, day_end=end)
        days = {study_day(t, tz=zone, rollover_hour=hour) for t in raw.pop("review_times")}
        streak, cursor = 0, day if day in days else day - timedelta(days=1)
        while cursor in days:
            streak += 1
            cursor -= timedelta(days=1)
        forecast = [0] * 7
        for due in raw.pop("due_times"):
            offset = max(0, (study_day(due, tz=zone, rollover_hour=hour) - day).days)
            if offset < 7:
                forecast[offset] += 1
        raw["retention_30d"] = None if raw["retention_30d"] is None else round(raw["retention_30d"], 4)
        return {**raw, "streak_days": streak, "forecast_7d": forecast,
                "parameters": "optimized" if get_setting(self.engine, "fsrs_parameters") else "default",
                "true_retention": self.true_retention()}

    def true_retention(self, *, weeks: int = 4, months: int = 6) -> dict:
        """Anki's "true retention": of the reviews on a later study day than the card's previous
        review, the share recalled (rated Hard or better), by study week and by calendar month.

        Each period is {"period", "passed", "reviews", "retention"} (retention None when empty);
        weeks are the last `weeks` runs of 7 study days ending today, months the last `months`.
        """
        from datetime import timedelta

        from kb.store.reviews import review_history

        today = self.study_day(self.clock())
        week_starts = [today - timedelta(days=7 * i + 6) for i in range(weeks)]
        month_keys = []
        year, month = today.year, today.month
        for _ in range(months):
            month_keys.append((year, month))
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        by_week = {start: [0, 0] for start in week_starts}
        by_month = {key: [0, 0] for key in month_keys}
        last_day: dict[str, object] = {}
        for card, rating, at, _ in review_history(self.engine):
            day = self.study_day(at)
            previous, last_day[card] = last_day.get(card), day
            if previous is None or day <= previous:
                continue  # a first review, or another on the same study day: no test of memory
            passed = rating > 1
            week = today - timedelta(days=(today - day).days // 7 * 7 + 6)
            for bucket in (by_week.get(week), by_month.get((day.year, day.month))):
                if bucket is not None:
                    bucket[0] += passed
                    bucket[1] += 1

        def row(label: str, counts: list[int]) -> dict:
            passed, total = counts
            return {"period": label, "passed": passed, "reviews": total,
                    "retention": round(passed / total, 4) if total else None}

        return {"target": self.settings.desired_retention,
                "weeks": [row(f"{start.isoformat()}..{(start + timedelta(days=6)).isoformat()}", by_week[start])
                          for start in week_starts],
                "months": [row(f"{y:04d}-{m:02d}", by_month[(y, m)]) for y, m in month_keys]}

    def reviews_per_day(self, days: int = 30) -> list[tuple[str, int]]:
        """(study day ISO date, number of reviews) for the last `days` study days, oldest first."""
        from datetime import timedelta

        from kb.store.reviews import review_times
        from kb.studyday import study_day

        today, start, _ = self.study_day_bounds()
        zone, hour = self.zone(), self.settings.rollover_hour
        counts = {today - timedelta(days=i): 0 for i in range(days)}
        for at in review_times(self.engine, since=start - timedelta(days=days + 1)):
            day = study_day(at, tz=zone, rollover_hour=hour)
            if day in counts:
                counts[day] += 1
        return [(day.isoformat(), counts[day]) for day in sorted(counts)]

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
        declared = dict(re.findall(r"^(id|category):[ \t]*['\"]?([a-z0-9][a-z0-9-]{0,79})['\"]?[ \t]*(?:#.*)?$",
                                   text[:100_000], re.M))
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
        shown = replace or (self.settings.notes_dir / category / f"{stem}.yaml" if stem != "draft" and category else None)
        from kb.loader import LoadError

        errors = [LoadError(str(shown) if shown else "new note", e.line, e.col, e.message) if e.path == str(draft) else e
                  for e in errors]
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

    def optimize(self, on_progress=None) -> dict:
        """Fit FSRS parameters to the review log, counted in study days, and keep the best predictor.

        Only reviews on a later study day than the card's previous review test memory; below the
        optimizer's minimum of those, nothing is fitted and the parameters in use are kept (and
        said to be the defaults when they are). The fit runs in a subprocess: it imports torch.
        `on_progress(done, total)` follows the fit's steps.
        """
        import json
        import subprocess
        import tempfile

        from kb.optimizer import MIN_INTER_DAY_REVIEWS, PROGRESS_PREFIX, sequences
        from kb.store.reviews import get_setting, review_history, set_setting

        zone, hour = self.zone(), self.settings.rollover_hour
        rows = [(card, rating, self.study_day(at).toordinal()) for card, rating, at, _ in review_history(self.engine)]
        current = get_setting(self.engine, "fsrs_parameters")
        seqs = sequences(rows, zone=zone, rollover_hour=hour)
        inter_day = seqs.inter_day_reviews
        in_use = "optimized" if current else "default"
        result = {"fitted": False, "chosen": "current" if current else "default", "reviews": len(rows),
                  "inter_day_reviews": inter_day, "minimum": MIN_INTER_DAY_REVIEWS, "evaluations": {}}
        if inter_day < MIN_INTER_DAY_REVIEWS:
            result["message"] = (f"nothing fitted: {inter_day} of your {len(rows)} reviews came on a later study day "
                                 f"than the card's previous review, and a fit needs at least {MIN_INTER_DAY_REVIEWS}; "
                                 f"keeping the {in_use} parameters")
            return result
        payload = json.dumps({"reviews": rows, "current": current})
        with tempfile.TemporaryFile("w+") as out:
            with subprocess.Popen(list(OPTIMIZER_COMMAND), stdin=subprocess.PIPE, stdout=out,
                                  stderr=subprocess.PIPE, text=True) as proc:
                proc.stdin.write(payload)
                proc.stdin.close()
                said = []
                for line in proc.stderr:
                    if line.startswith(PROGRESS_PREFIX):
                        done, _, total = line[len(PROGRESS_PREFIX):].strip().partition("/")
                        if on_progress is not None:
                            on_progress(int(done), int(total))
                    else:
                        said.append(line.rstrip())
            if proc.returncode != 0:
                raise OptimizeError(([s for s in said if s.strip()] or ["the optimizer failed"])[-1])
            out.seek(0)
            report = json.load(out)
        evaluations = {name: report[key] for name, key in (("default", "default"), ("current", "current"),
                                                           ("fitted", "candidate")) if report.get(key)}
        chosen = report["chosen"]
        result.update(fitted=True, chosen=chosen, evaluations=evaluations, parameters=report["weights"])
        if chosen != "current":
            self.backup()  # new parameters change every interval from now on: keep the state before
            set_setting(self.engine, "fsrs_parameters", report["weights"] if chosen == "fitted" else None)
        set_setting(self.engine, "fsrs_fit", {"chosen": chosen, "inter_day_reviews": inter_day,
                                              "at": self.clock().isoformat()})
        message = {"fitted": "the fitted parameters predict your history best; they are used from now on",
                   "current": "the parameters in use predict your history at least as well as the fitted ones; "
                              "keeping them",
                   "default": "the default parameters predict your history at least as well as the fitted ones; "
                              "using the defaults"}[chosen]
        result["message"] = f"fitted to {inter_day} inter-day reviews ({len(rows)} reviews in all): {message}"
        return result

    # --- diagnostics ---------------------------------------------------------------------------

    def doctor(self) -> dict:
        from kb.store.engine import quick_check
        from kb.store.queries import counts

        def version(name: str) -> str | None:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                return None

        import yaml

        info = {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "sqlite": sqlite3.sqlite_version,
            "libyaml": bool(getattr(yaml, "__with_libyaml__", False)),
            "packages": {n: version(n) for n in ("mlkb", "textual", "sqlmodel", "pydantic", "pyyaml", "numpy", "torch", "fsrs")},
            "kb_home": str(self.settings.home),
            "database": str(self.settings.db_path),
        }
        from kb.runner import isolation_report
        from kb.store.errors import StoreError

        info["devices"] = self.devices()
        info["isolation"] = isolation_report()
        info["executable"] = sys.executable
        info["moved_aside"] = self.moved_aside_notice()
        # The database last: a doctor that cannot open it still reports everything else, and why.
        try:
            info["decks"] = [d.to_dict() for d in self.decks()]
            info["integrity"] = quick_check(self.engine)
            info["counts"] = counts(self.engine)
        except StoreError as exc:
            info["decks"] = []
            info["integrity"] = f"cannot open the database: {exc}"
            info["counts"] = {"concepts": 0, "cards": 0, "reviews": 0, "runs": 0, "retired_concepts": 0}
        return info

    # --- backups (issue 9) -----------------------------------------------------------------------

    def backup(self) -> Path:
        """Back up the database now (SQLite backup API) into $KB_HOME/backups; returns its path."""
        from kb.store.backup import default_backup_dir, make_backup, thin_backups

        self.engine  # noqa: B018  (opens and checks the database, creating it if needed)
        backup_dir = default_backup_dir(self.settings.db_path)
        now = self.clock()
        path = make_backup(self.settings.db_path, backup_dir, now)
        thin_backups(backup_dir, now, self.study_day)
        return path

    def backups(self) -> list[Path]:
        """The backups, oldest first."""
        from kb.store.backup import default_backup_dir, list_backups

        return [path for _, path in list_backups(default_backup_dir(self.settings.db_path))]

    def restore(self, source: Path | None = None) -> dict:
        """Replace the database by a backup (the newest by default), backing up what it replaces.

        The file must be a kb database that passes PRAGMA quick_check. Returns
        {"restored": path, "previous": backup of the replaced database or None,
        "moved_aside": where an unreadable database was moved, or None}.
        """
        from kb.store.backup import default_backup_dir, list_backups, restore_backup
        from kb.store.errors import StoreError

        db_path = self.settings.db_path
        backup_dir = default_backup_dir(db_path)
        if source is None:
            backups = list_backups(backup_dir)
            if not backups:
                raise StoreError(f"no backup in {backup_dir} (make one with `kb backup`)")
            source = backups[-1][1]
        source = source.expanduser().resolve()
        if not source.is_file():
            raise StoreError(f"{source}: no such backup file")
        if source == db_path.resolve():
            raise StoreError(f"{source} is the database itself; name a backup from {backup_dir}")
        if self._engine is not None:  # the database may be moved aside: no connection may stay on it
            self._engine.dispose()
            self._engine = None
        result = restore_backup(db_path, source, backup_dir, self.clock())
        self.dismiss_moved_aside()  # restored: the notice about a damaged file has done its job
        return result


@dataclass(frozen=True)
class DeckInfo:
    """One deck as `kb decks` shows it."""

    name: str
    path: Path
    kind: str  # bundled | notes | imported | KB_CONTENT
    exists: bool
    own: bool  # the user's own deck: its snippets always run
    concepts: int
    snippets: int
    trusted_snippets: int
    changed_snippets: int
    changes: dict[str, list[str]] = field(default_factory=dict)  # concept id -> what changed since trusted

    @property
    def trust(self) -> str:
        """own | trusted | partly trusted | changed since trusted | untrusted | no snippets"""
        if self.own:
            return "own"
        if not self.snippets:
            return "no snippets"
        if self.trusted_snippets == self.snippets:
            return "trusted"
        if self.trusted_snippets:
            return "partly trusted"
        return "changed since trusted" if self.changed_snippets else "untrusted"

    def to_dict(self) -> dict:
        return {"name": self.name, "path": str(self.path), "kind": self.kind, "exists": self.exists,
                "trust": self.trust, "trusted": self.own or (self.snippets > 0 and self.trusted_snippets == self.snippets),
                "concepts": self.concepts, "snippets": self.snippets, "trusted_snippets": self.trusted_snippets,
                "changed_snippets": self.changed_snippets, "changes": self.changes}


@dataclass(frozen=True)
class VerifyOutcome:
    """The verdict of one snippet: a run record, or why it did not run (untrusted, skipped)."""

    id: str
    status: str
    device: str | None
    duration_s: float
    message: str | None = None
    line: int | None = None
    source_path: str | None = None
    output: str = ""
    values: dict | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def ran(self) -> bool:
        return self.status not in ("untrusted", "skipped")

    def to_dict(self) -> dict:
        return {"id": self.id, "status": self.status, "device": self.device,
                "duration_s": round(self.duration_s, 4), "message": self.message}


@dataclass(frozen=True)
class QuizItem:
    """A card ready to show, with the interval each rating 1-4 would give (as Anki shows)."""

    card: object  # kb.quiz.QuizCard
    state: str  # new | learning | relearning | review
    intervals: dict
    shown_state: dict | None = None  # the stored state when shown: pass it to answer() (None: new)


@dataclass(frozen=True)
class DueOverview:
    """Today's due cards: how many can be shown, and the concepts whose cards wait for a run."""

    showable: int
    waiting_for_a_run: list[str]

    def waiting_line(self) -> str | None:
        if not self.waiting_for_a_run:
            return None
        names = ", ".join(self.waiting_for_a_run[:5]) + (" …" if len(self.waiting_for_a_run) > 5 else "")
        return (f"{len(self.waiting_for_a_run)} concept(s) have computed cards waiting for their snippet to give a "
                f"value ({names}): `kb verify`, or r on the concept")


class NoteError(Exception):
    """A note cannot be edited: not the user's own, or its file is gone. The message says which."""


class AnsweredElsewhere(Exception):
    """The card was answered by another session (a second terminal, another kb) after it was shown
    here: this answer is not recorded, and the session goes on with the next card."""

    def __init__(self, card_id: str) -> None:
        super().__init__(f"{card_id} was answered in another session after it was shown here; this answer was not recorded")
        self.card_id = card_id


@dataclass(frozen=True)
class AnswerOutcome:
    review_id: int
    card_id: str
    rating: int
    due: datetime
    interval: str
    leech: bool  # this answer made the card a leech
    suspended: bool = False  # ... and it was suspended for it (the leech action "suspend")

    @property
    def leech_message(self) -> str:
        if not self.leech:
            return ""
        return ("leech: suspended after repeated lapses" if self.suspended
                else "leech: marked after repeated lapses; it stays in the quiz")


def true_retention_lines(table: dict) -> list[str]:
    """Anki's True Retention table as text: by week and by month, beside the target."""
    lines = [f"True retention (recalled / reviews on a later day than the card's last; target {table['target']:.0%})"]
    for title, rows in (("week", table["weeks"]), ("month", table["months"])):
        lines.append(f"  {'by ' + title:<24}{'passed':>8}{'reviews':>9}{'retention':>11}")
        for row in rows:
            shown = "-" if row["retention"] is None else f"{row['retention']:.1%}"
            lines.append(f"  {row['period']:<24}{row['passed']:>8}{row['reviews']:>9}{shown:>11}")
    return lines

OPTIMIZER_COMMAND = (sys.executable, "-m", "kb.optimizer")


class OptimizeError(Exception):
    """The optimizer subprocess failed (e.g. its extra dependencies are missing)."""


class VerifyError(Exception):
    """A verify request that cannot be carried out (a device that is not here)."""


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
category: {category}          # fundamentals | layers | attention | generative | vision | image-processing | metrics | llm | software
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


def json_schema() -> dict:
    from kb.schema import json_schema as build

    return build()


# --- interop: Anki, JSON, Markdown (issue 10) -------------------------------------------------------


def _export_rows(kb: KnowledgeBase, category: str | None) -> list[dict]:
    """Synced active concepts (all, or one category's) with their cards and runs."""
    from kb.interop import InteropError
    from kb.schema import CATEGORIES
    from kb.store.queries import export_rows

    if category is not None and category not in CATEGORIES:
        raise InteropError(f"--category must be one of {', '.join(CATEGORIES)}")
    kb.sync()
    return export_rows(kb.engine, category=category)


def export_anki(kb: KnowledgeBase, out: Path, *, deck: str = "kb", category: str | None = None):
    """Write the cards as an Anki package; returns a kb.interop.anki.AnkiExport."""
    from kb.interop.anki import export_anki as write

    return write(_export_rows(kb, category), out, deck=deck)


def export_json(kb: KnowledgeBase, out: Path, *, category: str | None = None) -> int:
    """Write every concept with its cards and last run as JSON; returns the number of concepts."""
    from kb.interop.json_export import export_json as write
    from kb.store.engine import SCHEMA_VERSION

    try:
        version = metadata.version("mlkb")
    except metadata.PackageNotFoundError:
        version = None
    return write(_export_rows(kb, category), out, schema_version=SCHEMA_VERSION, kb_version=version)


def export_markdown(kb: KnowledgeBase, out_dir: Path, *, category: str | None = None) -> dict[str, int]:
    """Write one Markdown page per concept and an index per category under out_dir."""
    from kb.interop.markdown_export import export_markdown as write

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
            raise DeckError(f"cannot make a deck name from {source.name!r} (names are lowercase ASCII letters, "
                            "digits and '-'); pass --name NAME")
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
        raise DeckError(f"a deck named {deck_name!r} is already imported ({target}); pass --update to replace it "
                        f"with this version (reviews are kept), or --name to import it under another name")
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
            errors.append(LoadError(str(item.path), *item.id_position,
                                    f"the id '{item.concept.id}' is already used by the deck {kb._deck_name(deck_path)} "
                                    f"({file}); ids are unique across decks"))
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
    kb.settings.imported_decks_dir.mkdir(parents=True, exist_ok=True)
    # Hidden directories are never loaded as decks: stage there, then switch with renames.
    staging = Path(tempfile.mkdtemp(prefix=f".{deck_name}-new-", dir=kb.settings.imported_decks_dir))
    previous = None
    try:
        for f in read.files:
            dest = staging.joinpath(*f.relpath.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(f.data)
        if update:
            previous = Path(tempfile.mkdtemp(prefix=f".{deck_name}-old-", dir=kb.settings.imported_decks_dir))
            previous.rmdir()
            target.rename(previous)
        staging.rename(target)
        try:
            sync = kb.sync()
        except BaseException:
            target.rename(staging)  # back as it was: the database transaction rolled back too
            if previous is not None:
                previous.rename(target)
                previous = None
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)

    ids = {item.concept.id for item in parsed}
    after = {s.concept_id: s for s in snippet_sources(kb.engine, sorted(ids))}
    untrusted_again = sorted(
        cid for cid, src in after.items()
        if cid in before and before[cid].trusted_hash is not None and before[cid].trusted_hash != src.code_hash
        and before[cid].trusted_hash == before[cid].code_hash
    )
    return DeckImportOutcome(
        deck_name, target, update, len(ids), len(after), sum(s.trusted_hash != s.code_hash for s in after.values()),
        added=sorted(i for i in sync.added if i in ids), changed=sorted(i for i in sync.updated if i in ids),
        retired=sorted(sync.retired), untrusted_again=untrusted_again, ignored=read.ignored,
    )


def import_anki(
    kb: KnowledgeBase, package: Path, *, name: str | None = None, on_progress: Callable[[str], None] | None = None
) -> ImportOutcome:
    """Turn an .apkg's notes into a new untrusted deck under $KB_HOME/decks/<name>, all or nothing.

    `on_progress` is told each phase as it starts ("reading", "converting", "writing", "checking",
    "loading"); an import of the largest package kb takes (20,000 notes) lasts seconds.
    """
    import shutil
    import tempfile

    from kb.interop import InteropError
    from kb.interop.anki_import import concepts_from_notes, read_package, slugify, write_deck

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
        raise InteropError(f"{package}: no Basic or Cloze note to import" + (f" ({len(skipped)} skipped)" if skipped else ""))
    kb.settings.imported_decks_dir.mkdir(parents=True, exist_ok=True)
    # A hidden staging directory is never loaded as a deck; it becomes the deck in one rename.
    staging = Path(tempfile.mkdtemp(prefix=f".{deck_name}-", dir=kb.settings.imported_decks_dir))
    try:
        phase(f"writing {len(concepts):,} concept files")
        written = write_deck(concepts, staging)
        phase("checking them")
        report = kb.check(written)
        if not report.ok:
            first = report.errors[0]
            raise InteropError(f"the generated deck does not validate ({len(report.errors)} error(s)); first: {first}")
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    phase("loading them")
    kb.sync()
    return ImportOutcome(target, [c["id"] for c in concepts], skipped)
