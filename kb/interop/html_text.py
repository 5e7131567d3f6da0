"""kb text (Markdown with $...$ math and ``` code) to Anki field HTML and back."""

from __future__ import annotations

import html
import re

_FENCE_RE = re.compile(r"^```[ \t]*([\w+-]*)[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
_DISPLAY_RE = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)
_INLINE_RE = re.compile(r"(?<![\\$])\$(?!\s)([^$\n]+?)(?<!\s)\$(?!\$)")
_CODE_SPAN_RE = re.compile(r"`([^`\n]+)`")
# The wrapper of a highlighted block names its language, so an import can give back the fence.
_BLOCK_OPEN = '<div class="kb-code" data-lang="{lang}">'


def highlight(code: str, language: str = "python") -> str:
    """Code as Pygments HTML (classes styled by `pygments_css`), wrapped to record its language."""
    from pygments import highlight as render
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import TextLexer, get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        lexer = get_lexer_by_name(language) if language else TextLexer()
    except ClassNotFound:
        lexer = TextLexer()
    body = render(code, lexer, HtmlFormatter(cssclass="highlight")).rstrip("\n")
    return _BLOCK_OPEN.format(lang=html.escape(language, quote=True)) + body + "</div>"


def pygments_css() -> str:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(cssclass="highlight").get_style_defs(".highlight")


def _prose_to_html(text: str) -> str:
    """Escaped prose with MathJax delimiters, inline code and line breaks."""
    out = html.escape(text, quote=False)
    out = _DISPLAY_RE.sub(lambda m: r"\[" + m.group(1) + r"\]", out)
    out = _INLINE_RE.sub(lambda m: r"\(" + m.group(1) + r"\)", out)
    out = _CODE_SPAN_RE.sub(lambda m: "<code>" + m.group(1) + "</code>", out)
    return out.replace("\n", "<br>")


def to_html(text: str) -> str:
    """kb text as Anki field HTML: deck text escaped, math as \\(...\\)/\\[...\\], code highlighted."""
    text = text.strip()
    parts: list[str] = []
    last = 0
    for m in _FENCE_RE.finditer(text):
        parts.append(_prose_to_html(text[last : m.start()]))
        parts.append(highlight(m.group(2).rstrip("\n"), m.group(1)))
        last = m.end()
    parts.append(_prose_to_html(text[last:]))
    return "".join(parts)


def latex_html(latex: str, *, display: bool) -> str:
    """A LaTeX formula as escaped MathJax."""
    body = html.escape(latex.strip(), quote=False)
    return rf"\[{body}\]" if display else rf"\({body}\)"


# Every pattern applied to imported HTML runs in time linear in its length: a tag never contains '<'
# ([^<>]*, so a run of unclosed '<' is not rescanned), and pairs of opening and closing markers are
# found with str.find, which gives up at the first opening without a close instead of retrying from
# each later one (a field repeating `<div class="kb-code" ...>` 200,000 times took minutes before).
_BREAK_RE = re.compile(
    r"<br\s*/?>|</div>\s*<div[^<>]*>|</p>\s*<p[^<>]*>|</?(?:div|p|ul|ol)(?:\s[^<>]*)?>", re.IGNORECASE
)
_ITEM_RE = re.compile(r"<li(?:\s[^<>]*)?>", re.IGNORECASE)
_TAG_RE = re.compile(r"<[^<>]*>")
_BLOCK_OPEN_RE = re.compile(r'<div class="kb-code" data-lang="([\w+-]*)">')
_BLOCK_CLOSE_RE = re.compile(r"</pre></div>\s*</div>")
_PLACEHOLDER_RE = re.compile("\x00(\\d+)\x00")


def _replace_pairs(text: str, opening: re.Pattern[str], closing: re.Pattern[str], render) -> str:
    """Replace each `opening ... closing` (shortest, left to right) with render(open match, inner)."""
    out: list[str] = []
    pos = 0
    while (start := opening.search(text, pos)) is not None:
        end = closing.search(text, start.end())
        if end is None:
            break  # no later opening can be closed either
        out.append(text[pos : start.start()])
        out.append(render(start, text[start.end() : end.start()]))
        pos = end.end()
    out.append(text[pos:])
    return "".join(out)


def from_html(field: str) -> str:
    """Anki field HTML as kb text: the inverse of `to_html`, and plain text for any other HTML."""
    blocks: list[str] = []

    def stash(start: re.Match, inner: str) -> str:
        code = html.unescape(_TAG_RE.sub("", inner)).rstrip("\n")
        blocks.append(f"```{start.group(1)}\n{code}\n```")
        return f"\x00{len(blocks) - 1}\x00"

    # NUL is not text (kb refuses it in notes): dropping it first keeps the placeholders unambiguous.
    text = field.replace("\x00", "").replace("\r\n", "\n")
    text = _replace_pairs(text, _BLOCK_OPEN_RE, _BLOCK_CLOSE_RE, stash)
    text = text.replace(r"\[", "$$").replace(r"\]", "$$").replace(r"\(", "$").replace(r"\)", "$")
    text = _replace_pairs(text, re.compile("<code>"), re.compile("</code>"), lambda _start, inner: f"`{inner}`")
    if "<" in text:  # in HTML, bare newlines are layout; breaks come from tags
        text = _ITEM_RE.sub("\n- ", _BREAK_RE.sub("\n", text.replace("\n", " ")))
    text = html.unescape(_TAG_RE.sub("", text)).replace("\xa0", " ")
    text = _PLACEHOLDER_RE.sub(lambda m: blocks[int(m.group(1))], text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return "\n".join(line.rstrip() for line in text.strip().split("\n"))
