"""Comparing two runs of the same snippets (CUDA against CPU): verdicts and computed values.

Pure: takes what the runs recorded. A value is compared element by element: numbers within
`rtol` (relative, as float32 arithmetic differs between devices) and a small absolute floor,
strings, booleans and None exactly, lists and tuples by length then element by element.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

DEFAULT_RTOL = 1e-4  # float32 kernels differ between CPU and CUDA in the last few bits
ATOL = 1e-7  # values near 0 (an exact 0 on one device, 1e-9 on the other)


@dataclass(frozen=True)
class Mismatch:
    expression: str
    left: object
    right: object
    why: str

    def to_dict(self) -> dict:
        return {"expression": self.expression, "left": self.left, "right": self.right, "why": self.why}


def _value(entry: object) -> object:
    return entry["value"] if isinstance(entry, dict) and "value" in entry else entry


def _differ(a: object, b: object, rtol: float) -> str | None:
    """Why a and b differ, or None when they agree."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return None if a == b else "not equal"
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) and math.isnan(b):
            return None
        if math.isinf(a) or math.isinf(b):
            return None if a == b else "not equal"
        if math.isclose(a, b, rel_tol=rtol, abs_tol=ATOL):
            return None
        return f"differ by {abs(a - b):.3g} (relative {abs(a - b) / max(abs(a), abs(b)):.3g}, tolerance {rtol:g})"
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return f"lengths {len(a)} and {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            why = _differ(x, y, rtol)
            if why:
                return f"[{i}]: {why}"
        return None
    return None if a == b else f"types {type(a).__name__} and {type(b).__name__}"


def compare_values(left: dict | None, right: dict | None, *, rtol: float = DEFAULT_RTOL) -> list[Mismatch]:
    """Every computed value recorded by both runs that disagrees; a value only one run has is a
    mismatch too."""
    left, right = left or {}, right or {}
    out = []
    for expression in sorted(set(left) | set(right)):
        if expression not in left or expression not in right:
            out.append(Mismatch(expression, _value(left.get(expression)), _value(right.get(expression)), "missing"))
            continue
        a, b = _value(left[expression]), _value(right[expression])
        why = _differ(a, b, rtol)
        if why:
            out.append(Mismatch(expression, a, b, why))
    return out


@dataclass
class ParityRow:
    """One entry run on both devices."""

    id: str
    left_status: str
    right_status: str
    left_seconds: float
    right_seconds: float
    compared: int
    mismatches: list[Mismatch] = field(default_factory=list)
    rtol: float = DEFAULT_RTOL
    note: str | None = None  # why the entry did not run on one side (devices: [cpu], untrusted)
    left_message: str | None = None
    right_message: str | None = None

    @property
    def agrees(self) -> bool:
        """Both passed with the same values, or neither ran for the same reason (skipped on both):
        a run that failed or crashed on both devices is no agreement."""
        if self.left_status == self.right_status == "passed":
            return not self.mismatches
        return self.left_status == self.right_status and self.left_status in ("skipped", "untrusted")

    def to_dict(self, left: str, right: str) -> dict:
        return {
            "id": self.id,
            f"{left}_status": self.left_status,
            f"{right}_status": self.right_status,
            f"{left}_seconds": round(self.left_seconds, 4),
            f"{right}_seconds": round(self.right_seconds, 4),
            "values_compared": self.compared,
            "rtol": self.rtol,
            "agrees": self.agrees,
            "mismatches": [m.to_dict() for m in self.mismatches],
            "note": self.note,
            f"{left}_message": self.left_message,
            f"{right}_message": self.right_message,
        }
