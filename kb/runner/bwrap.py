"""The outer layer of the sandbox: each warm worker runs inside bubblewrap (`bwrap`), as Flatpak's apps do.

Functions: executable, usable, arguments, reason_unusable. Standard library only.

Inside, a worker (and so every snippet it forks) has its own user, mount, PID, IPC, network, UTS
and cgroup namespaces, no capabilities, no controlling terminal (`--new-session`), and dies with
the process that started it (`--die-with-parent`). The file system it sees is built from nothing:
the system's directories (/usr, /etc, /lib...) and the Python installation read-only, a new /dev
with only the harmless devices (null, zero, full, random, urandom, tty) and the GPU's device files,
a new /proc of its own processes, a private /tmp and a size-limited private /dev/shm. The user's
home, /run, the host's /tmp and every socket file in them (a terminal multiplexer's server, a
D-Bus bus, a container daemon) simply do not exist in there.

The Landlock rules and the seccomp filter are applied inside it as well, by each run's child.
`KB_BWRAP=0` turns this layer off (the fallback then applies: see kb.runner.sandbox).
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

PROBE_TIMEOUT_S = 10.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the directory holding the `kb` package
_SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")
# Directories whose contents must stay out of the sandbox: where socket files and other users'
# runtime state live. A Python installation inside one of them is bound alone, never the whole.
_PRIVATE_ROOTS = (
    "/",
    "/tmp",
    "/var/tmp",
    "/run",
    "/var/run",
    "/var",
    "/dev",
    "/proc",
    "/sys",
    "/home",
    "/root",
    "/mnt",
    "/media",
)


def executable() -> str | None:
    """The `bwrap` program on PATH, unless KB_BWRAP=0 turns the layer off."""
    if os.environ.get("KB_BWRAP", "").strip().lower() in ("0", "off", "no", "false"):
        return None
    return shutil.which("bwrap")


def _python_dirs() -> list[str]:
    """Directories Python needs to start the worker and import what snippets import."""
    candidates = {
        sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
        os.path.dirname(os.path.realpath(sys.executable)), os.path.dirname(os.path.abspath(sys.executable)),
        _PACKAGE_ROOT,
    }  # fmt: skip
    candidates.update(p for p in sysconfig.get_paths().values() if p)
    candidates.update(p for p in sys.path if p)
    candidates.update(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)
    return [p for p in candidates if os.path.isdir(p)]


def _safe_to_bind(path: str) -> bool:
    home = os.path.expanduser("~")
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    return path not in _PRIVATE_ROOTS and path not in (home, runtime)


def _read_only_binds() -> list[str]:
    """The smallest set of directories (no one inside another) to bind read-only."""
    wanted = set()
    for path in _python_dirs():
        for form in (os.path.abspath(path), os.path.realpath(path)):
            if _safe_to_bind(form):
                wanted.add(form)
    kept: list[str] = []
    for path in sorted(wanted, key=len):
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


def _gpu_devices() -> list[str]:
    """NVIDIA and DRM device files, bound as devices so that a CUDA run can open them."""
    found = glob.glob("/dev/nvidia*") + (["/dev/dri"] if os.path.isdir("/dev/dri") else [])
    return sorted(p for p in found if os.path.exists(p))


def arguments(*, shm_bytes: int | None = None) -> list[str]:
    """bwrap's options (everything before the command) for one worker."""
    if shm_bytes is None:
        from kb.runner.models import Limits

        shm_bytes = Limits().shm_bytes
    args = [
        "--unshare-all",  # user, ipc, pid, net, uts, cgroup (where possible)
        "--die-with-parent",
        "--new-session",  # no controlling terminal: TIOCSTI has nothing to push into
        "--cap-drop", "ALL",
    ]  # fmt: skip
    for name in _SYSTEM_DIRS:
        path = "/" + name
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in _read_only_binds():
        args += ["--ro-bind", path, path]
    args += ["--ro-bind-try", "/sys", "/sys"]  # CPU topology for BLAS and torch; the GPU's PCI data
    args += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--size", str(shm_bytes), "--tmpfs", "/dev/shm"]
    for device in _gpu_devices():
        args += ["--dev-bind", device, device]
    args += ["--chdir", "/"]
    return args


@functools.lru_cache(maxsize=1)
def _probe(bwrap: str) -> str | None:
    """None when a Python can start inside bwrap with our arguments; else why not (once per process)."""
    command = [bwrap, *arguments(), "--", sys.executable, "-S", "-c", "import os; os.write(1, b'ok')"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{bwrap} could not be run ({exc})"
    if done.returncode == 0 and done.stdout == b"ok":
        return None
    detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
    return f"{bwrap} failed ({detail[-1] if detail else f'exit code {done.returncode}'})"


def reason_unusable() -> str | None:
    """Why the bubblewrap layer cannot be used here, or None when it can."""
    if sys.platform != "linux":
        return "bubblewrap is Linux-only"
    bwrap = executable()
    if bwrap is None:
        if os.environ.get("KB_BWRAP", "").strip().lower() in ("0", "off", "no", "false"):
            return "turned off by KB_BWRAP=0"
        return "bwrap is not installed (Debian/Ubuntu: apt install bubblewrap; Fedora: dnf install bubblewrap)"
    return _probe(bwrap)


def usable() -> bool:
    return reason_unusable() is None
