"""kb.render.latex.tex_to_text: a golden table over the project's own formulas, exact renderings of a
few, and robustness (never raises, never starts a process, bounded input)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kb.render.latex import MAX_TEX_CHARS, tex_to_text

ROOT = Path(__file__).resolve().parents[3]


def _content_formulas() -> list[tuple[str, str]]:
    out = []
    for path in sorted((ROOT / "content").rglob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        for i, formula in enumerate(data.get("formulas") or []):
            name = f"{path.stem}:{i}"
            out.append((name, formula["latex"]))
            out.extend((f"{name}:where:{symbol}", symbol) for symbol in formula.get("where") or {})
    return out


FORMULAS = _content_formulas()


def test_the_content_has_formulas():
    assert len(FORMULAS) > 20


@pytest.mark.parametrize("name,tex", FORMULAS, ids=[name for name, _ in FORMULAS])
def test_golden_every_content_formula_converts(name, tex):
    text = tex_to_text(tex)
    assert isinstance(text, str) and text.strip()
    assert "\\" not in text, text
    assert not any("\ue000" <= ch <= "\uf8ff" for ch in text), "a private-use placeholder leaked"
    for command in ("mathrm", "frac", "left", "right", "tfrac", "operatorname", "text{"):
        assert command not in text, text
    # Round and square brackets balance together: a half-open interval [a, b) is valid maths.
    assert text.count("(") + text.count("[") == text.count(")") + text.count("]"), text


@pytest.mark.parametrize(
    "tex,expected",
    [
        # softmax
        (
            r"\mathrm{softmax}(z)_i = \frac{e^{z_i}}{\sum_{k=1}^{K} e^{z_k}}",
            "softmax(z)ᵢ = (e^(zᵢ))/(∑[k=1]ᴷ e^(z[k]))",
        ),
        (
            r"\frac{\partial p_i}{\partial z_j} = p_i(\delta_{ij} - p_j),\qquad J = \mathrm{diag}(p) - p p^\top",
            "(∂pᵢ)/(∂zⱼ) = pᵢ(δᵢⱼ - pⱼ),  J = diag(p) - p pᵀ",
        ),
        # KL
        (r"D_{KL}(p\,\|\,q) = \sum_{i=1}^{n} p_i \log\frac{p_i}{q_i}", "D[KL](p ‖ q) = ∑ᵢ₌₁ⁿ pᵢ log((pᵢ)/(qᵢ))"),
        (r"H(p, q) = -\sum_i p_i\log q_i = H(p) + D_{KL}(p\,\|\,q)", "H(p, q) = -∑ᵢ pᵢ log qᵢ = H(p) + D[KL](p ‖ q)"),
        # PSNR: a word keeps its scripts, an operator name gets a space and parenthesises a fraction
        (
            r"\mathrm{PSNR} = 10\log_{10}\frac{\mathrm{MAX}_I^2}{\mathrm{MSE}} = 20\log_{10}\mathrm{MAX}_I - 10\log_{10}\mathrm{MSE}",
            "PSNR = 10 log₁₀((MAX[I]²)/(MSE)) = 20 log₁₀ MAX[I] - 10 log₁₀ MSE",
        ),
        # attention: the formula most decks show, with a fraction under a root inside softmax
        (
            r"\mathrm{Attention}(Q,K,V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right)V",
            "Attention(Q,K,V) = softmax((QKᵀ)/(√(d[k])))V",
        ),
        (
            r"\mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}} + M\right)V,\qquad M_{ij}\in\{0, -\infty\}",
            "softmax((QKᵀ)/(√(d[k])) + M)V,  Mᵢⱼ ∈ {0, -∞}",
        ),
        # fractions are parenthesised; \tfrac is \frac; known fractions are single characters
        (r"F_1 = \frac{2PR}{P+R}", "F₁ = (2PR)/(P+R)"),
        (r"\mathrm{Var}(v_\infty) = \frac{1-\beta}{1+\beta}\,\sigma^2", "Var(v[∞]) = (1-β)/(1+β) σ²"),
        (r"k=\tfrac{1}{1-\beta}", "k=1/(1-β)"),
        (r"\dfrac{1}{2}x", "½x"),
        # \text keeps its spaces, \quad is a wide gap, \_ is an underscore
        (r"\hat v_t = \frac{v_t}{1-\beta^{t}}\quad\text{when } v_0 = 0", "v̂[t] = (v[t])/(1-βᵗ)  when v₀ = 0"),
        (r"\mathrm{normal\_kl} = x", "normal_kl = x"),
        (r"\operatorname*{arg\,max}_\theta p(x)", "arg max[θ] p(x)"),
        (r"\max_j z_j", "maxⱼ zⱼ"),
        (r"x \le y \ne z", "x ≤ y ≠ z"),
        (r"\left\langle x, y \right\rangle", "⟨x, y⟩"),
        (r"\sqrt[3]{x}", "³√x"),
        (r"$x^2$", "x²"),
        # environments on one line
        (r"f(x) = \begin{cases} x & x > 0 \\ 0 & \text{otherwise} \end{cases}", "f(x) = { x, x > 0; 0, otherwise"),
        (r"A = \begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}", "A = (1, 2; 3, 4)"),
        (r"\begin{aligned} a &= b \\ c &= d \end{aligned}", "a = b; c = d"),
    ],
)
def test_exact_renderings(tex, expected):
    assert tex_to_text(tex) == expected


def test_unsupported_commands_fall_back_without_backslashes():
    text = tex_to_text(r"\unknowncmd{x} + \frac{a}{b c}")
    assert "\\" not in text
    assert "x" in text and "a/(b c)" in text.replace(" ", " ")


@pytest.mark.parametrize(
    "tex",
    [r"\frac{a", "}x{", "{" * 3_000 + "}" * 3_000, "x" * (MAX_TEX_CHARS + 1), r"\begin{cases} a", r"x^", "^", "_{"],
)
def test_bad_or_oversized_input_returns_the_source(tex):
    text = tex_to_text(tex)
    assert isinstance(text, str)
    if len(tex) > MAX_TEX_CHARS or tex.count("{") != tex.count("}"):
        assert text == tex


def test_empty_and_non_string_input():
    assert tex_to_text("") == ""
    assert tex_to_text("   ") == ""
    assert tex_to_text(None) == "None"  # type: ignore[arg-type]


def test_deeply_nested_groups_do_not_raise():
    tex = "x^{" * 600 + "y" + "}" * 600
    assert tex_to_text(tex) == tex  # nested deeper than any real formula: shown as it is
    tex = "x^{" * 30 + "y" + "}" * 30
    assert "\\" not in tex_to_text(tex)
    tex = r"\mathrm{" * 300 + "a" + "}" * 300
    assert isinstance(tex_to_text(tex), str)


def test_never_starts_a_process(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tex_to_text started a process")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    import os

    monkeypatch.setattr(os, "fork", refuse, raising=False)
    monkeypatch.setattr(os, "system", refuse)
    for _, tex in FORMULAS[:10]:
        tex_to_text(tex)
    tex_to_text(r"\weird{x}\begin{foo}y\end{foo}")


@settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.sampled_from(
            list("\\{}^_ $&[]()xyz12+-=,.")
            + [
                r"\frac",
                r"\mathrm",
                r"\left",
                r"\right",
                r"\sum",
                r"\log",
                r"\text",
                r"\begin{cases}",
                r"\end{cases}",
                r"\\",
                r"\top",
                r"\sqrt",
                r"\operatorname*",
            ]
        ),
        max_size=40,
    ).map("".join)
)
def test_never_raises_on_arbitrary_input(tex):
    assert isinstance(tex_to_text(tex), str)


def test_importing_the_package_is_cheap():
    probe = "import kb.render, kb.render.latex, json, sys; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert not loaded & {"flatlatex", "pylatexenc", "regex", "textual", "torch"}


def test_package_level_helper():
    from kb.render import tex_to_text as lazy

    assert lazy(r"x_i + y^2") == "xᵢ + y²"


# --- math in Markdown is never read as Markdown -----------------------------------------------------


import yaml as _yaml  # noqa: E402

from kb.render.markdown import _FENCE, _INLINE, DISPLAY_MATH, markdown_with_math, plain_with_math  # noqa: E402

CONTENT = Path(__file__).resolve().parents[3] / "content"
_MARKUP_OPEN = ("link_open", "em_open", "strong_open", "s_open", "image")


def _parse(markdown: str):
    from markdown_it import MarkdownIt

    return MarkdownIt("gfm-like").parse(markdown)  # the parser Textual's Markdown widget uses


def _shown_text_and_markup(markdown: str) -> tuple[str, dict[str, int]]:
    text, markup = [], {}
    for token in _parse(markdown):
        if token.type in ("code_block", "fence"):
            text.append(token.content)
        for child in token.children or ():
            if child.type in ("text", "code_inline"):
                text.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                text.append("\n")
            if child.type in _MARKUP_OPEN:
                markup[child.type] = markup.get(child.type, 0) + 1
    return "".join(text), markup


def _definitions():
    for path in sorted(CONTENT.glob("*/*.yaml")):
        data = _yaml.load(path.read_bytes(), Loader=_yaml.CSafeLoader)
        for field in ("definition", "definition_zh"):
            if data.get(field):
                yield pytest.param(data[field], id=f"{data['id']}:{field}")


@pytest.mark.parametrize("definition", list(_definitions()))
def test_math_in_a_definition_is_never_read_as_markdown(definition):
    shown, markup = _shown_text_and_markup(markdown_with_math(definition))
    prose = "".join(
        part if i % 2 else _INLINE.sub("M", DISPLAY_MATH.sub("M", part))
        for i, part in enumerate(_FENCE.split(definition))
    )
    _, prose_markup = _shown_text_and_markup(prose)
    assert markup == prose_markup, "math became a link, emphasis or an image"
    flat = " ".join(shown.split())
    for i, part in enumerate(_FENCE.split(definition)):
        if i % 2:
            continue
        for span in _INLINE.findall(DISPLAY_MATH.sub("", part)):
            expected = " ".join(tex_to_text(span).split())
            assert expected in flat, f"{span!r} should show as {expected!r}"


def test_the_kl_divergence_that_became_a_link():
    shown, markup = _shown_text_and_markup(markdown_with_math("For $D_{KL}(p\\|q)$, note $a*b*c$ and $x_1$."))
    assert markup == {} and "D[KL](p‖q)" in shown and "a*b*c" in shown
    assert plain_with_math("For $D_{KL}(p\\|q)$.") == "For D[KL](p‖q)."
