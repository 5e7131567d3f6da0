"""Fixtures for Pilot tests: a tiny deck, a fixed clock, no file watcher, no cursor blink."""

from __future__ import annotations

import pytest

from helpers import FIXED_NOW, write_concept
from kb.config import Settings

SNIPPET = """snippet:
  requires: [numpy]
  code: |
    import numpy as np
    x = np.arange(6).reshape(2, 3)
    print("shape", x.shape)
    assert x.sum() == 15
"""


@pytest.fixture
def app_settings(tmp_path, deck):
    write_concept(
        deck,
        "self-attention",
        title_en="Self-Attention",
        title_zh="自注意力",
        category="attention",
        definition="Each token mixes the values of all tokens with softmax weights $\\sqrt{d_k}$.",
        extra="aliases: [scaled dot-product attention]\ntags: [transformer]\n"
        "formulas:\n  - name: attention\n    latex: '\\mathrm{softmax}(QK^\\top/\\sqrt{d_k})V'\n"
        "    where: {Q: queries}\n"
        + SNIPPET
        + "prerequisites: [convolution]\nrelated: [convolution, markup-test, convolution]\n",
    )
    write_concept(
        deck,
        "convolution",
        title_en="Convolution",
        title_zh="卷积",
        category="layers",
        extra="cards:\n  - {type: typed, id: t, question: 'What does conv2d compute?', answer: cross-correlation}\n",
    )
    write_concept(
        deck,
        "markup-test",
        title_en="Index a[i] and [/x] [@click=app.quit]",
        title_zh="标记",
        definition="Literal [b]not bold[/b] text.",
    )
    return Settings(home=tmp_path / "home", bundled_content=deck, timezone="UTC")


@pytest.fixture
def make_app(app_settings, monkeypatch):
    from textual.widgets import Input

    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None, raising=False)

    def factory(**kwargs):
        from app.app import KBApp

        # A bug must fail the test that meets it: the app's "log and go on" is tested on its own.
        kwargs.setdefault("keep_running_on_error", False)
        return KBApp(app_settings, clock=lambda: FIXED_NOW, watch=kwargs.pop("watch", False), **kwargs)

    return factory
