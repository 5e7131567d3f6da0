"""CJK text in the word index: one definition of the characters and of the grams appended for them.

FTS5 cannot split Chinese or Japanese into words, so sync stores each CJK run's characters and
bigrams as extra words after a marker; search matches them and cuts them off before showing text.
"""

from __future__ import annotations

import re

# Han (extension A, unified, compatibility), kana and Hangul.
_CJK_CLASS = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]"
CJK_CHAR = re.compile(_CJK_CLASS)
CJK_RUN = re.compile(_CJK_CLASS + "+")

# Ends the written text and starts its grams: the unit separator does not occur in ordinary text.
GRAMS_MARK = "\n\x1f"


def with_cjk_grams(text: str) -> str:
    """The text plus each CJK run's characters and bigrams as separate words, for short queries."""
    grams = []
    for run in CJK_RUN.findall(text):
        grams.extend(run)
        grams.extend(run[i : i + 2] for i in range(len(run) - 1))
    return text + (GRAMS_MARK + " ".join(grams) if grams else "")


def without_grams(text: str) -> str:
    """The indexed text as it was written, for excerpts and exact-name matches."""
    return text.split(GRAMS_MARK, 1)[0]


def is_cjk(term: str) -> bool:
    return all(CJK_CHAR.match(ch) for ch in term)
