"""Which devices snippets can run on, probed once in a subprocess (never import torch here)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

_PROBE = "import torch; print('cuda' if torch.cuda.is_available() else 'cpu-only')"
_lock = threading.Lock()
_cached: list[str] | None = None


def detect_devices() -> list[str]:
    """["cpu"], plus "cuda" when torch sees a GPU. Cached for the life of the process."""
    global _cached
    with _lock:
        if _cached is None:
            _cached = ["cpu"] + (["cuda"] if _probe_cuda() else [])
        return list(_cached)


def _probe_cuda() -> bool:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120, cwd="/"
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and probe.stdout.strip().endswith("cuda")
