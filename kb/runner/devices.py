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


def _torch_built_with_cuda() -> bool:
    """Read torch/version.py as text: a CPU-only build says `cuda = None`, no probe needed."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    version_file = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        text = version_file.read_text(encoding="utf-8")
    except OSError:
        return True  # unknown: let the probe decide
    return not any(
        line.replace(" ", "").startswith(("cuda:Optional[str]=None", "cuda=None")) for line in text.splitlines()
    )


def _probe_cuda() -> bool:
    # Importing torch costs over a second: skip it when there is no CUDA build or no NVIDIA device.
    if not _torch_built_with_cuda() or not (os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/nvidia0")):
        return False
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120, cwd="/"
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and probe.stdout.strip().endswith("cuda")
