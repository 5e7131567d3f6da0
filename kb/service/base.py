"""What every use case shares: the settings, the clock, the database (opened on first use), and
the user's study day. The use-case modules each add one concern to `KnowledgeBase`."""

from __future__ import annotations

from datetime import datetime, timezone
from importlib import metadata
from typing import TYPE_CHECKING, Any, Callable

from kb.config import Settings, load_settings

if TYPE_CHECKING:
    from datetime import date, tzinfo
    from pathlib import Path
    from typing import Self

    from kb.loader import SyncReport
    from kb.runner import WorkerPool
    from kb.scheduler import SchedulerConfig
    from kb.service.cards import CardView
    from kb.service.decks import DeckInfo
    from kb.store.engine import Engine


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def package_version(name: str) -> str | None:
    """An installed distribution's version, read without importing it; None when not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def save_user_setting(settings: Settings, key: str, value: object | None) -> None:
    """Keep one user setting in $KB_HOME/settings.toml (checked first; SettingsError says why not)."""
    from kb.config import write_setting

    write_setting(settings.home, key, value)


def is_damaged_database(exc: BaseException | None) -> bool:
    """Whether an error raised by the service means the database file was found damaged in use."""
    from kb.store.errors import StoreCorruptError

    return isinstance(exc, StoreCorruptError)


class ServiceBase:
    """The shared context: settings, clock and the lazily opened database engine."""

    if TYPE_CHECKING:
        # Use cases that others call, declared for the type checker; each module defines its own.
        def sync(self) -> SyncReport: ...
        def show(self, concept_id: str) -> dict | None: ...
        def devices(self) -> list[str]: ...
        def decks(self) -> list[DeckInfo]: ...
        def backup(self) -> Path: ...
        def search_cards(self, query: str) -> list[CardView]: ...

    def __init__(self, settings: Settings | None = None, *, clock: Callable[[], datetime] = utc_now):
        self.settings = settings or load_settings()
        self.clock = clock
        self._engine: Engine | None = None
        self._pool: WorkerPool | None = None  # a warm worker for run_snippet, started on first use
        self.notices: list[str] = []  # things opening the database did that the user should hear of

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from kb.store.engine import (  # sqlmodel costs ~0.4 s: only when needed
                open_engine,
                open_server_engine,
            )

            # The engine carries the user whose reviews, schedules and trust it reads and writes.
            user = self.settings.user_name
            if self.settings.database_url:
                self._engine = open_server_engine(self.settings.database_url, user=user)
            else:
                self._engine = open_engine(
                    self.settings.db_path,
                    now=self.clock(),
                    backup_day=self.study_day,
                    on_notice=self.notices.append,
                    user=user,
                )
        return self._engine

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def setting_rows(self) -> list[dict[str, object]]:
        """Every setting: key, value, where the value comes from, what it does (`kb config list`)."""
        from kb.config import read_settings_file, setting_rows

        return setting_rows(read_settings_file(self.settings.home))

    def change_setting(self, key: str, value: str | None) -> Path:
        """Check and store one setting in settings.toml (None: back to the default), and use it from
        now on unless the environment overrides it. SettingsError says why a value is refused."""
        import dataclasses
        import os

        from kb.config import OPTIONS_BY_KEY, write_setting

        path = write_setting(self.settings.home, key, value)
        option = OPTIONS_BY_KEY[key]
        if not os.environ.get(option.variable):
            default = next(f.default for f in dataclasses.fields(self.settings) if f.name == option.field)
            parsed: Any = option.parse(value) if value is not None else default
            self.settings = dataclasses.replace(self.settings, **{option.field: parsed})
        return path

    def zone(self) -> tzinfo:
        from kb.studyday import local_zone

        return local_zone(self.settings.timezone)

    def study_day(self, moment: datetime) -> date:
        """The study day `moment` belongs to (the user's zone, the day starting at the rollover hour)."""
        from kb.studyday import study_day

        return study_day(moment, tz=self.zone(), rollover_hour=self.settings.rollover_hour)

    def study_day_bounds(self, now: datetime | None = None) -> tuple[date, datetime, datetime]:
        """(study day, its start, the next day's start) for `now` in the user's zone."""
        from kb.studyday import day_bounds, study_day

        now = now or self.clock()
        day = study_day(now, tz=self.zone(), rollover_hour=self.settings.rollover_hour)
        start, end = day_bounds(day, tz=self.zone(), rollover_hour=self.settings.rollover_hour)
        return day, start, end

    def scheduler_config(self) -> SchedulerConfig:
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

    def _deck_name(self, deck_path: str) -> str:
        for deck in self.settings.decks():
            if str(deck.path) == deck_path:
                return deck.name
        return deck_path
