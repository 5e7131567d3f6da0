"""Settings and paths: where the database lives and which decks of YAML files are loaded.

KB_HOME (default: the platform's user data directory) holds kb.sqlite and the notes deck;
KB_CONTENT lists extra deck directories, separated by os.pathsep.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

BUNDLED_CONTENT = Path(__file__).resolve().parent.parent / "content"


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
        return decks


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
    limits = {}
    for key, name, kind in (("KB_RUN_WALL_S", "run_wall_s", float), ("KB_RUN_CPU_S", "run_cpu_s", float),
                            ("KB_RUN_MEMORY_MB", "run_memory_mb", int)):
        if env.get(key):
            try:
                limits[name] = kind(env[key])
            except ValueError:
                raise ValueError(f"{key}={env[key]!r} is not a number") from None
    return Settings(home=home, extra_content=extra, **limits)
