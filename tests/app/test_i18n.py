"""kb's own words in Chinese: the catalogue is complete for kb's keys and for every `_()` of the code,
holds no dead entries, the compiled file agrees with its source, a Chinese user sees Chinese keys in
the footer and the help, and `kb quiz --plain` asks in Chinese."""

from __future__ import annotations

import ast
import gettext
import importlib
import os
import pkgutil
import re
import string
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from textual.binding import Binding
from textual.widgets import Static

from app.i18n import LOCALE_DIR
from helpers import FIXED_NOW, settle, text_of, write_concept

ROOT = Path(__file__).resolve().parents[2]
PO = LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "kb.po"
MO = LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "kb.mo"
CHINESE = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")  # characters and full-width punctuation


def _unquote(text: str) -> str:
    """A PO string's text (its escapes are C's: \\n, \\", \\\\)."""
    return ast.literal_eval(f'"{text}"')


def po_entries() -> dict[str, str]:
    text = PO.read_text(encoding="utf-8")
    pairs = re.findall(r'^msgid "((?:[^"\\]|\\.)*)"\nmsgstr "((?:[^"\\]|\\.)*)"', text, re.M)
    return {_unquote(en): _unquote(zh) for en, zh in pairs if en}


def source_files() -> list[Path]:
    return sorted(p for top in ("app", "kb") for p in (ROOT / top).rglob("*.py"))


def wrapped_words() -> tuple[set[str], set[str], list[str]]:
    """(every string literal of app/ and kb/, the literals given to `_()` or `N_()`, and the calls of
    `_()` that build their text in place: an f-string or a concatenation cannot be looked up)."""
    literals, wrapped, built = set(), set(), []
    for path in source_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                literals.add(node.value)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_", "N_"):
                (argument,) = node.args
                if isinstance(argument, ast.Constant):
                    wrapped.add(argument.value)
                elif isinstance(argument, (ast.JoinedStr, ast.BinOp)):
                    built.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return literals, wrapped, built


def kb_binding_words() -> set[str]:
    """The descriptions and tooltips of the keys kb's own screens and app define."""
    import app.app
    import app.screens

    modules = [app.app] + [
        importlib.import_module(f"app.screens.{m.name}") for m in pkgutil.iter_modules(app.screens.__path__)
    ]
    words = set()
    for module in modules:
        for obj in vars(module).values():
            if isinstance(obj, type) and obj.__module__ == module.__name__:
                for binding in obj.__dict__.get("BINDINGS", []):
                    if isinstance(binding, Binding):
                        words |= {w for w in (binding.description, binding.tooltip) if w and not w.isdigit()}
    return words


def test_the_compiled_catalogue_agrees_with_its_source():
    with MO.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    entries = po_entries()
    assert entries and all(compiled.gettext(en) == zh for en, zh in entries.items())
    assert all(CHINESE.search(zh) or zh == en for en, zh in entries.items())
    assert len(entries) == len(re.findall(r'^msgid "(?!")', PO.read_text(encoding="utf-8"), re.M)), (
        "an entry not on one line"
    )


def test_every_key_of_kb_has_its_chinese_words():
    missing = kb_binding_words() - set(po_entries())
    assert not missing, sorted(missing)


async def test_a_chinese_user_sees_chinese_keys_and_labels(app_settings):
    from app.app import KBApp
    from app.i18n import set_language

    app = KBApp(replace(app_settings, language="zh"), clock=lambda: FIXED_NOW, watch=False)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            footer = " ".join(b.description for items in app.screen._bindings.key_to_bindings.values() for b in items)
            assert "测验" in footer and "搜索" in footer and "统计" in footer
            app.open_concept("self-attention")
            await settle(app, pilot)
            assert text_of(app.screen.query_one("#formulas", Static)).startswith("公式")
            await pilot.press("question_mark")
            await settle(app, pilot)
            help_text = "\n".join(text_of(s) for s in app.screen.query(Static))
            assert "按键" in help_text and "运行 snippet" in help_text
    finally:
        set_language("en")


def test_every_wrapped_word_has_its_chinese_words_and_every_entry_is_used():
    literals, wrapped, built = wrapped_words()
    assert not built, f"_() of a text built in place (use a placeholder and .format): {built}"
    entries = po_entries()
    missing = sorted(wrapped - set(entries))
    assert not missing, f"_() words without a translation in kb.po: {missing}"
    dead = sorted(set(entries) - literals)
    assert not dead, f"kb.po entries no code of app/ or kb/ uses: {dead}"


def test_the_placeholders_of_each_translation_are_its_source_s():
    def fields(text: str) -> list[str]:
        return sorted(
            f"{name}!{conversion}:{spec}"
            for _, name, spec, conversion in string.Formatter().parse(text)
            if name is not None
        )

    wrong = {en: zh for en, zh in po_entries().items() if fields(en) != fields(zh)}
    assert not wrong, wrong


def test_kb_quiz_plain_asks_and_sums_up_in_chinese(tmp_path, deck):
    write_concept(deck, "only", extra="cards:\n  - {type: typed, id: t, question: 'Type it?', answer: 'it|that'}\n")
    env = {
        **os.environ,
        "KB_HOME": str(tmp_path / "home"),
        "KB_BUNDLED_CONTENT": str(deck),
        "KB_TZ": "UTC",
        "KB_LANG": "zh",
    }
    env.pop("KB_CONTENT", None)
    env.pop("KB_LANGUAGE", None)
    quiz = [sys.executable, "-m", "kb", "quiz", "--plain"]
    # The definition card takes any line; 良好 (good, typed in Chinese) rates it; then q at the next answer.
    done = subprocess.run(quiz, env=env, input="whatever\n良好\nq\n", capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "回答> " in out and "--- 答案 ---" in out and "评分 [1 重来 " in out and "退出> " in out
    assert "今天还剩" in out and "已记录：良好" in out and "已复习 1 张，记住 1 张" in out
    for english in ("answer> ", "--- answer ---", "rate [", "left today", "recorded:", "reviewed,", "next 7 days"):
        assert english not in out, english
    # A search that finds no card: the summary says that nothing is due, in Chinese.
    done = subprocess.run(
        [*quiz, "--search", "concept:nowhere"], env=env, input="", capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    assert "已复习 0 张" in done.stdout and "现在没有到期的卡片：明天再来，或者添加笔记" in done.stdout
    assert "nothing due right now" not in done.stdout
