"""Settings and paths: where the database lives and which decks of YAML files are loaded.

KB_HOME (default: the platform's user data directory) holds kb.sqlite and the notes deck;
KB_CONTENT lists extra deck directories, separated by os.pathsep.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from kb.errors import KbError


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
    kind: str = "KB_CONTENT"  # bundled | notes | KB_CONTENT (a folder named in KB_CONTENT) | imported


@dataclass(frozen=True)
class Settings:
    home: Path
    bundled_content: Path = BUNDLED_CONTENT
    extra_content: tuple[Path, ...] = field(default_factory=tuple)
    # Snippet limits, so that a runaway snippet is stopped; an entry's timeout_s overrides the wall and CPU time.
    run_wall_s: float = 30.0
    run_cpu_s: float = 10.0
    run_memory_mb: int = 2048
    # The daily quiz (Anki's defaults).
    new_per_day: int = 20
    reviews_per_day: int = 200
    rollover_hour: int = 4  # the study day starts at this local hour
    timezone: str | None = None  # an IANA name; None = the system's local zone
    desired_retention: float = 0.9
    learning_steps: str = "1m 10m"  # Anki's defaults; parse_steps turns them into durations
    relearning_steps: str = "10m"
    maximum_interval: int = 36500  # days
    leech_lapses: int = 8
    leech_action: str = "suspend"  # or "tag": mark the card a leech and keep showing it
    # Which new cards come first, and which siblings (cards of one concept) wait for another day;
    # kb.store.reviews.build_queue says what each order does.
    new_card_order: str = "definition-first"
    bury_new_siblings: bool = True
    bury_review_siblings: bool = True
    theme: str | None = None  # the TUI's theme, as last chosen (None: Textual's default)
    language: str | None = None  # en | zh | both; None: from the locale (LC_ALL, LC_MESSAGES, LANG)
    # Display formulas as images where the terminal shows graphics (auto), always (images), or as
    # Unicode text (text).
    formulas: str = "auto"
    # A PostgreSQL server (postgresql+psycopg://user:password@host/db) instead of $KB_HOME/kb.sqlite.
    database_url: str | None = None
    # Whose reviews, schedules, card marks, settings in the database and trust these are (concepts
    # and decks are shared); None: the login name.
    user: str | None = None

    @property
    def user_name(self) -> str:
        return self.user or default_user()

    @property
    def content_language(self) -> str:
        """The language concepts and cards are shown in: the setting, or the locale's (Chinese
        locales: zh; others: both, as the bundled deck is bilingual)."""
        if self.language:
            return self.language
        for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
            value = os.environ.get(variable)
            if value:
                return "zh" if value.lower().startswith("zh") else "both"
        return "both"

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
        decks = [Deck(self.bundled_content, "bundled", True, "bundled"), Deck(self.notes_dir, "notes", True, "notes")]
        seen = {d.path.resolve() for d in decks}
        for path in self.extra_content:
            if path.resolve() not in seen:
                seen.add(path.resolve())
                decks.append(Deck(path, path.name or str(path), False))
        # Decks brought in by `kb import` (hidden directories are imports being staged).
        for path in self.imported_decks():
            if path.resolve() not in seen:
                seen.add(path.resolve())
                decks.append(Deck(path, path.name, False, "imported"))
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


SETTINGS_FILE = "settings.toml"


class SettingsError(KbError, ValueError):
    """A bad setting: the message names the file (with its line) or the variable, and the key;
    `path` is the settings file when the problem is in it."""


def _number(kind: type, low: float, high: float) -> Callable[[object], object]:
    def parse(value: object) -> object:
        if isinstance(value, bool) or (kind is int and isinstance(value, float)):
            raise ValueError(f"expected a {'whole ' if kind is int else ''}number")
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not a {'whole ' if kind is int else ''}number") from None
        if not low <= number <= high:
            raise ValueError(f"{value!r} must be between {low:g} and {high:g}")
        return number

    return parse


def _zone(value: object) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a known time zone (e.g. Asia/Shanghai, Europe/Berlin)") from None
    return str(value)


STEP_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_steps(text: str) -> tuple:
    """Learning steps as Anki writes them ("1m 10m", "30s 5m 1h", "" for none) as timedeltas."""
    import re
    from datetime import timedelta

    steps = []
    for word in str(text).replace(",", " ").split():
        match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", word)
        if not match:
            raise ValueError(f"{word!r} is not a step: write each as a number and a unit, e.g. 1m 10m 1h (s, m, h, d)")
        seconds = float(match.group(1)) * STEP_UNITS[match.group(2)]
        if not 1 <= seconds <= 30 * 86400:
            raise ValueError(f"{word!r}: a step lasts from 1s to 30d")
        steps.append(timedelta(seconds=seconds))
    if len(steps) > 20:
        raise ValueError("at most 20 steps")
    return tuple(steps)


def _steps(value: object) -> str:
    parse_steps(str(value))
    return " ".join(str(value).replace(",", " ").split())


def _choice(*choices: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"{value!r} must be one of: {', '.join(choices)}")
        return text

    return parse


def _yes_no(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"{value!r} must be true or false")


def _theme(value: object) -> str:
    text = str(value).strip()
    if not text or len(text) > 60:
        raise ValueError("expected the name of a theme (e.g. textual-dark, textual-light, nord)")
    return text


def default_user() -> str:
    """The login name (the default KB_USER); "kb" where there is none (a container without one)."""
    import getpass

    try:
        name = getpass.getuser()
    except (OSError, KeyError):
        return "kb"
    try:
        return _user(name)
    except ValueError:
        return "kb"


def _user(value: object) -> str:
    import re

    text = str(value).strip()
    if not re.fullmatch(r"[\w.@+-]{1,64}", text):
        raise ValueError(f"{value!r} is not a user name (letters, digits and . _ @ + -, at most 64)")
    return text


def _database_url(value: object) -> str:
    text = str(value).strip()
    if not text.startswith(("postgresql+psycopg://", "postgresql://", "postgres://")):
        raise ValueError(
            f"{value!r} is not a PostgreSQL URL (postgresql+psycopg://user:password@host:port/database); "
            "unset it to use $KB_HOME/kb.sqlite"
        )
    return text


@dataclass(frozen=True)
class Option:
    """One user setting: `key` in settings.toml and `kb config`, KB_<KEY> in the environment."""

    key: str
    field: str
    parse: Callable[[object], object]
    help: str

    @property
    def variable(self) -> str:
        return f"KB_{self.key.upper()}"


OPTIONS: tuple[Option, ...] = (
    Option("new_per_day", "new_per_day", _number(int, 0, 10_000), "new cards a day"),
    Option("reviews_per_day", "reviews_per_day", _number(int, 0, 100_000), "reviews a day at most"),
    Option("desired_retention", "desired_retention", _number(float, 0.7, 0.99), "the chance of recall FSRS aims for"),
    Option("learning_steps", "learning_steps", _steps, "the steps of a new card before it graduates (e.g. 1m 10m)"),
    Option("relearning_steps", "relearning_steps", _steps, "the steps of a forgotten card (e.g. 10m; empty: none)"),
    Option("maximum_interval", "maximum_interval", _number(int, 1, 36500), "the longest interval, days"),
    Option(
        "leech_threshold",
        "leech_lapses",
        _number(int, 1, 99),
        "lapses that make a card a leech (again every half as many after)",
    ),
    Option(
        "leech_action",
        "leech_action",
        _choice("suspend", "tag"),
        "what a leech gets: suspend, or tag and keep showing it",
    ),
    Option(
        "new_card_order",
        "new_card_order",
        _choice("definition-first", "concept", "kind", "random"),
        "which new cards come first: definition-first, concept, kind or random",
    ),
    Option(
        "bury_new_siblings",
        "bury_new_siblings",
        _yes_no,
        "a new card waits a day when a card of its concept was shown today",
    ),
    Option(
        "bury_review_siblings",
        "bury_review_siblings",
        _yes_no,
        "a due review waits a day when a card of its concept was shown today",
    ),
    Option("rollover_hour", "rollover_hour", _number(int, 0, 23), "the local hour a study day starts"),
    Option("tz", "timezone", _zone, "the IANA time zone of study days (default: the system's)"),
    Option(
        "language",
        "language",
        _choice("en", "zh", "both"),
        "the language of concepts and cards: en, zh or both (default: zh for a Chinese locale, else both)",
    ),
    Option(
        "formulas",
        "formulas",
        _choice("auto", "images", "text"),
        "display formulas as images where the terminal shows graphics (auto), always (images), or as text",
    ),
    Option("theme", "theme", _theme, "the TUI's theme (f2 switches dark and light; the palette offers all)"),
    Option("run_wall_s", "run_wall_s", _number(float, 0.1, 3600), "a snippet's wall-time limit, seconds"),
    Option("run_cpu_s", "run_cpu_s", _number(float, 1, 3600), "a snippet's CPU-time limit, seconds"),
    Option(
        "database_url",
        "database_url",
        _database_url,
        "a PostgreSQL server to keep the data in (postgresql+psycopg://user:password@host/db; default: $KB_HOME/kb.sqlite)",
    ),
    Option("user", "user", _user, "whose reviews, schedules and trust these are (default: the login name)"),
    Option("run_memory_mb", "run_memory_mb", _number(int, 256, 1 << 20), "a snippet's memory limit, MiB"),
)
OPTIONS_BY_KEY = {o.key: o for o in OPTIONS}


def _unknown_key(key: str) -> str:
    import difflib

    guess = difflib.get_close_matches(key, list(OPTIONS_BY_KEY), n=1)
    return (
        f"unknown setting {key!r}"
        + (f" (did you mean {guess[0]!r}?)" if guess else "")
        + f"; the settings are: {', '.join(OPTIONS_BY_KEY)}"
    )


def read_settings_file(home: Path, *, change: tuple[str, object | None] | None = None) -> dict[str, object]:
    """The settings in $KB_HOME/settings.toml, validated: {key: value}; {} when there is none.

    `change` (key, value or None to remove) is applied before the values are checked, so a bad
    value can be replaced or removed.
    """
    import tomllib

    path = home / SETTINGS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read it ({exc})", path=path) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        import re

        where = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        position = f"{where.group(1)}:{where.group(2)}:" if where else ""
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise SettingsError(f"{path}:{position} {message}", path=path) from None
    if change is not None:
        key, value = change
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    out = {}
    for key, value in data.items():
        line = next((i for i, row in enumerate(text.splitlines(), 1) if row.strip().startswith(key)), 1)
        option = OPTIONS_BY_KEY.get(key)
        if option is None:
            raise SettingsError(f"{path}:{line}: {_unknown_key(key)}", path=path)
        try:
            out[key] = option.parse(value)
        except ValueError as exc:
            raise SettingsError(f"{path}:{line}: {key}: {exc}", path=path) from None
    return out


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_setting(home: Path, key: str, value: object | None) -> Path:
    """Set (or, with None, remove) one setting in $KB_HOME/settings.toml, validated; returns the file."""
    option = OPTIONS_BY_KEY.get(key)
    if option is None:
        raise SettingsError(_unknown_key(key))
    if value is not None:
        try:
            value = option.parse(value)
        except ValueError as exc:
            raise SettingsError(f"{key}: {exc}") from None
    current = read_settings_file(home, change=(key, value))
    home.mkdir(parents=True, exist_ok=True)
    path = home / SETTINGS_FILE
    lines = ["# kb's settings: `kb config list` shows them all; KB_<NAME> in the environment overrides each.\n"]
    lines += [f"{k} = {_toml_value(current[k])}\n" for k in OPTIONS_BY_KEY if k in current]
    temporary = path.with_suffix(".toml.tmp")
    temporary.write_text("".join(lines), encoding="utf-8")
    temporary.replace(path)
    return path


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings: defaults, then $KB_HOME/settings.toml, then the environment (KB_HOME, KB_CONTENT,
    KB_<SETTING>). A bad value is a SettingsError naming its file and line, or its variable."""
    env = os.environ if env is None else env
    home_text = env.get("KB_HOME")
    if home_text:
        home = Path(home_text).expanduser().resolve()
    else:
        import platformdirs  # only needed when KB_HOME is unset

        home = platformdirs.user_data_path("kb", appauthor=False)
    extra = tuple(Path(p).expanduser().resolve() for p in env.get("KB_CONTENT", "").split(os.pathsep) if p.strip())
    values: dict = {OPTIONS_BY_KEY[k].field: v for k, v in read_settings_file(home).items()}
    if env.get("KB_LANG") and not env.get("KB_LANGUAGE"):  # the short name works too
        env = {**env, "KB_LANGUAGE": env["KB_LANG"]}
    for option in OPTIONS:
        raw = env.get(option.variable)
        if raw:
            try:
                values[option.field] = option.parse(raw)
            except ValueError as exc:
                raise SettingsError(f"{option.variable}={raw!r}: {exc}") from None
    if env.get("KB_BUNDLED_CONTENT"):  # another bundled deck (packagers, tests); default: content/
        values["bundled_content"] = Path(env["KB_BUNDLED_CONTENT"]).expanduser().resolve()
    return Settings(home=home, extra_content=extra, **values)


def setting_rows(stored: Mapping[str, object], *, environ: Mapping[str, str] | None = None) -> list[dict[str, object]]:
    """Every setting as `kb config list` and the settings screen show it: key, value, where the
    value comes from (an environment variable, settings.toml, or the default) and what it does."""
    from dataclasses import fields

    env = os.environ if environ is None else environ
    defaults = {f.name: f.default for f in fields(Settings)}
    rows: list[dict[str, object]] = []
    for option in OPTIONS:
        value: object
        if env.get(option.variable):
            value, source = env[option.variable], option.variable
        elif option.key == "language" and env.get("KB_LANG"):  # the short name load_settings takes too
            value, source = env["KB_LANG"], "KB_LANG"
        elif option.key in stored:
            value, source = stored[option.key], "settings.toml"
        else:
            value, source = defaults.get(option.field), "default"
        rows.append({"key": option.key, "value": value, "source": source, "help": option.help})
    return rows
