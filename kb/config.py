"""Settings and paths: where the database lives and which decks of YAML files are loaded.

KB_HOME (default: the platform's user data directory) holds kb.sqlite and the notes deck;
KB_CONTENT lists extra deck directories, separated by os.pathsep.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

def _bundled_content() -> Path:
    """The bundled deck: the package kb.bundled of an installed kb (a wheel), else the checkout's
    content/ (an editable install, or kb run from a source tree)."""
    from importlib.util import find_spec

    try:
        spec = find_spec("kb.bundled")
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        if Path(location).is_dir():
            return Path(location)
    return Path(__file__).resolve().parent.parent / "content"


BUNDLED_CONTENT = _bundled_content()


@dataclass(frozen=True)
class Deck:
    """A directory of concept files. Untrusted decks load as text; their snippets never run."""

    path: Path
    name: str
    trusted: bool


@dataclass(frozen=True)
class Settings:
    home: Path
    bundled_content: Path = BUNDLED_CONTENT
    extra_content: tuple[Path, ...] = field(default_factory=tuple)
    # Snippet limits (RELIABILITY.md defaults); an entry's timeout_s overrides the wall and CPU time.
    run_wall_s: float = 30.0
    run_cpu_s: float = 10.0
    run_memory_mb: int = 2048
    # The daily quiz (Anki's defaults).
    new_per_day: int = 20
    reviews_per_day: int = 200
    rollover_hour: int = 4  # the study day starts at this local hour
    timezone: str | None = None  # an IANA name; None = the system's local zone
    desired_retention: float = 0.9
    leech_lapses: int = 8

    @property
    def run_limits(self):
        from kb.runner import Limits

        return Limits(wall_s=self.run_wall_s, cpu_s=self.run_cpu_s, memory_bytes=self.run_memory_mb * 1024**2)

    @property
    def db_path(self) -> Path:
        return self.home / "kb.sqlite"

    @property
    def notes_dir(self) -> Path:
        return self.home / "notes"

    def decks(self) -> list[Deck]:
        decks = [Deck(self.bundled_content, "bundled", True), Deck(self.notes_dir, "notes", True)]
        seen = {d.path.resolve() for d in decks}
        for path in self.extra_content:
            if path.resolve() not in seen:
                seen.add(path.resolve())
                decks.append(Deck(path, path.name or str(path), False))
        # Decks brought in by `kb import` (hidden directories are imports being staged).
        for path in self.imported_decks():
            if path.resolve() not in seen:
                seen.add(path.resolve())
                decks.append(Deck(path, path.name, False))
        return decks

    @property
    def imported_decks_dir(self) -> Path:
        return self.home / "decks"

    def imported_decks(self) -> list[Path]:
        """The directories under `$KB_HOME/decks/`, sorted; hidden ones are skipped."""
        root = self.imported_decks_dir
        if not root.is_dir():
            return []
        return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment (KB_HOME, KB_CONTENT), with platform defaults."""
    env = os.environ if env is None else env
    home_text = env.get("KB_HOME")
    if home_text:
        home = Path(home_text).expanduser().resolve()
    else:
        import platformdirs  # only needed when KB_HOME is unset

        home = platformdirs.user_data_path("kb", appauthor=False)
    extra = tuple(Path(p).expanduser().resolve() for p in env.get("KB_CONTENT", "").split(os.pathsep) if p.strip())
    values: dict = {}
    for key, name, kind, low, high in (
        ("KB_RUN_WALL_S", "run_wall_s", float, 0.1, 3600),
        ("KB_RUN_CPU_S", "run_cpu_s", float, 1, 3600),
        ("KB_RUN_MEMORY_MB", "run_memory_mb", int, 256, 1 << 20),
        ("KB_NEW_PER_DAY", "new_per_day", int, 0, 10_000),
        ("KB_REVIEWS_PER_DAY", "reviews_per_day", int, 0, 100_000),
        ("KB_ROLLOVER_HOUR", "rollover_hour", int, 0, 23),
        ("KB_DESIRED_RETENTION", "desired_retention", float, 0.7, 0.99),
    ):
        if env.get(key):
            try:
                value = kind(env[key])
            except ValueError:
                raise ValueError(f"{key}={env[key]!r} is not a {'whole ' if kind is int else ''}number") from None
            if not low <= value <= high:
                raise ValueError(f"{key}={env[key]!r} must be between {low} and {high}")
            values[name] = value
    if env.get("KB_TZ"):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(env["KB_TZ"])
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"KB_TZ={env['KB_TZ']!r} is not a known time zone (e.g. Asia/Shanghai)") from None
        values["timezone"] = env["KB_TZ"]
    if env.get("KB_BUNDLED_CONTENT"):  # another bundled deck (packagers, tests); default: content/
        values["bundled_content"] = Path(env["KB_BUNDLED_CONTENT"]).expanduser().resolve()
    return Settings(home=home, extra_content=extra, **values)
