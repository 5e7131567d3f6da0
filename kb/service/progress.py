"""Progress: statistics, true retention, and fitting FSRS parameters to the review log."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Callable

from kb.errors import KbError
from kb.service.base import ServiceBase

if TYPE_CHECKING:
    from datetime import date

    pass


class OptimizeError(KbError):
    """The optimizer subprocess failed (e.g. its extra dependencies are missing)."""


OPTIMIZER_COMMAND = (sys.executable, "-m", "kb.optimizer")


def true_retention_lines(table: dict, translate: Callable[[str], str] = str) -> list[str]:
    """Anki's True Retention table as text: by week and by month, beside the target (`translate`
    turns its words into the front end's language: the TUI passes kb.i18n's `_`)."""
    _ = translate
    lines = [
        _("True retention (recalled / reviews on a later day than the card's last; target {target:.0%})").format(
            target=table["target"]
        )
    ]
    for title, rows in ((_("by week"), table["weeks"]), (_("by month"), table["months"])):
        header = [_pad(title, 24), _pad(_("passed"), 8, right=True), _pad(_("reviews"), 9, right=True)]
        lines.append("  " + "".join(header) + _pad(_("retention"), 11, right=True))
        for row in rows:
            shown = "-" if row["retention"] is None else f"{row['retention']:.1%}"
            lines.append(f"  {row['period']:<24}{row['passed']:>8}{row['reviews']:>9}{shown:>11}")
    return lines


def _pad(text: str, width: int, *, right: bool = False) -> str:
    """`text` padded to `width` terminal cells (a Chinese character takes two)."""
    import unicodedata

    cells = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    gap = " " * max(0, width - cells)
    return gap + text if right else text + gap


class ProgressUseCases(ServiceBase):
    """Stats and the optimizer."""

    def stats(self) -> dict:
        from datetime import timedelta

        from kb.store.reviews import get_setting, stats_rows
        from kb.studyday import study_day

        now = self.clock()
        day, start, end = self.study_day_bounds(now)
        zone, hour = self.zone(), self.settings.rollover_hour
        raw = stats_rows(
            self.engine, since=now - timedelta(days=30), horizon=end + timedelta(days=7), day_start=start, day_end=end
        )
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
        return {
            **raw,
            "streak_days": streak,
            "forecast_7d": forecast,
            "parameters": "optimized" if get_setting(self.engine, "fsrs_parameters") else "default",
            "true_retention": self.true_retention(),
        }

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
        last_day: dict[str, date] = {}
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
            return {
                "period": label,
                "passed": passed,
                "reviews": total,
                "retention": round(passed / total, 4) if total else None,
            }

        return {
            "target": self.settings.desired_retention,
            "weeks": [
                row(f"{start.isoformat()}..{(start + timedelta(days=6)).isoformat()}", by_week[start])
                for start in week_starts
            ],
            "months": [row(f"{y:04d}-{m:02d}", by_month[(y, m)]) for y, m in month_keys],
        }

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

    def optimize(self, on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
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
        result: dict[str, Any] = {
            "fitted": False,
            "chosen": "current" if current else "default",
            "reviews": len(rows),
            "inter_day_reviews": inter_day,
            "minimum": MIN_INTER_DAY_REVIEWS,
            "evaluations": {},
        }
        if inter_day < MIN_INTER_DAY_REVIEWS:
            result["message"] = (
                f"nothing fitted: {inter_day} of your {len(rows)} reviews came on a later study day "
                f"than the card's previous review, and a fit needs at least {MIN_INTER_DAY_REVIEWS}; "
                f"keeping the {in_use} parameters"
            )
            return result
        payload = json.dumps({"reviews": rows, "current": current})
        with tempfile.TemporaryFile("w+") as out:
            with subprocess.Popen(
                list(OPTIMIZER_COMMAND), stdin=subprocess.PIPE, stdout=out, stderr=subprocess.PIPE, text=True
            ) as proc:
                assert proc.stdin is not None and proc.stderr is not None  # both are pipes
                proc.stdin.write(payload)
                proc.stdin.close()
                said = []
                for line in proc.stderr:
                    if line.startswith(PROGRESS_PREFIX):
                        done, _, total = line[len(PROGRESS_PREFIX) :].strip().partition("/")
                        if on_progress is not None:
                            on_progress(int(done), int(total))
                    else:
                        said.append(line.rstrip())
            if proc.returncode != 0:
                raise OptimizeError("optimize: " + ([s for s in said if s.strip()] or ["the optimizer failed"])[-1])
            out.seek(0)
            report = json.load(out)
        evaluations = {
            name: report[key]
            for name, key in (("default", "default"), ("current", "current"), ("fitted", "candidate"))
            if report.get(key)
        }
        chosen = report["chosen"]
        result.update(fitted=True, chosen=chosen, evaluations=evaluations, parameters=report["weights"])
        if chosen != "current":
            if not self.settings.database_url:  # (a server's backups are the server's own)
                self.backup()  # new parameters change every interval from now on: keep the state before
            set_setting(self.engine, "fsrs_parameters", report["weights"] if chosen == "fitted" else None)
        set_setting(
            self.engine, "fsrs_fit", {"chosen": chosen, "inter_day_reviews": inter_day, "at": self.clock().isoformat()}
        )
        message = {
            "fitted": "the fitted parameters predict your history best; they are used from now on",
            "current": "the parameters in use predict your history at least as well as the fitted ones; keeping them",
            "default": "the default parameters predict your history at least as well as the fitted ones; "
            "using the defaults",
        }[chosen]
        result["message"] = f"fitted to {inter_day} inter-day reviews ({len(rows)} reviews in all): {message}"
        return result
