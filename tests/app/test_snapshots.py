"""SVG snapshots of the main screens (pytest-textual-snapshot). Update with --snapshot-update
only after looking at the report; generated on Python 3.11 with textual 8.2.8."""

from __future__ import annotations

from helpers import settle

SIZE = (100, 30)


async def _settled(pilot) -> None:
    await settle(pilot.app, pilot)


class TestMainScreens:
    def test_browse(self, snap_compare, make_app):
        assert snap_compare(make_app(), terminal_size=SIZE, run_before=_settled)

    def test_search_in_chinese(self, snap_compare, make_app):
        async def search(pilot):
            await _settled(pilot)
            await pilot.press("slash", "卷", "积")
            await _settled(pilot)

        assert snap_compare(make_app(), terminal_size=SIZE, run_before=search)

    def test_concept(self, snap_compare, make_app):
        async def open_concept(pilot):
            await _settled(pilot)
            await pilot.press("slash", *"attention", "enter", "enter")
            await _settled(pilot)

        assert snap_compare(make_app(), terminal_size=SIZE, run_before=open_concept)

    def test_quiz_revealed(self, snap_compare, make_app):
        async def quiz(pilot):
            await _settled(pilot)
            await pilot.press("q")
            await _settled(pilot)
            await pilot.press("space")
            await _settled(pilot)

        assert snap_compare(make_app(), terminal_size=SIZE, run_before=quiz)

    def test_at_80x24(self, snap_compare, make_app):
        assert snap_compare(make_app(), terminal_size=(80, 24), run_before=_settled)
