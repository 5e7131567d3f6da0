"""Linux process controls used by the runner, and the isolation report for `kb doctor`.

Functions: set_child_subreaper, set_parent_death_signal, landlock_abi, restrict_signals,
task_count, children_of, sweep_children, kill_marked, isolation_report. Standard library and ctypes
only, so the calling process can use them without importing torch.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import signal
import sys
import time
from typing import Any

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on every Linux architecture
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET = 1
LANDLOCK_SCOPE_SIGNAL = 2
LANDLOCK_SIGNAL_ABI = 6  # the first ABI with scoped signals

_libc: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc


def _prctl(option: int, arg: int) -> None:
    if libc().prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


def set_child_subreaper() -> None:
    """Orphans among our descendants are reparented to us, so a daemonised snippet can be reaped."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    _prctl(PR_SET_PDEATHSIG, sig)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 if unsupported or disabled."""
    if sys.platform != "linux":
        return 0
    try:
        abi = libc().syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), LANDLOCK_CREATE_RULESET_VERSION)
    except (OSError, AttributeError):
        return 0
    return max(int(abi), 0)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


def restrict_signals() -> bool:
    """Confine signals and abstract unix sockets to this process and its descendants (Landlock ABI >= 6).

    Afterwards `os.kill` of the worker, the pool or any other outside process fails with EPERM.
    File and network access are not restricted. Returns whether the restriction is in force.
    """
    if landlock_abi() < LANDLOCK_SIGNAL_ABI:
        return False
    attr = _RulesetAttr(0, 0, LANDLOCK_SCOPE_SIGNAL | LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET)
    fd = libc().syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), 0)
    if fd < 0:
        return False
    try:
        _prctl(PR_SET_NO_NEW_PRIVS, 1)  # required for an unprivileged landlock_restrict_self
        return libc().syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(fd), 0) == 0
    finally:
        os.close(fd)


def seccomp_available() -> bool:
    try:
        import pyseccomp  # noqa: F401
    except Exception:
        return False
    return True


def task_count(uid: int) -> int:
    """Tasks (threads) whose real uid is `uid`: what RLIMIT_NPROC counts."""
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as f:
                fields = dict(line.split(b":", 1) for line in f.read().splitlines() if b":" in line)
            if int(fields[b"Uid"].split()[0]) == uid:
                total += int(fields[b"Threads"])
        except (OSError, KeyError, ValueError):
            continue  # the process ended while we looked
    return total


def _ppid_map() -> dict[int, int]:
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses; the fields after the last ")" do not.
        parents[int(name)] = int(stat[stat.rindex(b")") + 2 :].split()[1])
    return parents


def children_of(pid: int) -> list[int]:
    """Direct children of `pid` (zombies included)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:  # kernel without CONFIG_PROC_CHILDREN
        return [child for child, parent in _ppid_map().items() if parent == pid]


def descendants_of(pid: int) -> list[int]:
    kids_of: dict[int, list[int]] = {}
    for child, parent in _ppid_map().items():
        kids_of.setdefault(parent, []).append(child)
    found: list[int] = []
    frontier = [pid]
    while frontier:
        kids = kids_of.get(frontier.pop(), [])
        found.extend(kids)
        frontier.extend(kids)
    return found


def _kill(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def sweep_children(max_rounds: int = 200) -> int:
    """Kill and reap every descendant of this process (which must be a child subreaper).

    Killing a child reparents its own children to us, so repeat until none is left; each round kills
    the whole visible tree so that a process forking during the sweep survives at most one round.
    Returns how many processes were reaped.
    """
    me = os.getpid()
    reaped = 0
    for _ in range(max_rounds):
        kids = children_of(me)
        if not kids:
            break
        for pid in descendants_of(me):
            _kill(pid)
        for pid in kids:
            try:
                os.waitpid(pid, 0)
                reaped += 1
            except ChildProcessError:
                pass
    return reaped


def kill_marked(marker: bytes, rounds: int = 20) -> int:
    """SIGKILL every process whose environment contains `marker` (used when a worker died mid-run).

    A dead worker can no longer reap the snippet it was running, so the pool finds what is left
    (the group, and anything that called setsid) by the worker's token, which every descendant
    inherits in its environment. Returns how many processes were signalled.
    """
    me = os.getpid()
    killed = 0
    for _ in range(rounds):
        found = 0
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == me:
                continue
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    environ = f.read()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                _kill(int(name))
                found += 1
        killed += found
        if not found:
            break
        time.sleep(0.01)  # let the killed processes go before looking for their forks
    return killed


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        parts = platform.release().split(".")
        return (int(parts[0]), int(parts[1].split("-")[0])) >= (major, minor)
    except (ValueError, IndexError):
        return False


def isolation_report() -> dict[str, Any]:
    """What the runner enforces on this machine (for `kb doctor` and the TUI's isolation badge)."""
    from kb.runner.models import Limits

    linux = sys.platform == "linux"
    root = linux and os.geteuid() == 0
    abi = landlock_abi()
    limits = Limits()
    seccomp = seccomp_available()
    signal_scope = abi >= LANDLOCK_SIGNAL_ABI
    return {
        "platform": sys.platform,
        "kernel": platform.release(),
        "root": root,
        "rlimits": {
            "cpu": f"soft {limits.cpu_s:g} s, hard {limits.cpu_s + 1:g} s",
            "address_space": f"{limits.memory_bytes} bytes (CPU runs; CUDA runs use the allocator's memory fraction)",
            "file_size": f"{limits.file_bytes} bytes",
            "core": "0",
            "nproc": "not set: running as root, which ignores RLIMIT_NPROC"
            if root
            else f"current task count + {limits.nproc_extra}",
        },
        "process_group": linux,  # each run is its own group, killed as a group
        "parent_death_signal": linux,
        "subreaper": linux and _kernel_at_least(3, 4),
        "landlock_abi": abi,
        "landlock_signal_scope": signal_scope,  # applied to every run when true
        "filesystem_restricted": False,  # not applied: a snippet can write outside its temp dir
        "network_restricted": False,  # not applied: a snippet can open sockets
        "seccomp": seccomp,
        "level": "signal-scoped" if signal_scope else "rlimits-only",
        # RELIABILITY.md's probe: with neither Landlock nor seccomp in the kernel, run only local decks.
        # Either way files and network are not yet confined, so imported decks still need `kb trust`.
        "sandbox_capable": abi > 0 or seccomp,
    }
