"""LaTeX formulas as readable Unicode text for a terminal, which cannot typeset them.

`tex_to_text(tex)` runs a small preprocessor, then flatlatex (which parenthesises fractions
correctly: `F₁ = (2PR)/(P+R)`); if flatlatex leaves a command it does not know (a backslash in its
output) or fails, pylatexenc renders the preprocessed source with a `\\frac` that parenthesises too.
It never raises and never starts a process: on any failure, or for a source longer than
`MAX_TEX_CHARS`, it returns the source unchanged.

The preprocessor:
- drops sizing and spacing-only commands (`\\left`, `\\right`, `\\big(`, `\\displaystyle`, `\\!`,
  `\\limits`), turns `\\,` `\\;` `\\:` into a space and `\\quad` `\\qquad` into a wider gap;
- turns `\\tfrac`/`\\dfrac`/`\\cfrac` into `\\frac`, `^\\top` into `ᵀ`, `\\{ \\} \\_ \\%` into the
  characters, and a few symbols flatlatex lacks (`\\le`, `\\ge`, `\\ne`, `\\to`, `\\langle`...);
- renders `\\mathrm{x}`, `\\operatorname{x}`, `\\text{x}` and friends as plain words, and operator names
  (`\\log`, `\\exp`, `\\max`, `\\det`...) and big operators (`\\sum`, `\\prod`, `\\int`) as words with
  their sub- and superscripts attached (`log₁₀`, `∑ⱼ₌₁ᵐ`, `MAX[I]²`), so that a word is never split
  (`\\mathrm{MAX}_I` is not `MA` + `X_I`) nor wrapped in parentheses; an operator name is followed by a
  space before a letter (`log qᵢ`) and by parentheses around a fraction (`log((pᵢ)/(qᵢ))`);
- renders `cases`, `matrix`-like and `aligned`-like environments on one line.
Subscripts and superscripts follow flatlatex's conventions: Unicode sub/superscript characters when
every character has one, otherwise `x[sub]` and `x^(sup)`.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

MAX_TEX_CHARS = 4_000
_MAX_BRACE_DEPTH = 64  # deeper sources are returned as they are (flatlatex recurses per group)
_MAX_DEPTH = 40  # nested groups rendered by the preprocessor's own recursion

# Private-use placeholders for characters that are TeX syntax in flatlatex's input.
_LBRACE, _RBRACE, _UNDERSCORE, _CARET, _BACKSLASH = "\ue000", "\ue001", "\ue002", "\ue003", "\ue004"
_QUAD, _ROWSEP, _AMP, _SPACE = "\ue005", "\ue006", "\ue007", "\ue008"
_EAT_SPACE = "\ue009"
_RELATIONS = frozenset("=≈∼≃≅≡≠≤≥⩽⩾≪≫∈∉∋⊂⊃⊆⊇→←↔⇒⇐⇔⟹⟺↦∝∣∥≔≜∶")
_PLACEHOLDER_RE = re.compile("[\ue000-\ue009]")
_RESTORE = {_SPACE: " ", _LBRACE: "{", _RBRACE: "}", _UNDERSCORE: "_", _CARET: "^", _BACKSLASH: "\\", _AMP: "&"}

_ESCAPES = {
    "\\": _ROWSEP,
    "{": _LBRACE,
    "}": _RBRACE,
    "_": _UNDERSCORE,
    "%": "%",
    "&": _AMP,
    "#": "#",
    "$": "$",
    "|": "‖",
    ",": " ",
    ";": " ",
    ":": " ",
    ">": " ",
    " ": " ",
    "!": "",
}
_WORD_RE = re.compile(r"\\([A-Za-z]+)")
_ESCAPE_RE = re.compile(r"\\([\\{}_%&#$|,;:> !])")
_SIZING_RE = re.compile(r"\\(?:left|middle|[Bb]igg?[lm]?)(?![A-Za-z])\s*\.?|\s*\\(?:right|[Bb]igg?r)(?![A-Za-z])\s*\.?")
_NOOP_RE = re.compile(r"\\(?:displaystyle|textstyle|scriptstyle|scriptscriptstyle|limits|nolimits)(?![A-Za-z])\s*")
_TOP_SUP_RE = re.compile(r"\^\s*(?:\\top|\\intercal|\{\s*(?:\\top|\\intercal|\\mathsf\{T\}|T)\s*\})(?![A-Za-z])")
_RENAME = {
    "tfrac": "frac",
    "dfrac": "frac",
    "cfrac": "frac",
    "boldsymbol": "mathbf",
    "bm": "mathbf",
    "widetilde": "tilde",
    "widebar": "bar",
    "dots": "ldots",
}
# Symbols flatlatex does not know (the rest of its table is good).
_SYMBOLS = {
    "le": "≤",
    "ge": "≥",
    "ne": "≠",
    "to": "→",
    "gets": "←",
    "lvert": "|",
    "rvert": "|",
    "vert": "|",
    "Vert": "‖",
    "lVert": "‖",
    "rVert": "‖",
    "mid": " | ",
    "langle": "⟨",
    "rangle": "⟩",
    "lfloor": "⌊",
    "rfloor": "⌋",
    "lceil": "⌈",
    "rceil": "⌉",
    "ldots": "…",
    "coloneqq": "≔",
    "varnothing": "∅",
    "iff": " ⟺ ",
    "implies": " ⟹ ",
    "prime": "′",
    "land": "∧",
    "lor": "∨",
    "colon": ":",
    "dagger": "†",
    "leqslant": "⩽",
    "geqslant": "⩾",
    "square": "□",
    "checkmark": "✓",
    "top": "ᵀ",
    "intercal": "ᵀ",
    "quad": _QUAD,
    "qquad": _QUAD,
    "enspace": " ",
    "thinspace": " ",
    "medspace": " ",
    "thickspace": " ",
    "lbrace": _LBRACE,
    "rbrace": _RBRACE,
    "backslash": _BACKSLASH,
    "mathring": "",
    "centerdot": "·",
}
# Operator names: rendered as words, scripts attached, a space before a following letter.
_OPERATORS = frozenset(
    "log ln lg exp max min sup inf lim liminf limsup det dim ker deg gcd hom arg Pr sin cos tan cot sec "
    "csc sinh cosh tanh coth arcsin arccos arctan argmax argmin tr Tr diag sgn sign Var Cov erf "
    "softmax relu".split()
)
_BIG_OPERATORS = {
    "sum": "∑",
    "prod": "∏",
    "coprod": "∐",
    "int": "∫",
    "iint": "∬",
    "iiint": "∭",
    "oint": "∮",
    "bigcup": "⋃",
    "bigcap": "⋂",
    "bigoplus": "⨁",
    "bigotimes": "⨂",
    "bigvee": "⋁",
    "bigwedge": "⋀",
}
# Commands whose argument is shown as plain text (a word).
_TEXT_COMMANDS = frozenset(
    "mathrm operatorname text textrm textnormal textup textit textsf texttt textbf mathsf mathtt "
    "mbox hbox mathop mathrel mathbin mathord".split()
)
_ENVIRONMENT_RE = re.compile(r"\\begin\s*\{(\w+\*?)\}((?:(?!\\begin\s*\{).)*?)\\end\s*\{\1\}", re.DOTALL)
_MATRIX_DELIMITERS = {
    "matrix": ("[", "]"),
    "smallmatrix": ("[", "]"),
    "array": ("[", "]"),
    "pmatrix": ("(", ")"),
    "bmatrix": ("[", "]"),
    "Bmatrix": (_LBRACE, _RBRACE),
    "vmatrix": ("|", "|"),
    "Vmatrix": ("‖", "‖"),
}
_ALIGN_ENVIRONMENTS = frozenset(
    "aligned align align* alignat alignat* gathered gather gather* split eqnarray eqnarray* equation "
    "equation* multline multline* flalign flalign*".split()
)


def tex_to_text(tex: str) -> str:
    """A LaTeX formula as Unicode text; the source itself when it cannot be converted."""
    try:
        if not isinstance(tex, str):
            return str(tex)
        if len(tex) > MAX_TEX_CHARS:
            return tex
        return _convert(tex)
    except Exception:  # RecursionError and MemoryError included: never raise, show the source
        return tex


def _convert(tex: str) -> str:
    source = _strip_math_delimiters(_PLACEHOLDER_RE.sub("", tex))
    if not source.strip():
        return tex.strip()
    if not braces_balanced(source):
        return tex
    return _finish(_to_text(_preprocess(source, 0)))


def _to_text(pre: str) -> str:
    """flatlatex on preprocessed source; pylatexenc when it fails or leaves a command behind."""
    try:
        out = _flatlatex().convert(pre)
    except Exception:
        out = None
    if out is None or "\\" in out:
        out = _pylatexenc_text(pre)
    return out


def braces_balanced(tex: str) -> bool:
    """Braces balance, and nest at most `_MAX_BRACE_DEPTH` deep (no real formula comes close)."""
    depth = 0
    for token in re.findall(r"\\.|[{}]", tex, re.DOTALL):
        if token == "{":
            depth += 1
            if depth > _MAX_BRACE_DEPTH:
                return False
        elif token == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _strip_math_delimiters(tex: str) -> str:
    text = tex.strip()
    for left, right in (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$")):
        if len(text) > len(left) + len(right) and text.startswith(left) and text.endswith(right):
            return text[len(left) : -len(right)]
    return text


@lru_cache(maxsize=1)
def _flatlatex():
    import flatlatex

    return flatlatex.converter(keep_spaces=True, allow_zw=False)


@lru_cache(maxsize=1)
def _scripts():
    from flatlatex import data
    from flatlatex.transliteration import transliterate

    return transliterate(data.subscript), transliterate(data.superscript)


def _pylatexenc_text(pre: str) -> str:
    """The fallback: pylatexenc with a `\\frac` that parenthesises; leftover commands become words."""
    try:
        out = _pylatexenc().latex_to_text(pre)
    except Exception:
        out = pre
    out = re.sub(r"\\([A-Za-z]+)", r"\1", out)
    return out.replace("\\", "")


@lru_cache(maxsize=1)
def _pylatexenc():
    from pylatexenc.latex2text import (
        LatexNodes2Text,
        MacroTextSpec,
        get_default_latex_context_db,
    )

    def frac(node, l2tobj):
        args = [a for a in (node.nodeargd.argnlist if node.nodeargd else []) if a is not None]
        if len(args) < 2:
            return "/"
        return f"{_paren(l2tobj.nodelist_to_text([args[-2]]).strip())}/{_paren(l2tobj.nodelist_to_text([args[-1]]).strip())}"

    def sqrt(node, l2tobj):
        args = [a for a in (node.nodeargd.argnlist if node.nodeargd else []) if a is not None]
        return "√" + _paren(l2tobj.nodelist_to_text(args[-1:]).strip()) if args else "√"

    db = get_default_latex_context_db()
    db.add_context_category(
        "kb",
        prepend=True,
        macros=[MacroTextSpec(name, simplify_repl=frac) for name in ("frac", "tfrac", "dfrac", "cfrac")]
        + [MacroTextSpec("sqrt", simplify_repl=sqrt)],
    )
    return LatexNodes2Text(latex_context=db, math_mode="text", strict_latex_spaces=True)


def _is_complex(text: str) -> bool:
    return sum(1 for ch in text if unicodedata.combining(ch) == 0) > 1


def _paren(text: str) -> str:
    return f"({text})" if _is_complex(text) else text


def _finish(out: str) -> str:
    out = out.replace(_ROWSEP, "; ").replace(_SPACE, " ")
    out = re.sub(r"[ \t\r\n]+", " ", out)
    out = re.sub(f" ?(?:{_QUAD} ?)+", "  ", out)
    for placeholder, char in _RESTORE.items():
        out = out.replace(placeholder, char)
    out = re.sub(r"\s*;\s*$", "", out)
    return out.strip()


# The preprocessor ------------------------------------------------------------------------------


def _preprocess(tex: str, depth: int) -> str:
    if depth > _MAX_DEPTH:
        raise RecursionError("formula nested too deeply")
    s = tex.replace("\r", " ").replace("\n", " ")
    s = _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(1)], s)
    s = _environments(s)
    s = s.replace(_ROWSEP, "; ").replace("&", " ")
    s = _SIZING_RE.sub("", s)
    s = _NOOP_RE.sub("", s)
    s = re.sub(r"\\operatorname\s*\*", r"\\operatorname", s)
    s = _TOP_SUP_RE.sub("^T", s)
    s = re.sub(r"\\sqrt\s*\[([^\[\]{}]*)\]", r"{}^{\1}\\sqrt", s)
    s = re.sub(r"\\([A-Za-z]+)", _rename_or_symbol, s)
    s = re.sub(_EAT_SPACE + r"\s*", "", s)
    s = _words(s, depth)
    # Spaces just inside a group (`\beta^{\,t-i}`) are not wanted; a word's own spaces are protected.
    return re.sub(r"\s+\}", "}", re.sub(r"\{\s+", "{", s))


def _rename_or_symbol(m: re.Match) -> str:
    name = _RENAME.get(m.group(1), m.group(1))
    symbol = _SYMBOLS.get(name)
    if symbol is None and name not in _OPERATORS and name not in _BIG_OPERATORS:
        # flatlatex's own symbols, replaced here so that spacing around them is ours.
        symbol = _flatlatex_symbols().get("\\" + name)
        if symbol is not None and "\\" in symbol:
            symbol = None
    if symbol is None:
        return "\\" + name
    if symbol.strip() and symbol.strip() not in _RELATIONS:
        return symbol + _EAT_SPACE  # TeX ignores the space after a control word
    return f" {symbol.strip()} " if symbol.strip() else symbol  # relations get spaces, as in print


@lru_cache(maxsize=1)
def _flatlatex_symbols() -> dict:
    from flatlatex import data

    return dict(data.symbols)


def _environments(s: str) -> str:
    for _ in range(20):
        new = _ENVIRONMENT_RE.sub(_environment, s)
        if new == s:
            break
        s = new
    return s


def _environment(m: re.Match) -> str:
    name, body = m.group(1), m.group(2)
    if name == "array" or name.startswith("alignat"):
        body = re.sub(r"^\s*\{[^{}]*\}", "", body)  # the column spec
    rows = [r.strip() for r in body.split(_ROWSEP)]
    rows = [r for r in rows if r]
    if name == "cases":
        cells = [", ".join(c.strip() for c in r.split("&") if c.strip()) for r in rows]
        return "{" + _LBRACE + " " + "; ".join(cells) + "}"
    if name in _MATRIX_DELIMITERS:
        left, right = _MATRIX_DELIMITERS[name]
        cells = [", ".join(c.strip() for c in r.split("&")) for r in rows]
        return "{" + left + "; ".join(cells) + right + "}"
    if name in _ALIGN_ENVIRONMENTS:
        return "{" + "; ".join(r.replace("&", "") for r in rows) + "}"
    return m.group(0)


def _read_group(s: str, i: int) -> tuple[str, int] | None:
    """The balanced `{...}` group starting at s[i] (which must be `{`): (its content, the end)."""
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "{":
            depth += 1
        elif s[j] == "}":
            depth -= 1
            if depth == 0:
                return s[i + 1 : j], j + 1
    return None


def _read_argument(s: str, i: int) -> tuple[str, int] | None:
    """One TeX argument at s[i:] after spaces: a group's content, a command, or one character."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return None
    if s[i] == "{":
        return _read_group(s, i)
    if s[i] == "\\":
        m = _WORD_RE.match(s, i)
        if m is None:
            return s[i : i + 2], i + 2
        name = m.group(0)[1:]
        if name in _TEXT_COMMANDS or name in (
            "mathbf",
            "mathcal",
            "mathbb",
            "mathit",
            "mathfrak",
            "hat",
            "bar",
            "tilde",
            "vec",
            "dot",
            "ddot",
            "overline",
            "sqrt",
        ):
            arg = _read_argument(s, m.end())
            if arg is not None:
                return s[i : m.end()] + "{" + arg[0] + "}", arg[1]
        return m.group(0), m.end()
    if s[i] in "}^_":
        return None
    return s[i], i + 1


