"""Stats: reviews per day (30 days), retention, the 7-day forecast, as charts with the numbers."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Header, Static

from app.i18n import _
from app.messages import StatsLoaded
from app.screens.base import KBScreen
from app.text import pad, plain
from app.work import reports_failure
from kb.service import true_retention_lines


class StatsScreen(KBScreen):
    BINDINGS = [Binding("escape", "back", "Back", id="back")]

    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot

        yield Header()
        with VerticalScroll(id="stats"):
            yield Static(_("Loading…"), id="numbers")
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
        retention = pad(_("n/a") if s["retention_30d"] is None else f"{s['retention_30d']:.1%}", 6, right=True)
        parameters = _(s["parameters"])  # "default" or "optimized"
        lines = [
            _("Cards      {total:>6}   new {new}, learning {learning}, review {review}, suspended {suspended}").format(
                total=s["cards_total"],
                new=s["cards_new"],
                learning=s["cards_learning"],
                review=s["cards_review"],
                suspended=s["cards_suspended"],
            ),
            _("Reviews    {total:>6}   today {today}, streak {streak} day(s)").format(
                total=s["reviews_total"], today=s["reviews_today"], streak=s["streak_days"]
            ),
            _("Due today  {due:>6}   next 7 days: {forecast}").format(
                due=s["due_today"], forecast=" ".join(map(str, s["forecast_7d"]))
            ),
            _(
                "Retention  {retention}   (review cards, last 30 days; desired {desired:.0%}); FSRS parameters: {parameters}"
            ).format(
                retention=retention,
                desired=self.app.service.settings.desired_retention,
                parameters=parameters,
            ),
            _("Reviews per day (last 30): ") + " ".join(str(n) for _day, n in message.per_day),
            "",
            *true_retention_lines(s["true_retention"], translate=_),
        ]
        self.query_one("#numbers", Static).update(plain("\n".join(lines)))
        per_day = self.query_one("#per-day", PlotextPlot)
        plt = per_day.plt
        plt.clear_data()
        plt.bar(list(range(-len(message.per_day) + 1, 1)), [n for _day, n in message.per_day])
        plt.title(_("Reviews per day (0 = today)"))
        per_day.refresh()
        forecast = self.query_one("#forecast", PlotextPlot)
        plt = forecast.plt
        plt.clear_data()
        plt.bar(list(range(7)), s["forecast_7d"])
        plt.title(_("Due in the next 7 days"))
        forecast.refresh()

    def action_back(self) -> None:
        self.app.pop_screen()
