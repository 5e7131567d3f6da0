"""A static HTML site of the concepts: one page per concept, an index per category, and a home page.

Formulas are MathML (from latex2mathml), which browsers render natively: the site needs no
JavaScript and no network, so it opens from a folder or any static file server. Both languages are
on every page (`lang="en"` and `lang="zh"` blocks); code is highlighted by Pygments with a small
stylesheet; concepts link to their prerequisites and related concepts by relative path.

Definitions are Markdown. Math is cut out before the Markdown is parsed (so `D_{KL}(p\\|q)` is never
read as emphasis or a link) and put back as MathML afterwards; raw HTML in a deck is shown as text,
since a deck may be someone else's.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from kb.bilingual import localized
from kb.render.formula_image import FormulaRenderError, to_mathml
from kb.schema import CATEGORIES

# Private-use characters mark where math goes back: Markdown leaves them alone.
_SLOT = re.compile("\ue000(\\d+)\ue001")

STYLE = """
:root { color-scheme: light dark; --fg: #1d1f21; --bg: #fdfdfc; --muted: #5f6368; --accent: #1a5fb4;
        --code-bg: #f3f3f1; --rule: #dadce0; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6e6e6; --bg: #16181b; --muted: #a0a4a8; --accent: #78aef0; --code-bg: #202328; --rule: #33373d; }
}
body { font: 17px/1.6 system-ui, "Noto Sans", "Noto Sans CJK SC", sans-serif; color: var(--fg);
       background: var(--bg); max-width: 52rem; margin: 2rem auto; padding: 0 1.2rem; }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; } h1 .zh { color: var(--muted); font-weight: 500; }
