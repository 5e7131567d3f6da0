"""One Markdown page per concept and an index per category, for a static site generator.

Math stays as `$...$`/`$$...$$` (MathJax/KaTeX in MkDocs, Hugo, Jekyll); pages link to related
concepts by relative path; each page has YAML front matter (title, tags).
"""

from __future__ import annotations

import json
from pathlib import Path

from kb.bilingual import localized
from kb.schema import CATEGORIES


def _front_matter(concept: dict) -> str:
    # JSON strings are valid YAML scalars: titles with ':' or quotes stay intact.
    title = json.dumps(f"{concept['title']['en']} / {concept['title']['zh']}", ensure_ascii=False)
    tags = json.dumps([concept["category"], *concept.get("tags", [])], ensure_ascii=False)
    return f"---\ntitle: {title}\ntags: {tags}\n---\n"


def _link(target: str, titles: dict[str, tuple[str, str]], here: str) -> str:
    if target not in titles:
        return f"`{target}`"
    title, category = titles[target]
    path = f"{target}.md" if category == here else f"../{category}/{target}.md"
    return f"[{title}]({path})"


def _fence(text: str, language: str = "") -> str:
    """A fence longer than any backtick run in the text, so the text cannot close it."""
    longest = max((len(line) - len(line.lstrip("`")) for line in text.split("\n")), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{language}\n{text.rstrip()}\n{ticks}"


def concept_page(concept: dict, last_run: dict | None, titles: dict[str, tuple[str, str]]) -> str:
    """The Markdown page of one concept."""
    here = concept["category"]
    lines = [
        _front_matter(concept),
        f"# {concept['title']['en']} / {concept['title']['zh']}",
        "",
        f"> {concept['summary']['en']}",
        ">",
        f"> {concept['summary']['zh']}",
        "",
        concept["definition"].strip(),
        "",
    ]
    if concept.get("definition_zh"):
        lines += [concept["definition_zh"].strip(), ""]
    if concept.get("formulas"):
        lines += ["## Formulas", ""]
        for formula in concept["formulas"]:
            lines += [f"**{localized(formula['name'], 'both')}**", "", f"$${formula['latex'].strip()}$$", ""]
            lines += [
                f"- ${symbol}$: {localized(meaning, 'both')}"
                for symbol, meaning in (formula.get("where") or {}).items()
            ]
            lines.append("")
    if concept.get("pitfalls"):
        lines += ["## Pitfalls", ""] + [f"- {localized(p, 'both', '<br>')}" for p in concept["pitfalls"]] + [""]
    if concept.get("snippet"):
        lines += ["## Example", "", _fence(concept["snippet"]["code"], "python"), ""]
        if last_run:
            lines += [
                f"Last run: **{last_run['status']}** on {last_run['device']} "
                f"(torch {last_run.get('torch_version')}, {last_run['created_at'][:10]})",
                "",
            ]
            if (last_run.get("output") or "").strip():
                lines += ["Output:", "", _fence(last_run["output"], "text"), ""]
    for heading, key in (("Prerequisites", "prerequisites"), ("Related", "related")):
        if concept.get(key):
            lines += [f"## {heading}", ""] + [f"- {_link(t, titles, here)}" for t in concept[key]] + [""]
    if concept.get("sources"):
        lines += ["## Sources", ""] + [f"- [{s['title']}]({s['url']})" for s in concept["sources"]] + [""]
    return "\n".join(lines).rstrip() + "\n"


def category_index(category: str, concepts: list[dict]) -> str:
    """The index page of a category: its concepts with their summaries."""
    lines = [f"---\ntitle: {category}\n---\n", f"# {category}", ""]
    lines += [f"- [{c['title']['en']} / {c['title']['zh']}]({c['id']}.md): {c['summary']['en']}" for c in concepts]
    return "\n".join(lines) + "\n"


def export_markdown(rows: list[dict], out_dir: Path) -> dict[str, int]:
    """Write the pages under `out_dir`: <category>/<id>.md, <category>/index.md and index.md."""
    titles = {row["data"]["id"]: (row["data"]["title"]["en"], row["data"]["category"]) for row in rows}
    by_category: dict[str, list[dict]] = {}
    for row in rows:
        concept = row["data"]
        by_category.setdefault(concept["category"], []).append(concept)
        path = out_dir / concept["category"] / f"{concept['id']}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(concept_page(concept, row.get("last_run"), titles), encoding="utf-8")
    order = [c for c in CATEGORIES if c in by_category]
    for category in order:
        (out_dir / category / "index.md").write_text(category_index(category, by_category[category]), encoding="utf-8")
    top = ["# kb", ""] + [f"- [{c}]({c}/index.md) ({len(by_category[c])})" for c in order]
    (out_dir / "index.md").write_text("\n".join(top) + "\n", encoding="utf-8")
    return {"concepts": len(rows), "categories": len(order)}
