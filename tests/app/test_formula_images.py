"""Formulas as images on the concept screen, for a terminal that shows graphics.

The terminal profile is chosen with `app.formulas.use` (what `kb` decides at start-up from the
terminal's answer, or from KB_GRAPHICS): Sixel, Kitty's protocol, or none (text, as before).
"""

from __future__ import annotations

import pytest
from textual.widgets import Static

from helpers import settle, text_of, write_concept

SIZE = (110, 40)


@pytest.fixture
def graphics():
    from app import formulas

    formulas.use("sixel", (10, 20))
    yield formulas
    formulas.use(None)


@pytest.fixture
def formula_deck(app_settings):
    write_concept(
        app_settings.bundled_content,
        "gaussian",
        title_en="Gaussian",
        title_zh="高斯分布",
        definition="The density is $$p(x) = \\frac{1}{\\sqrt{2\\pi}\\sigma} e^{-(x-\\mu)^2 / 2\\sigma^2}$$ "
        "with mean $\\mu$.",
        extra="formulas:\n"
        "  - name: density\n    latex: 'p(x) = \\frac{1}{\\sqrt{2\\pi}\\sigma}'\n    where: {\\sigma: the spread}\n"
        "  - name: broken\n    latex: '\\notarealcommand{x}'\n",
    )
    return app_settings


async def _open(app, pilot, query: str):
    await settle(app, pilot)
    await pilot.press("slash", *query, "enter", "enter")
    await settle(app, pilot)
    await settle(app, pilot)
    return app.screen


async def test_formulas_and_display_blocks_become_images_where_the_terminal_shows_graphics(
    make_app, formula_deck, graphics
):
    from textual_image.widget import SixelImage

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot, "gaussian")
        assert screen.concept_id == "gaussian"
        formula_box = screen.query_one("#formula-images")
        assert formula_box.display
        images = list(formula_box.query(SixelImage))
        assert len(images) == 1  # the density; the broken one stays text
        assert images[0].tooltip == "p(x) = \\frac{1}{\\sqrt{2\\pi}\\sigma}"
        assert 1 <= images[0].styles.height.value <= 4 and images[0].styles.width.value > 5
        # The broken formula is its Unicode text, saying why it is not an image.
        fallback = [w for w in formula_box.query(Static) if "unknown command \\notarealcommand" in str(w.tooltip)]
        assert len(fallback) == 1 and text_of(fallback[0]).strip() == "x"
        # The definition's $$ block is an image between the text around it.
        definition = screen.query_one("#definition-images")
        assert definition.display and not screen.query_one("#definition", Static).display
        assert len(list(definition.query(SixelImage))) == 1
        parts = " ".join(text_of(w) for w in definition.query(Static))
        assert "The density is" in parts and "with mean μ" in parts
        # The images were cached under KB_HOME.
        cached = list((formula_deck.home / "cache" / "formulas").glob("*.png"))
        assert len(cached) == 2
        # l shows raw LaTeX as text; l again the images.
        await pilot.press("l")
        assert not formula_box.display and not definition.display
        assert "\\notarealcommand" in text_of(screen.query_one("#formulas", Static))
        assert screen.query_one("#definition", Static).display
        await pilot.press("l")
        assert formula_box.display and definition.display
        # The image draws as Sixel data.
        drawer = images[0].children[0]  # textual-image's inner widget writes the Sixel data
        lines = drawer.render_lines(drawer.region.reset_offset)
        assert any("\x1bP" in segment.text for strip in lines for segment in strip)


async def test_a_terminal_without_graphics_gets_the_text_as_before(make_app, formula_deck):
    from app import formulas

    formulas.use(None)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot, "gaussian")
        assert not screen.query_one("#formula-images").display
        assert not screen.query_one("#definition-images").display
        shown = text_of(screen.query_one("#formulas", Static))
        assert "density" in shown and "σ" in shown
        assert not (formula_deck.home / "cache" / "formulas").exists()


async def test_a_theme_change_redraws_the_images_in_its_colours(make_app, formula_deck, graphics):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _open(app, pilot, "gaussian")
        cache = formula_deck.home / "cache" / "formulas"
        before = set(cache.glob("*.png"))
        app.theme = "textual-light" if app.current_theme.dark else "textual-dark"
        await settle(app, pilot)
        await settle(app, pilot)
        assert len(set(cache.glob("*.png")) - before) == 2  # the same formulas in the new colours


async def test_a_formula_card_shows_its_formula_as_an_image_once_revealed(make_app, graphics):
    from textual_image.widget import SixelImage

    from app.screens.quiz import QuizScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        # Custom study of the formula cards (the daily queue would bury it behind its definition).
        await app.push_screen(QuizScreen(app.kb, search="kind:formula"))
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, QuizScreen)
        card = screen.item.card
        assert card.kind == "formula" and card.latex == "\\mathrm{softmax}(QK^\\top/\\sqrt{d_k})V"
        assert not list(screen.query_one("#answer-image").query(SixelImage))  # not before the answer
        await pilot.press("space")
        await settle(app, pilot)
        images = list(screen.query_one("#answer-image").query(SixelImage))
        assert len(images) == 1 and images[0].tooltip == card.latex
        await pilot.press("3")
        await settle(app, pilot)
        assert not list(screen.query_one("#answer-image").query(SixelImage))  # gone with its card