h2 { font-size: 1.15rem; border-bottom: 1px solid var(--rule); padding-bottom: .2rem; margin-top: 2rem; }
.summary { color: var(--muted); font-style: italic; }
nav.crumbs { font-size: .9rem; color: var(--muted); }
math[display="block"] { margin: .8rem 0; padding: .2rem 0; font-size: 1.15em; overflow-x: auto; overflow-y: hidden; }
.formula { margin: 1rem 0 1.4rem; } .formula .name { font-weight: 600; }
.where { margin: .2rem 0 0 1rem; font-size: .95rem; }
.lang-zh { margin-top: 1rem; }
pre { background: var(--code-bg); padding: .8rem 1rem; overflow-x: auto; border-radius: 6px; font-size: .85rem; line-height: 1.45; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
.verdict-passed { color: #2e7d32; } .verdict-failed, .verdict-error, .verdict-timeout { color: #c62828; }
.math-error { color: #c62828; font-family: monospace; }
ul.concepts li { margin: .3rem 0; } .count { color: var(--muted); }
"""


def _mathml(tex: str, *, display: bool) -> str:
    try:
        return to_mathml(tex, display=display)
    except FormulaRenderError as exc:
        # Shown as its LaTeX, marked, so that a broken formula is visible and countable.
        return f'<code class="math-error" title="{html.escape(str(exc))}">{html.escape(tex)}</code>'


def _markdown():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown_to_html(text: str) -> str:
    """Deck Markdown with `$...$` and `$$...$$` math as HTML with MathML; never raises."""
    from kb.render.markdown import convert_math

    slots: list[str] = []

    def slot(markup: str) -> str:
        slots.append(markup)
        return f"\ue000{len(slots) - 1}\ue001"

    cut = convert_math(
        text,
        inline=lambda tex: slot(_mathml(tex, display=False)),
        display=lambda tex: "\n\n" + slot(_mathml(tex, display=True)) + "\n\n",
    )
    return _SLOT.sub(lambda m: slots[int(m.group(1))], _markdown().render(cut))


def _highlight(code: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return highlight(code, PythonLexer(), HtmlFormatter(cssclass="highlight"))


def _code_style() -> str:
    from pygments.formatters import HtmlFormatter

    light = HtmlFormatter(style="friendly").get_style_defs(".highlight")
    dark = HtmlFormatter(style="monokai").get_style_defs(".highlight")
    return (
        light
        + "\n@media (prefers-color-scheme: dark) {\n"
        + dark
        + "\n}\n.highlight, .highlight pre { background: var(--code-bg) !important; }\n"
    )


def _page(title: str, body: str, *, depth: int) -> str:
    up = "../" * depth
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        f'<link rel="stylesheet" href="{up}style.css">\n</head>\n<body>\n{body}\n</body>\n</html>\n'
    )


def _both(value, *, tag: str = "p", cls: str = "") -> str:
    """An `{en, zh}` text (or a plain one) as one block per language."""
    out = []
    for language in ("en", "zh"):
        text = localized(value, language)
        if language == "zh" and text == localized(value, "en"):
            continue  # a plain string: said once
        out.append(f'<{tag} lang="{language}" class="{cls}">{_inline_markdown(text)}</{tag}>')
    return "\n".join(out)


def _inline_markdown(text: str) -> str:
    rendered = markdown_to_html(text).strip()
    if rendered.startswith("<p>") and rendered.endswith("</p>") and rendered.count("<p>") == 1:
        return rendered[3:-4]
    return rendered


def _link(target: str, titles: dict[str, tuple[dict, str]], here: str) -> str:
    if target not in titles:
        return f"<code>{html.escape(target)}</code>"
    title, category = titles[target]
    path = f"{target}.html" if category == here else f"../{category}/{target}.html"
    return f'<a href="{path}">{html.escape(title["en"])} · <span lang="zh">{html.escape(title["zh"])}</span></a>'


def concept_page(concept: dict, last_run: dict | None, titles: dict[str, tuple[dict, str]]) -> str:
    """The HTML page of one concept."""
    here = concept["category"]
    esc = html.escape
    body = [
        f'<nav class="crumbs"><a href="../index.html">kb</a> › <a href="index.html">{esc(here)}</a></nav>',
        f'<h1>{esc(concept["title"]["en"])} <span class="zh" lang="zh">{esc(concept["title"]["zh"])}</span></h1>',
        _both(concept["summary"], cls="summary"),
        f'<section lang="en">{markdown_to_html(concept["definition"])}</section>',
    ]
    if concept.get("definition_zh"):
        body.append(f'<section lang="zh" class="lang-zh">{markdown_to_html(concept["definition_zh"])}</section>')
    if concept.get("formulas"):
        body.append('<h2>Formulas <span lang="zh">公式</span></h2>')
        for formula in concept["formulas"]:
            name = localized(formula["name"], "both", " · ")
            items = "".join(
                f"<li>{_mathml(symbol, display=False)}: {esc(localized(meaning, 'both', ' · '))}</li>"
                for symbol, meaning in (formula.get("where") or {}).items()
            )
            where = f'<ul class="where">{items}</ul>' if items else ""
            body.append(
                f'<div class="formula"><div class="name">{esc(name)}</div>'
                f"{_mathml(formula['latex'].strip(), display=True)}{where}</div>"
            )
    if concept.get("pitfalls"):
        body.append('<h2>Pitfalls <span lang="zh">易错点</span></h2><ul>')
        body += [f"<li>{_both(p, tag='div')}</li>" for p in concept["pitfalls"]]
        body.append("</ul>")
    if concept.get("snippet"):
        body.append('<h2>Example <span lang="zh">示例</span></h2>')
        body.append(_highlight(concept["snippet"]["code"]))
        if last_run:
            status = str(last_run["status"])
            body.append(
                f'<p>Last run: <strong class="verdict-{esc(status)}">{esc(status)}</strong> on '
                f"{esc(str(last_run['device']))} (torch {esc(str(last_run.get('torch_version')))}, "
                f"{esc(str(last_run['created_at'])[:10])})</p>"
            )
            if (last_run.get("output") or "").strip():
                body.append(f"<pre><code>{esc(last_run['output'].rstrip())}</code></pre>")
    for heading, zh, key in (("Prerequisites", "前置概念", "prerequisites"), ("Related", "相关概念", "related")):
        if concept.get(key):
            body.append(f'<h2>{heading} <span lang="zh">{zh}</span></h2><ul>')
            body += [f"<li>{_link(t, titles, here)}</li>" for t in concept[key]]
            body.append("</ul>")
    if concept.get("sources"):
        body.append('<h2>Sources <span lang="zh">参考来源</span></h2><ul>')
        body += [f'<li><a href="{esc(s["url"])}">{esc(s["title"])}</a></li>' for s in concept["sources"]]
        body.append("</ul>")
    title = f"{concept['title']['en']} · {concept['title']['zh']}"
    return _page(title, "\n".join(body), depth=1)


def category_index(category: str, concepts: list[dict]) -> str:
    esc = html.escape
    items = "".join(
        f'<li><a href="{esc(c["id"])}.html">{esc(c["title"]["en"])} · <span lang="zh">{esc(c["title"]["zh"])}'
        f"</span></a>: {esc(c['summary']['en'])}</li>"
        for c in sorted(concepts, key=lambda c: c["title"]["en"].lower())
    )
    body = (
        f'<nav class="crumbs"><a href="../index.html">kb</a></nav><h1>{esc(category)}</h1>'
        f'<ul class="concepts">{items}</ul>'
    )
    return _page(category, body, depth=1)


def home_page(by_category: dict[str, list[dict]], order: list[str]) -> str:
    items = "".join(
        f'<li><a href="{c}/index.html">{html.escape(c)}</a> <span class="count">({len(by_category[c])})</span></li>'
        for c in order
    )
    total = sum(len(v) for v in by_category.values())
    body = f'<h1>kb</h1><p>{total} concepts · {total} 个概念</p><ul class="concepts">{items}</ul>'
    return _page("kb", body, depth=0)


def export_html(rows: list[dict], out_dir: Path) -> dict[str, int]:
    """Write the site under `out_dir`: index.html, style.css, <category>/index.html and
    <category>/<id>.html. Returns the counts of pages, categories and formulas that fell back."""
    titles = {row["data"]["id"]: (row["data"]["title"], row["data"]["category"]) for row in rows}
    by_category: dict[str, list[dict]] = {}
    fallbacks = 0
    out_dir.mkdir(parents=True, exist_ok=True)
    for row in rows:
        concept = row["data"]
        by_category.setdefault(concept["category"], []).append(concept)
        page = concept_page(concept, row.get("last_run"), titles)
        fallbacks += page.count('class="math-error"')
        path = out_dir / concept["category"] / f"{concept['id']}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
    order = [c for c in CATEGORIES if c in by_category]
    for category in order:
        (out_dir / category / "index.html").write_text(
            category_index(category, by_category[category]), encoding="utf-8"
        )
    (out_dir / "index.html").write_text(home_page(by_category, order), encoding="utf-8")
    (out_dir / "style.css").write_text(STYLE.lstrip() + _code_style(), encoding="utf-8")
    return {"concepts": len(rows), "categories": len(order), "fallbacks": fallbacks}
