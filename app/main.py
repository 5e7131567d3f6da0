"""Entry point of the TUI: `kb` with no command."""

from __future__ import annotations


def run(settings=None) -> int:
    from app.app import KBApp
    from app.formulas import detect

    # The terminal is asked whether it shows graphics now: once Textual runs, it reads stdin itself.
    formulas = getattr(settings, "formulas", None)
    if formulas is None:
        try:
            from kb.config import load_settings

            formulas = load_settings().formulas
        except Exception:  # a broken settings file is reported by the app; formulas stay text
            formulas = "text"
    if detect(formulas) is not None:
        import textual_image.widget  # noqa: F401  (it asks the terminal its cell size on import)
    KBApp(settings).run()
    return 0


if __name__ == "__main__":  # `kb serve` runs the TUI this way, once per browser tab
    raise SystemExit(run())
