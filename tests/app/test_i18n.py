"""The TUI's own words in Chinese: the catalogue is complete for kb's keys, the compiled file
agrees with its source, and a Chinese user sees Chinese keys in the footer and the help."""

from __future__ import annotations

import gettext
import importlib
import pkgutil
import re
from dataclasses import replace

from textual.binding import Binding
from textual.widgets import Static

from app.i18n import LOCALE_DIR
from helpers import FIXED_NOW, settle, text_of

PO = LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "kb.po"
MO = LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "kb.mo"


def po_entries() -> dict[str, str]:
    text = PO.read_text(encoding="utf-8")
    pairs = re.findall(r'^msgid "((?:[^"\\]|\\.)*)"\nmsgstr "((?:[^"\\]|\\.)*)"', text, re.M)
    return {en.replace('\\"', '"'): zh.replace('\\"', '"') for en, zh in pairs if en}


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
    assert all(re.search(r"[\u4e00-\u9fff]", zh) or zh == en for en, zh in entries.items())


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
            assert "按键" in help_text and "运行代码" in help_text
    finally:
        set_language("en")