def _protect(text: str) -> str:
    """Text made inert for flatlatex: its TeX-special characters become placeholders."""
    return (
        text.replace("\\", _BACKSLASH)
        .replace(" ", _SPACE)
        .replace("{", _LBRACE)
        .replace("}", _RBRACE)
        .replace("_", _UNDERSCORE)
        .replace("^", _CARET)
    )


def _render(tex: str, depth: int) -> str:
    """A fragment (a script or a word's argument) rendered to text, placeholders kept."""
    return re.sub(r"\s+", " ", _to_text(_preprocess(tex, depth + 1))).strip()


def _words(s: str, depth: int) -> str:
    """Text commands, operator names and big operators as atomic words with their scripts."""
    out: list[str] = []
    i = 0
    while i < len(s):
        m = _WORD_RE.match(s, i) if s[i] == "\\" else None
        if m is None:
            out.append(s[i])
            i += 1
            continue
        name = m.group(1)
        j = m.end()
        if name in _TEXT_COMMANDS:
            arg = _read_argument(s, j)
            if arg is None:
                out.append(m.group(0))
                i = j
                continue
            content, j = arg
            word = _render(content, depth) if re.search(r"[\\^_{}]", content) else content
            word = word.replace("$", "")
            function = name == "operatorname"
        elif name in _OPERATORS:
            word, function = name, True
        elif name in _BIG_OPERATORS:
            word, function = _BIG_OPERATORS[name], True
        else:
            out.append(m.group(0))
            i = j
            continue
        sub = sup = None
        for _ in range(2):
            k = j
            while k < len(s) and s[k] == " ":
                k += 1
            if k < len(s) and s[k] in "_^" and (sub if s[k] == "_" else sup) is None:
                arg = _read_argument(s, k + 1)
                if arg is None:
                    break
                rendered = _render(arg[0], depth)
                if s[k] == "_":
                    sub = rendered
                else:
                    sup = rendered
                j = arg[1]
            else:
                break
        text = word + _subscript(sub) + _superscript(sup)
        if function and out and (out[-1][-1:].isalnum() or out[-1][-1:] in ")]}"):
            out.append(" ")
        out.append("{" + _protect(text) + "}")
        if function:
            k = j
            while k < len(s) and s[k] == " ":
                k += 1
            frac = re.compile(r"\\frac(?![A-Za-z])").match(s, k)
            if frac is not None:
                first = _read_argument(s, frac.end())
                second = _read_argument(s, first[1]) if first else None
                if second is not None:
                    out.append("(" + _words(s[k : second[1]], depth + 1) + ")")
                    j = second[1]
            elif k < len(s) and k == j and (s[k].isalnum() or s[k] in "\\{"):
                out.append(" ")
        i = j
    return "".join(out)


def _subscript(text: str | None) -> str:
    if not text:
        return ""
    converted, ok = _scripts()[0](text)
    return converted if ok else f"[{text}]"


def _superscript(text: str | None) -> str:
    if not text:
        return ""
    converted, ok = _scripts()[1](text)
    if ok:
        return converted
    return _CARET + (f"({text})" if _is_complex(text) else text)
