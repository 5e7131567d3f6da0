"""kb.studyday: Anki's study day across rollover, DST, travel and setting changes."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest

from kb.scheduler import SchedulerConfig, answer, next_states
from kb.studyday import day_bounds, day_start, local_zone, study_day

UTC = timezone.utc
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
TROLL = ZoneInfo("Antarctica/Troll")  # +00 <-> +02: two-hour gap and repeat
BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")
HONOLULU = ZoneInfo("Pacific/Honolulu")
STEP = timedelta(minutes=15)

# (zone, an instant inside the DST change, length of the study day that contains it at rollover 4)
DST_CHANGES = [
    pytest.param(NEW_YORK, datetime(2026, 3, 8, 7, 0, tzinfo=UTC), timedelta(hours=23), id="new-york-spring"),
    pytest.param(NEW_YORK, datetime(2026, 11, 1, 6, 0, tzinfo=UTC), timedelta(hours=25), id="new-york-fall"),
    pytest.param(LORD_HOWE, datetime(2026, 10, 3, 15, 30, tzinfo=UTC), timedelta(hours=23.5), id="lord-howe-spring"),
    pytest.param(LORD_HOWE, datetime(2026, 4, 4, 15, 0, tzinfo=UTC), timedelta(hours=24.5), id="lord-howe-fall"),
    pytest.param(TROLL, datetime(2026, 3, 29, 1, 0, tzinfo=UTC), timedelta(hours=22), id="troll-spring"),
    pytest.param(TROLL, datetime(2026, 10, 25, 1, 0, tzinfo=UTC), timedelta(hours=26), id="troll-fall"),
]


def local(tz, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=tz, fold=fold)


# --- the rollover boundary -------------------------------------------------------------------------


def test_0359_and_0400_local_are_different_study_days():
    before = local(BERLIN, 2026, 5, 10, 3, 59, 59)
    at = local(BERLIN, 2026, 5, 10, 4, 0)
    assert study_day(before, tz=BERLIN) == date(2026, 5, 9)
    assert study_day(at, tz=BERLIN) == date(2026, 5, 10)
    assert day_start(date(2026, 5, 10), tz=BERLIN) == at.astimezone(UTC)


def test_the_zone_of_now_does_not_matter_only_the_instant():
    now = datetime(2026, 5, 10, 1, 30, tzinfo=UTC)  # 03:30 in Berlin
    assert study_day(now, tz=BERLIN) == study_day(now.astimezone(TOKYO), tz=BERLIN) == date(2026, 5, 9)


def test_rollover_at_midnight_is_the_plain_local_date():
    assert study_day(local(BERLIN, 2026, 5, 10, 0, 0), tz=BERLIN, rollover_hour=0) == date(2026, 5, 10)
    assert study_day(local(BERLIN, 2026, 5, 9, 23, 59), tz=BERLIN, rollover_hour=0) == date(2026, 5, 9)


def test_day_bounds_are_utc_aware_and_half_open():
    start, end = day_bounds(date(2026, 5, 10), tz=BERLIN)
    assert (start, end) == (datetime(2026, 5, 10, 2, tzinfo=UTC), datetime(2026, 5, 11, 2, tzinfo=UTC))
    assert start.tzinfo == UTC and end.tzinfo == UTC
    assert study_day(start, tz=BERLIN) == date(2026, 5, 10)
    assert study_day(end, tz=BERLIN) == date(2026, 5, 11)


# --- DST -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tz", "change", "length"), DST_CHANGES)
def test_the_study_day_over_a_dst_change_is_short_or_long(tz, change, length):
    day = study_day(change, tz=tz)
    start, end = day_bounds(day, tz=tz)
    assert end - start == length
    for neighbour in (day - timedelta(days=1), day + timedelta(days=1)):
        start, end = day_bounds(neighbour, tz=tz)
        assert end - start == timedelta(hours=24)


@pytest.mark.parametrize("rollover_hour", [0, 1, 2, 3, 4, 23])
@pytest.mark.parametrize(("tz", "change", "length"), DST_CHANGES)
def test_every_instant_belongs_to_exactly_one_study_day(tz, change, length, rollover_hour):
    bounds: dict[date, tuple[datetime, datetime]] = {}
    days = []
    moment = change - timedelta(days=3, minutes=change.minute % 15)
    while moment < change + timedelta(days=4):
        day = study_day(moment, tz=tz, rollover_hour=rollover_hour)
        bounds.setdefault(day, day_bounds(day, tz=tz, rollover_hour=rollover_hour))
        start, end = bounds[day]
        assert start <= moment < end, (moment, day)
        days.append(day)
        moment += STEP
    assert all(later - earlier in (timedelta(0), timedelta(days=1)) for earlier, later in zip(days, days[1:]))
    ordered = sorted(bounds)
    assert ordered == [ordered[0] + timedelta(days=i) for i in range(len(ordered))]
    for earlier, later in zip(ordered, ordered[1:]):
        assert bounds[earlier][1] == bounds[later][0]  # no gap, no overlap
    assert sum((end - start for start, end in bounds.values()), timedelta(0)) == (
        bounds[ordered[-1]][1] - bounds[ordered[0]][0]
    )
    for day in ordered[1:-1]:  # each whole day holds exactly its length in 15-minute steps
        start, end = bounds[day]
        assert days.count(day) * STEP == end - start


def test_rollover_in_a_gap_starts_the_day_when_the_gap_ends():
    # New York springs from 02:00 to 03:00: a 02:00 rollover starts the day at 03:00 EDT.
    assert day_start(date(2026, 3, 8), tz=NEW_YORK, rollover_hour=2) == datetime(2026, 3, 8, 7, tzinfo=UTC)
    # Lord Howe springs from 02:00 to 02:30.
    assert day_start(date(2026, 10, 4), tz=LORD_HOWE, rollover_hour=2) == datetime(2026, 10, 3, 15, 30, tzinfo=UTC)
    # Troll springs from 01:00 to 03:00: 02:00 lies inside the gap, the day starts at 03:00 local.
    start = day_start(date(2026, 3, 29), tz=TROLL, rollover_hour=2)
    assert start == datetime(2026, 3, 29, 1, tzinfo=UTC)
    assert start.astimezone(TROLL).hour == 3
    assert study_day(start - timedelta(seconds=1), tz=TROLL, rollover_hour=2) == date(2026, 3, 28)


def test_rollover_in_a_repeat_starts_the_day_at_its_first_occurrence():
    # New York falls back from 02:00 EDT to 01:00 EST: 01:00 happens twice, the day starts at the first.
    assert day_start(date(2026, 11, 1), tz=NEW_YORK, rollover_hour=1) == datetime(2026, 11, 1, 5, tzinfo=UTC)
    second = local(NEW_YORK, 2026, 11, 1, 1, 30, fold=1)
    assert study_day(second, tz=NEW_YORK, rollover_hour=1) == date(2026, 11, 1)
    # Troll falls back from 03:00 to 01:00: after 02:00 (+02) the clock shows 01:xx again, and the
    # day that has begun does not end.
    assert day_start(date(2026, 10, 25), tz=TROLL, rollover_hour=2) == datetime(2026, 10, 25, 0, tzinfo=UTC)
    repeated = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert repeated.astimezone(TROLL).hour == 1
    assert study_day(repeated, tz=TROLL, rollover_hour=2) == date(2026, 10, 25)


# --- travel ----------------------------------------------------------------------------------------


def test_travel_tokyo_to_honolulu_may_move_the_study_day_back_without_harm():
    config = SchedulerConfig()
    first = datetime(2026, 5, 10, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
    second = first + timedelta(hours=1)  # landed: 16:00 the day before in Honolulu
    assert study_day(first, tz=TOKYO) == date(2026, 5, 10)
    assert study_day(second, tz=HONOLULU) == date(2026, 5, 9)
    state = answer(None, 3, first.astimezone(TOKYO), config=config)
    state = answer(state, 3, state.due, config=config)
    for rating, new in next_states(state, second.astimezone(HONOLULU), config=config).items():
        assert new.due > second and new.last_review == second, rating
    start, end = day_bounds(study_day(second, tz=HONOLULU), tz=HONOLULU)
    assert start <= second < end


# --- changing "next day starts at" -----------------------------------------------------------------


def test_changing_the_rollover_hour_recomputes_the_day():
    now = local(BERLIN, 2026, 5, 10, 5, 0)
    assert study_day(now, tz=BERLIN, rollover_hour=4) == date(2026, 5, 10)
    assert study_day(now, tz=BERLIN, rollover_hour=6) == date(2026, 5, 9)
    assert day_start(date(2026, 5, 10), tz=BERLIN, rollover_hour=6) == datetime(2026, 5, 10, 4, tzinfo=UTC)
    for hour in range(24):
        start, end = day_bounds(study_day(now, tz=BERLIN, rollover_hour=hour), tz=BERLIN, rollover_hour=hour)
        assert start <= now.astimezone(UTC) < end


# --- input checks and the local zone ---------------------------------------------------------------


@pytest.mark.parametrize("hour", [-1, 24, 4.0, True, None])
def test_rollover_hour_must_be_0_to_23(hour):
    with pytest.raises(ValueError, match="rollover_hour"):
        study_day(datetime(2026, 5, 10, tzinfo=UTC), tz=BERLIN, rollover_hour=hour)
    with pytest.raises(ValueError, match="rollover_hour"):
        day_bounds(date(2026, 5, 10), tz=BERLIN, rollover_hour=hour)


def test_naive_now_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        study_day(datetime(2026, 5, 10, 12, 0), tz=BERLIN)


def test_fixed_offset_zones_work():
    tz = timezone(timedelta(hours=5, minutes=30))
    assert study_day(datetime(2026, 5, 9, 22, 29, tzinfo=UTC), tz=tz) == date(2026, 5, 9)
    assert study_day(datetime(2026, 5, 9, 22, 30, tzinfo=UTC), tz=tz) == date(2026, 5, 10)


def test_local_zone_by_name():
    assert local_zone("Asia/Tokyo") == TOKYO
    with pytest.raises(ZoneInfoNotFoundError):
        local_zone("Not/A_Zone")
    with pytest.raises(ZoneInfoNotFoundError):
        local_zone("America")


def test_local_zone_from_tz_variable(tmp_path: Path):
    missing = tmp_path / "missing"
    assert local_zone(environ={"TZ": "Pacific/Honolulu"}, localtime=missing) == HONOLULU
    assert local_zone(environ={"TZ": ":Asia/Tokyo"}, localtime=missing) == TOKYO
    assert local_zone(environ={"TZ": "bogus+3"}, localtime=missing) == UTC


def test_local_zone_from_localtime_file(tmp_path: Path):
    source = Path("/usr/share/zoneinfo/Europe/Berlin")
    if not source.exists():
        pytest.skip("no system zoneinfo")
    link = tmp_path / "usr/share/zoneinfo/Europe/Berlin"
    link.parent.mkdir(parents=True)
    link.write_bytes(source.read_bytes())
    (tmp_path / "localtime").symlink_to(link)
    assert local_zone(environ={}, localtime=tmp_path / "localtime") == BERLIN
    copied = tmp_path / "copied"
    copied.write_bytes(source.read_bytes())
    zone = local_zone(environ={}, localtime=copied)
    assert local(BERLIN, 2026, 7, 1, 12).utcoffset() == datetime(2026, 7, 1, 12, tzinfo=zone).utcoffset()


def test_local_zone_falls_back_to_utc(tmp_path: Path):
    assert local_zone(environ={}, localtime=tmp_path / "missing") == UTC
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not a tzif file")
    assert local_zone(environ={}, localtime=garbage) == UTC
