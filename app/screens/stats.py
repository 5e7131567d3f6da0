"""Stats: reviews per day (30 days), retention, the 7-day forecast, as charts with the numbers."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Header, Static

from app.messages import StatsLoaded
from app.screens.base import KBScreen
from app.text import plain
from app.work import reports_failure
from kb.service import true_retention_lines


class StatsScreen(KBScreen):
    BINDINGS = [Binding("escape", "back", "Back", id="back")]

    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot

        yield Header()
        with VerticalScroll(id="stats"):
            yield Static("Loading…", id="numbers")
            with Horizontal(id="charts"):
                yield PlotextPlot(id="per-day")
                yield PlotextPlot(id="forecast")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="stats", exit_on_error=False)
    @reports_failure()
    def load(self) -> None:
        stats = self.app.service.stats()
        per_day = self.app.service.reviews_per_day(30)
        self.post_message(StatsLoaded(stats, per_day))

    @on(StatsLoaded)
    def _loaded(self, message: StatsLoaded) -> None:
        from textual_plotext import PlotextPlot

        s = message.stats
        retention = "n/a" if s["retention_30d"] is None else f"{s['retention_30d']:.1%}"
        lines = [
            f"Cards      {s['cards_total']:>6}   new {s['cards_new']}, learning {s['cards_learning']}, "
            f"review {s['cards_review']}, suspended {s['cards_suspended']}",
            f"Reviews    {s['reviews_total']:>6}   today {s['reviews_today']}, streak {s['streak_days']} day(s)",
            f"Due today  {s['due_today']:>6}   next 7 days: {' '.join(map(str, s['forecast_7d']))}",
            f"Retention  {retention:>6}   (review cards, last 30 days; desired "
            f"{self.app.service.settings.desired_retention:.0%}); FSRS parameters: {s['parameters']}",
            "Reviews per day (last 30): " + " ".join(str(n) for _, n in message.per_day),
            "",
            *true_retention_lines(s["true_retention"]),
        ]
        self.query_one("#numbers", Static).update(plain("\n".join(lines)))
        per_day = self.query_one("#per-day", PlotextPlot)
        plt = per_day.plt
        plt.clear_data()
        plt.bar(list(range(-len(message.per_day) + 1, 1)), [n for _, n in message.per_day])
        plt.title("Reviews per day (0 = today)")
        per_day.refresh()
        forecast = self.query_one("#forecast", PlotextPlot)
        plt = forecast.plt
        plt.clear_data()
        plt.bar(list(range(7)), s["forecast_7d"])
        plt.title("Due in the next 7 days")
        forecast.refresh()

    def action_back(self) -> None:
        self.app.pop_screen()
