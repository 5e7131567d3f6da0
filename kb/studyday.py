"""The study day, as in Anki: a local day that begins at the rollover hour ("next day starts at", 4 h).

Pure apart from `local_zone`, which reads the environment: the clock (`now`, UTC-aware) and the zone are
passed in. Correct across DST: a study day lasts 23 h or 25 h (23.5 h or 24.5 h on Lord Howe) around a
change, and every instant belongs to exactly one study day.

When the rollover time does not exist on a day (a spring-forward gap), the day begins at the first
instant after the gap; when it occurs twice (a fall-back), the day begins at its first occurrence and
does not end when the clock goes back. `day_start` is the authority, and `study_day` agrees with it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ONE_DAY = timedelta(days=1)
DEFAULT_ROLLOVER_HOUR = 4  # Anki's "next day starts at"
LOCALTIME = Path("/etc/localtime")
ZONEINFO_MARKER = "zoneinfo/"  # /etc/localtime usually links to .../zoneinfo/Area/City


def study_day(now: datetime, *, tz: tzinfo, rollover_hour: int = DEFAULT_ROLLOVER_HOUR) -> date:
    """The study day `now` belongs to: the local date, minus one day before the rollover hour.

    Raises:
        ValueError: If `now` is naive or `rollover_hour` is not in 0..23.
    """
    _check_aware(now)
    _check_hour(rollover_hour)
    local = now.astimezone(tz)
    day = local.date() if local.hour >= rollover_hour else local.date() - ONE_DAY
    # The wall-clock rule above differs from the bounds only when the clock goes back across the
    # rollover (or jumps over it); the bounds decide, so study days never overlap or repeat.
    while now < day_start(day, tz=tz, rollover_hour=rollover_hour):
        day -= ONE_DAY
    while now >= day_start(day + ONE_DAY, tz=tz, rollover_hour=rollover_hour):
        day += ONE_DAY
    return day


def day_start(day: date, *, tz: tzinfo, rollover_hour: int = DEFAULT_ROLLOVER_HOUR) -> datetime:
    """The UTC-aware instant study day `day` begins: the first instant whose local time is >= the rollover.

    Raises:
        ValueError: If `rollover_hour` is not in 0..23.
    """
    _check_hour(rollover_hour)
    return _day_start(day, tz, rollover_hour)


@lru_cache(maxsize=4096)  # every answer asks for a few; a time zone's rules do not change while kb runs
def _day_start(day: date, tz: tzinfo, rollover_hour: int) -> datetime:
    wall = datetime.combine(day, time(rollover_hour))
    first = wall.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)  # fold=0: the first of a repeat
    if _wall(first, tz) == wall:
        return first
    # `wall` lies in a gap: fold=1 reads it with the offset after the change (an instant before the
    # gap), fold=0 with the one before (after the gap). The day begins where the gap ends.
    before = wall.replace(tzinfo=tz, fold=1).astimezone(timezone.utc)
    low, high = sorted((before, first))
    lo_s, hi_s = 0, int((high - low).total_seconds())
    while hi_s - lo_s > 1:
        mid_s = (lo_s + hi_s) // 2
        if _wall(low + timedelta(seconds=mid_s), tz) >= wall:
            hi_s = mid_s
        else:
            lo_s = mid_s
    return low + timedelta(seconds=hi_s)


def day_bounds(day: date, *, tz: tzinfo, rollover_hour: int = DEFAULT_ROLLOVER_HOUR) -> tuple[datetime, datetime]:
    """The half-open UTC-aware interval [start, next day's start) of study day `day`."""
    return (
        day_start(day, tz=tz, rollover_hour=rollover_hour),
        day_start(day + ONE_DAY, tz=tz, rollover_hour=rollover_hour),
    )


def local_zone(
    name: str | None = None, *, environ: Mapping[str, str] | None = None, localtime: Path = LOCALTIME
) -> tzinfo:
    """`ZoneInfo(name)` if given, else the system's zone (`TZ`, then /etc/localtime), else UTC.

    Raises:
        ZoneInfoNotFoundError: If `name` is given and is not a known zone.
    """
    if name:
        try:
            return ZoneInfo(name)
        except (ValueError, OSError) as error:  # e.g. "../x" or a directory such as "America"
            raise ZoneInfoNotFoundError(f"unknown time zone {name!r}") from error
    env_tz = (os.environ if environ is None else environ).get("TZ", "").removeprefix(":")
    if env_tz:
        try:
            return ZoneInfo(env_tz)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass  # e.g. a POSIX rule string such as "CET-1CEST"; try the system file
    try:
        target = os.path.realpath(localtime)
        if ZONEINFO_MARKER in target:
            try:
                return ZoneInfo(target.rsplit(ZONEINFO_MARKER, 1)[1])
            except (ZoneInfoNotFoundError, ValueError, OSError):
                pass
        with open(localtime, "rb") as handle:
            return ZoneInfo.from_file(handle, key="localtime")
    except (OSError, ValueError):
        return timezone.utc


def _wall(instant: datetime, tz: tzinfo) -> datetime:
    """The naive local wall time of `instant` in `tz`."""
    return instant.astimezone(tz).replace(tzinfo=None)


def _check_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got naive {now!r}")


def _check_hour(rollover_hour: int) -> None:
    if isinstance(rollover_hour, bool) or not isinstance(rollover_hour, int) or not 0 <= rollover_hour <= 23:
        raise ValueError(f"rollover_hour must be an integer in 0..23, got {rollover_hour!r}")


__all__ = ["day_bounds", "day_start", "local_zone", "study_day"]
