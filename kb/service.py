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
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable

from kb.config import Settings, load_settings
from kb.loader import CheckReport, check_files, find_yaml_files


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


class KnowledgeBase:
    """The knowledge base of one KB_HOME: its decks and its database."""

    def __init__(self, settings: Settings | None = None, *, clock: Callable[[], datetime] = utc_now):
        self.settings = settings or load_settings()
        self.clock = clock
        self._engine = None
        self._pool = None  # a warm worker for run_snippet, started on first use

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def engine(self):
        if self._engine is None:
            from kb.store.engine import open_engine  # sqlmodel costs ~0.4 s: only when needed

            self._engine = open_engine(self.settings.db_path)
        return self._engine

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

        self.settings.notes_dir.mkdir(parents=True, exist_ok=True)
        return sync_decks(self.engine, self.settings.decks(), now=self.clock())

    def deck_files(self) -> list[Path]:
        files = []
        for deck in self.settings.decks():
            if deck.path.is_dir():
                files.extend(find_yaml_files(deck.path))
        return files

    def check(self, paths: list[Path] | None = None) -> CheckReport:
        """Validate files without touching the database. Given paths, ids of the decks count as known."""
        if not paths:
            return check_files(self.deck_files())
        targets: list[Path] = []
        for path in paths:
            targets.extend(find_yaml_files(path) if path.is_dir() else [path])
        resolved = {p.resolve() for p in targets}
        others = check_files([p for p in self.deck_files() if p.resolve() not in resolved])
        known = {item.concept.id for item in others.parsed if item.concept is not None}
        return check_files(targets, extra_known_ids=known)

    def search(self, query: str, *, limit: int = 50) -> list[SearchHit]:
        from kb.store.queries import search

        return [SearchHit(r.id, r.title_en, r.title_zh, r.category, r.snippet_text) for r in search(self.engine, query, limit=limit)]

    def concept_ids(self) -> list[str]:
        from kb.store.queries import all_concept_ids

        return all_concept_ids(self.engine)

    def suggest_ids(self, concept_id: str) -> list[str]:
        return difflib.get_close_matches(concept_id, self.concept_ids(), n=3, cutoff=0.6)

    def show(self, concept_id: str) -> dict | None:
        """The concept as loaded (every schema field) plus its cards, last run and origin."""
        from kb.store.queries import cards_of, concept_data, last_run

        stored = concept_data(self.engine, concept_id)
        if stored is None:
            return None
        out = dict(stored["data"])
        out["cards"] = cards_of(self.engine, concept_id)
        out["last_run"] = last_run(self.engine, concept_id)
        out["source_path"] = stored["source_path"]
        out["retired"] = stored["retired"]
        return out

    # --- snippets ------------------------------------------------------------------------------

    def devices(self) -> list[str]:
        from kb.runner import detect_devices

        return detect_devices()

    def _resolve_device(self, device: str) -> str:
        available = self.devices()
        if device == "auto":
            return "cuda" if "cuda" in available else "cpu"
        if device not in available:
            raise VerifyError(f"--device {device}: no {device.upper()} device is available here (found: {', '.join(available)})")
        return device

    def _plan(self, ids: list[str] | None, device: str, changed_only: bool):
        """RunSpecs for what should run, and outcomes for what will not (untrusted, skipped)."""
        from kb.runner import Limits, RunSpec
        from kb.store.queries import last_passes, snippet_sources

        chosen = self._resolve_device(device)
        available = self.devices()
        sources = snippet_sources(self.engine, ids)
        passes = last_passes(self.engine) if changed_only else {}
        current = self.library_versions()
        specs, skipped = [], []
        for src in sources:
            if not src.trusted:
                skipped.append(VerifyOutcome(
                    src.concept_id, "untrusted", None, 0.0,
                    f"the deck {src.deck_path} is not trusted; run `kb trust {src.deck_path}` to allow its snippets",
                    source_path=src.source_path))
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
                                       source_path=src.source_path)))
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
               changed_only: bool = False, on_planned: Callable[[int], None] | None = None,
               on_result: Callable[[VerifyOutcome], None] | None = None) -> list[VerifyOutcome]:
        """Run snippets in warm isolated workers, record every verdict, return them in id order."""
        from kb.runner import WorkerPool

        planned, skipped = self._plan(ids, device, changed_only)
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

    def run_snippet(self, concept_id: str, *, device: str = "auto",
                    on_output: Callable[[str], None] | None = None) -> VerifyOutcome:
        """Run one concept's snippet on a warm worker kept for this KnowledgeBase, streaming output."""
        planned, skipped = self._plan([concept_id], device, changed_only=False)
        if skipped:
            return skipped[0]
        if not planned:
            raise VerifyError(f"{concept_id!r} has no snippet")
        src, spec = planned[0]
        if self._pool is None:
            from kb.runner import WorkerPool

            self._pool = WorkerPool(jobs=1, device=spec.device)
        return self._record(src, self._pool.run(spec, on_output=on_output))

    def trust(self, path: Path, trusted: bool = True) -> bool:
        from kb.store.queries import set_deck_trust

        return set_deck_trust(self.engine, str(path.expanduser().resolve()), trusted)

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
        from kb.store.queries import trusted_decks

        trust = trusted_decks(self.engine)
        info["decks"] = [
            {"name": d.name, "path": str(d.path), "trusted": trust.get(str(d.path), d.trusted), "exists": d.path.is_dir()}
            for d in self.settings.decks()
        ]
        from kb.runner import isolation_report

        info["devices"] = self.devices()
        info["isolation"] = isolation_report()
        info["integrity"] = quick_check(self.engine)
        info["counts"] = counts(self.engine)
        info["executable"] = sys.executable
        return info


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


class VerifyError(Exception):
    """A verify request that cannot be carried out (a device that is not here)."""


def json_schema() -> dict:
    from kb.schema import json_schema as build

    return build()
