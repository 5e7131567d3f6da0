"""Every concept with its cards and last run record, as one JSON document."""

from __future__ import annotations

import json
from pathlib import Path

FORMAT = "kb-export"


def export_document(rows: list[dict], *, schema_version: int, kb_version: str | None) -> dict:
    """The export as a plain dict: format, versions and the concepts in id order."""
    concepts = [{**row["data"], "cards": row["cards"], "last_run": row["last_run"]} for row in rows]
    return {"format": FORMAT, "schema_version": schema_version, "kb_version": kb_version, "concepts": concepts}


def export_json(rows: list[dict], out: Path, *, schema_version: int, kb_version: str | None) -> int:
    """Write the export to `out` (atomically); returns the number of concepts."""
    document = export_document(rows, schema_version=schema_version, kb_version=kb_version)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    partial.replace(out)
    return len(document["concepts"])
