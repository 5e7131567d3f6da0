"""With the language `zh`, every main screen of the TUI speaks Chinese: its own words (keys, labels,
titles, placeholders, messages) are the catalogue's, and no English word of the TUI is left on screen.
Deck text (titles, definitions, card ids, the note template) is the deck's and is not checked."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest
from rich.console import Console

from helpers import FIXED_NOW, settle, write_concept

SIZE = (130, 50)
# The TUI's own English words that no screen may show in Chinese (whole words, case as written).
ENGLISH = (
    "Pitfalls",
    "Formulas",
    "Sources",
    "Search",
    "Quit",
    "Show answer",
    "Settings",
    "Help",
    "Back",
    "Stats",
    "Quiz",
    "Cards",
    "Undo",
    "Save",
    "Cancel",
    "Keys",
    "Find",
    "Leave",
    "Change",
    "Close",
    "palette",
    "Loading",
    "Opening",
    "due today",
    "reviewed",
    "Nothing",
    "No snippet",
    "Not run yet",
    "Last run",
    "Run snippet",
    "All categories",
    "concepts",
    "card(s)",
    "history",
    "never answered",
    "Retention",
    "Reviews",
    "True retention",
    "Due today",
    "New note",
    "Editing",
    "Try again",
    "Browse anyway",
    "could not be opened",
    "type your answer",
    "space shows the answer",
    "Next 7 days",
    "Related and prerequisite",
)


def screen_text(app, *, leave_out=None) -> str:
    """What the terminal shows now, as text (the lines of `leave_out`, a widget, left out)."""
    console = Console(
        width=app.size.width,
        height=app.size.height,
        file=io.StringIO(),
        record=True,
        force_terminal=True,
        color_system=None,
        legacy_windows=False,
    )
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    lines = console.export_text().splitlines()
    if leave_out is not None:
        region = leave_out.region
        lines = [line for y, line in enumerate(lines) if not region.y <= y < region.bottom]
    return "\n".join(lines)


def assert_chinese(text: str, *expected: str) -> None:
    missing = [word for word in expected if word not in text]
    assert not missing, f"missing {missing} in:\n{text}"
    english = [word for word in ENGLISH if re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", text)]
    assert not english, f"English words of the TUI {english} in:\n{text}"


@pytest.fixture
def zh_app(app_settings, deck, monkeypatch):
    from textual.widgets import Input

    from app.app import KBApp
    from app.i18n import set_language

    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None, raising=False)
    write_concept(
        deck,
        "layer-norm",
        title_en="Layer Norm",
        title_zh="层归一化",
        category="layers",
        extra="pitfalls:\n  - en: Not batch norm.\n    zh: 不是批归一化。\n"
        "sources:\n  - title: Ba et al. (2016)\n    url: https://arxiv.org/abs/1607.06450\n",
    )
    app = KBApp(replace(app_settings, language="zh"), clock=lambda: FIXED_NOW, watch=False, keep_running_on_error=False)
    yield app
    set_language("en")  # the language is the process's: the next test starts in English


async def test_browse_help_and_the_palette_in_chinese(zh_app):
    app = zh_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert_chinese(
            screen_text(app), "全部分类", "注意力", "搜索", "测验", "统计", "个概念", "张卡片到期", "命令面板"
        )
        await pilot.press("question_mark")
        await settle(app, pilot)
        assert_chinese(screen_text(app), "按键：浏览", "边输入边搜索", "本界面的所有按键", "ctrl+p 可按标题")
        await pilot.press("escape", "ctrl+p")
        await settle(app, pilot)
        assert_chinese(screen_text(app), "搜索命令")


async def test_the_concept_screen_in_chinese(zh_app):
    app = zh_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.open_concept("layer-norm")
        await settle(app, pilot)
        assert_chinese(screen_text(app), "层归一化", "易错点", "不是批归一化", "参考来源", "没有 snippet", "返回")
        app.open_concept("self-attention")
        await settle(app, pilot)
        text = screen_text(app)
        assert_chinese(
            text, "公式", "按 l 显示 LaTeX 源码", "相关概念与前置概念", "前置：", "尚未运行：按 r", "运行 snippet"
        )


async def test_the_quiz_from_first_card_to_summary_in_chinese(zh_app):
    from app.screens.quiz import QuizScreen

    app = zh_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("q")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, QuizScreen)
        assert_chinese(screen_text(app), "第 1 张，共", "新卡片", "显示答案", "离开")
        for _ in range(20):
            if screen.finished:
                break
            card = screen.item.card
            if card.auto_graded and not card.options:
                await pilot.press(*"cross-correlation", "enter")
            else:
                await pilot.press("space")
            await settle(app, pilot)
            assert_chinese(screen_text(app), "重来", "良好", "简单")
            await pilot.press("3")
            await settle(app, pilot)
        assert screen.finished
        assert_chinese(screen_text(app), "现在没有要回答的卡片了", "已复习", "未来 7 天", "返回浏览")


async def test_the_card_browser_in_chinese(zh_app):
    from textual.widgets import DataTable

    app = zh_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("c")
        await settle(app, pilot)
        assert_chinese(screen_text(app), "卡片", "类型", "状态", "到期日", "张卡片", "历史", "从未回答", "暂停", "搁置")
        await pilot.press("s")
        await settle(app, pilot)
        table = app.screen.query_one("#card-table", DataTable)
        assert table.get_cell(app.screen.selected, "flags").plain == "已暂停"  # the card's flags
        assert_chinese(screen_text(app), "2026-11-26  暂停")  # its history
        await pilot.press("t")
        await settle(app, pilot)
        messages = [n.message for n in app._notifications]
        assert "已暂停 1 张卡片（按 u 撤销）" in messages and "已按卡片 ↑ 排序" in messages, messages


async def test_settings_and_stats_in_chinese(zh_app):
    app = zh_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.open_screen("settings")
        await settle(app, pilot)
        assert_chinese(screen_text(app), "new_per_day", "默认", "（系统）", "每天的新卡片数", "返回")
        await pilot.press("enter")
        await settle(app, pilot)
        assert_chinese(screen_text(app), "new_per_day", "每天的新卡片数")
        await pilot.press("escape", "escape")
        await settle(app, pilot)
        await pilot.press("s")
        await settle(app, pilot)
        assert_chinese(
            screen_text(app), "卡片", "今日到期", "记忆率", "真实记忆率", "按周", "每日复习数", "未来 7 天到期"
        )


async def test_the_note_editor_in_chinese(zh_app):
    from textual.widgets import TextArea

    app = zh_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("a")
        await settle(app, pilot)
        editor = app.screen.query_one("#editor", TextArea)
        # The template in the editor is the note's own text (YAML with English comments), not the TUI's.
        assert_chinese(screen_text(app, leave_out=editor), "新笔记：编辑 YAML", "保存", "取消")
        await pilot.press("x", "escape")
        await settle(app, pilot)
        assert_chinese(screen_text(app), "这条笔记有未保存的修改", "放弃修改", "继续编辑")


async def test_the_open_failed_screen_in_chinese(zh_app, app_settings):
    from app.screens.open_failed import OpenFailedScreen

    app_settings.home.mkdir(parents=True)
    (app_settings.home / "kb.sqlite").write_bytes(b"this is not a database at all" * 100)
    app = zh_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, OpenFailedScreen)
        error = app.screen.query_one("#open-error")
        # The reason is kb's own message (English); the screen's words around it are Chinese.
        assert_chinese(screen_text(app, leave_out=error), "无法打开知识库", "r：重试", "仍然浏览")
        await pilot.press("escape", "q")
        await settle(app, pilot)
        assert app._notifications and list(app._notifications)[-1].message.startswith("无法打开知识库：")
