"""Linux process controls used by the runner, and the isolation report for `kb doctor`.

Functions: set_child_subreaper, set_parent_death_signal, landlock_abi, seccomp_available,
drop_capabilities, private_dev_shm, confine, unavailable_reason, inner_level, sandbox_level,
task_count, children_of, sweep_children, kill_marked, isolation_report. Standard library and ctypes
only, so the calling process can use them without importing torch.

The layers, outermost first:
1. bubblewrap (kb.runner.bwrap): the worker itself runs in new namespaces with a file system built
   from the system's and Python's directories only. Where `bwrap` is missing or cannot create
   namespaces, the fallback takes its place: a keeper process (kb.runner.keeper) that kills what
   outlives a worker, and a private /dev/shm per run where a mount namespace can be had.
2. confine(), applied by each run's child only, never by the worker or the pool: every capability
   dropped with NO_NEW_PRIVS, one Landlock ruleset (writes only to the run's workdir, a private
   /dev/shm and the harmless device files; no TCP; signals and abstract unix sockets scoped to the
   run) and the seccomp filter of kb.runner.seccomp. Each is best effort: what the kernel lacks is
   skipped, and the returned dict says what was applied.

`sandbox_level()` is the cheap probe a caller uses to decide whether an untrusted snippet may run at
all; tests make the inner layers "rlimits-only" by monkeypatching `landlock_abi` to return 0 and
`seccomp_available` to return False (confine() consults the same two functions, so a child forked
from the patched process confines nothing either).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import platform
import signal
import sys
import time
from typing import Any

from kb.runner import bwrap, seccomp

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on every Linux architecture
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
SYS_LANDLOCK_ADD_RULE = 445
LANDLOCK_RULE_PATH_BENEATH = 1
LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET = 1
LANDLOCK_SCOPE_SIGNAL = 2
LANDLOCK_SIGNAL_ABI = 6  # the first ABI with scoped signals
LANDLOCK_NET_ABI = 4  # the first ABI with TCP bind/connect rights

# Landlock filesystem rights (uapi/linux/landlock.h). Only write-type rights are handled: reads and
# execution stay unrestricted (snippets import libraries), and IOCTL_DEV (ABI 5) is deliberately
# not handled so that CUDA's ioctls on /dev/nvidia* keep working.
LANDLOCK_ACCESS_FS_WRITE_FILE = 1 << 1
LANDLOCK_ACCESS_FS_REMOVE_DIR = 1 << 4
LANDLOCK_ACCESS_FS_REMOVE_FILE = 1 << 5
LANDLOCK_ACCESS_FS_MAKE_CHAR = 1 << 6
LANDLOCK_ACCESS_FS_MAKE_DIR = 1 << 7
LANDLOCK_ACCESS_FS_MAKE_REG = 1 << 8
LANDLOCK_ACCESS_FS_MAKE_SOCK = 1 << 9
LANDLOCK_ACCESS_FS_MAKE_FIFO = 1 << 10
LANDLOCK_ACCESS_FS_MAKE_BLOCK = 1 << 11
LANDLOCK_ACCESS_FS_MAKE_SYM = 1 << 12
LANDLOCK_ACCESS_FS_REFER = 1 << 13  # ABI >= 2
LANDLOCK_ACCESS_FS_TRUNCATE = 1 << 14  # ABI >= 3
LANDLOCK_ACCESS_NET_BIND_TCP = 1 << 0  # ABI >= 4
LANDLOCK_ACCESS_NET_CONNECT_TCP = 1 << 1  # ABI >= 4
_FS_WRITE_ABI1 = (
    LANDLOCK_ACCESS_FS_WRITE_FILE
    | LANDLOCK_ACCESS_FS_REMOVE_DIR
    | LANDLOCK_ACCESS_FS_REMOVE_FILE
    | LANDLOCK_ACCESS_FS_MAKE_CHAR
    | LANDLOCK_ACCESS_FS_MAKE_DIR
    | LANDLOCK_ACCESS_FS_MAKE_REG
    | LANDLOCK_ACCESS_FS_MAKE_SOCK
    | LANDLOCK_ACCESS_FS_MAKE_FIFO
    | LANDLOCK_ACCESS_FS_MAKE_BLOCK
    | LANDLOCK_ACCESS_FS_MAKE_SYM
)

X32_SYSCALL_BIT = seccomp.X32_SYSCALL_BIT

# Capabilities and namespaces (uapi/linux/prctl.h, capability.h, securebits.h, sched.h, mount.h)
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
# NOROOT and NO_CAP_AMBIENT_RAISE, each with its lock, and KEEP_CAPS locked off: an exec as uid 0
# gains nothing back.
SECURE_BITS = (1 << 0) | (1 << 1) | (1 << 5) | (1 << 6) | (1 << 7)
LINUX_CAPABILITY_VERSION_3 = 0x20080522
CAP_SYS_ADMIN = 21
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 0x4000, 1 << 18
# Device files a run may open for writing: the harmless ones, and a GPU's (CUDA writes to them).
WRITABLE_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
GPU_DEVICE_PATTERNS = ("/dev/nvidia*", "/dev/nvidia-caps", "/dev/dri")

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
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # __attribute__((packed)) in the kernel's header: 12 bytes
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _syscall_error(name: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{name}: {os.strerror(err)}")


def _fs_write_rights(abi: int) -> int:
    rights = _FS_WRITE_ABI1
    if abi >= 2:
        rights |= LANDLOCK_ACCESS_FS_REFER
    if abi >= 3:
        rights |= LANDLOCK_ACCESS_FS_TRUNCATE
    return rights


def _writable_device_files() -> list[str]:
    found = [p for p in WRITABLE_DEVICES if os.path.exists(p)]
    for pattern in GPU_DEVICE_PATTERNS:
        found.extend(sorted(glob.glob(pattern)))
    return found


def _landlock_rules(workdir: str, abi: int, *, shm: bool) -> list[tuple[str, int]]:
    """(path, allowed rights) of the write allow-list; a missing path is skipped by the caller.

    No rule allows making a block or character device anywhere, and /dev/shm is writable only when
    the run has a private one (it is shared with every other program otherwise).
    """
    in_tree = _fs_write_rights(abi) & ~(LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_CHAR)
    rules = [(workdir, in_tree)]
    if shm:
        rules.append(("/dev/shm", in_tree))
    # Existing device files only, one rule each: never a terminal (/dev/pts/N, /dev/tty) or a disk.
    open_for_writing = LANDLOCK_ACCESS_FS_WRITE_FILE | (LANDLOCK_ACCESS_FS_TRUNCATE if abi >= 3 else 0)
    rules.extend((path, open_for_writing) for path in _writable_device_files())
    return rules


def _add_path_rule(ruleset_fd: int, path: str, rights: int) -> None:
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        rule = _PathBeneathAttr(rights, fd)
        if (
            libc().syscall(
                SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset_fd), LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0
            )
            != 0
        ):
            raise _syscall_error(f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def _landlock(workdir: str, abi: int, applied: dict[str, Any], *, shm: bool) -> None:
    """Create, fill and enforce one Landlock ruleset on this process (NO_NEW_PRIVS must be set)."""
    handled_fs = _fs_write_rights(abi)
    handled_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP if abi >= LANDLOCK_NET_ABI else 0
    scoped = LANDLOCK_SCOPE_SIGNAL | LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET if abi >= LANDLOCK_SIGNAL_ABI else 0
    attr = _RulesetAttr(handled_fs, handled_net, scoped)
    # Older kernels know a shorter struct: pass only the fields their ABI has.
    size = 8 if abi < LANDLOCK_NET_ABI else 16 if abi < LANDLOCK_SIGNAL_ABI else ctypes.sizeof(attr)
    ruleset = libc().syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        raise _syscall_error("landlock_create_ruleset")
    ruleset = int(ruleset)
    try:
        allowed = []
        for path, rights in _landlock_rules(workdir, abi, shm=shm):
            if not os.path.exists(path):
                continue
            _add_path_rule(ruleset, path, rights)  # a failure aborts: never enforce a half-built list
            allowed.append(path)
        # No network rule: with BIND_TCP and CONNECT_TCP handled, every TCP bind and connect fails.
        if libc().syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), 0) != 0:
            raise _syscall_error("landlock_restrict_self")
    finally:
        os.close(ruleset)
    applied["filesystem"] = True
    applied["writable"] = allowed
    applied["network_tcp"] = bool(handled_net)
    applied["signals"] = bool(scoped)


def seccomp_available() -> bool:
    """Whether this kernel can install the seccomp filter here (see kb.runner.seccomp)."""
    return seccomp.available(libc())


def install_seccomp_filter(*, allow_unix_sockets: bool = False) -> bool:
    """Install the filter of kb.runner.seccomp on this thread and its future children."""
    return seccomp.install(libc(), allow_unix_sockets=allow_unix_sockets)


def _effective_capabilities() -> int:
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return 0


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> bool:
    """Give up every capability for good, as root too: bounding set, ambient set, then capset(0).

    With the securebits locked, even exec of a program as uid 0 gains nothing back. Returns whether
    the effective set is empty afterwards.
    """
    if sys.platform != "linux":
        return False
    lib = libc()
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 63
    if _effective_capabilities():
        lib.prctl(PR_SET_SECUREBITS, ctypes.c_ulong(SECURE_BITS), 0, 0, 0)  # needs CAP_SETPCAP: before the drop
        for cap in range(last + 1):
            lib.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0)
    lib.prctl(PR_CAP_AMBIENT, ctypes.c_ulong(PR_CAP_AMBIENT_CLEAR_ALL), 0, 0, 0)
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if lib.capset(ctypes.byref(header), data) != 0:
        return False
    return _effective_capabilities() == 0


def private_dev_shm(size_bytes: int) -> bool:
    """Mount an empty tmpfs of `size_bytes` on /dev/shm, seen by this process and its children only.

    Needs a mount namespace of our own: as root (CAP_SYS_ADMIN) directly, otherwise inside a new user
    namespace where the kernel allows unprivileged ones. What a run leaves there vanishes with its
    last process, and it cannot touch the shared memory of any other program. False when neither
    works; the caller then gives the run no /dev/shm at all.
    """
    if sys.platform != "linux" or not os.path.isdir("/dev/shm"):
        return False
    lib = libc()
    uid, gid = os.getuid(), os.getgid()
    privileged = bool(_effective_capabilities() & (1 << CAP_SYS_ADMIN))
    flags = CLONE_NEWNS if privileged else CLONE_NEWNS | CLONE_NEWUSER
    if lib.unshare(flags) != 0:
        return False
    try:
        if not privileged:
            for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
        # Private first: a mount on a shared /dev/shm would otherwise appear on the host too.
        if lib.mount(None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None) != 0:
            raise _syscall_error("mount(/, MS_PRIVATE)")
        options = f"size={int(size_bytes)},mode=1777".encode()
        if lib.mount(b"tmpfs", b"/dev/shm", b"tmpfs", ctypes.c_ulong(MS_NOSUID | MS_NODEV | MS_NOEXEC), options) != 0:
            raise _syscall_error("mount(/dev/shm)")
    except OSError:
        return False  # the namespace stays, but /dev/shm is not ours: the caller denies it
    return True


def confine(workdir: str, *, inside_bubblewrap: bool = False, shm_bytes: int = 256 * 1024**2) -> dict[str, Any]:
    """Confine this process and its future children to one snippet run, as far as the kernel allows.

    Inside bubblewrap (the worker already runs in its namespaces, with a private /dev/shm the worker
    empties after each run) this adds the inner layers; outside it, the fallback first gives the run
    a private /dev/shm where it can. Then, in order: every capability dropped and NO_NEW_PRIVS (as
    root too); Landlock (ABI >= 1): writes only beneath `workdir` (and /dev/shm when private) and to
    the harmless device files, never a device node made; ABI >= 4: no TCP bind or connect; ABI >= 6:
    signals and abstract unix sockets stay within the run; the seccomp filter of kb.runner.seccomp
    (AF_UNIX sockets allowed only inside bubblewrap). Reads are not restricted here. Never raises for
    a missing kernel feature. Returns what was applied: {"layer", "landlock_abi", "filesystem",
    "writable", "network_tcp", "signals", "seccomp", "capabilities_dropped", "private_shm", "errors"}.
    """
    applied: dict[str, Any] = {
        "layer": "bubblewrap" if inside_bubblewrap else "fallback",
        "landlock_abi": 0,
        "filesystem": False,
        "writable": [],
        "network_tcp": False,
        "signals": False,
        "seccomp": False,
        "capabilities_dropped": False,
        "private_shm": inside_bubblewrap,
        "errors": [],
    }
    if sys.platform != "linux":
        return applied
    abi = landlock_abi()
    use_seccomp = seccomp_available()
    applied["landlock_abi"] = abi
    if not inside_bubblewrap:
        applied["private_shm"] = private_dev_shm(shm_bytes)
    applied["capabilities_dropped"] = drop_capabilities()
    try:
        # Required for an unprivileged landlock_restrict_self and seccomp filter; also keeps setuid
        # programs from gaining privileges.
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
    except OSError as exc:
        applied["errors"].append(str(exc))
        return applied
    if abi >= 1:
        try:
            _landlock(workdir, abi, applied, shm=applied["private_shm"])
        except OSError as exc:
            applied["errors"].append(str(exc))
    if use_seccomp:
        try:
            applied["seccomp"] = install_seccomp_filter(allow_unix_sockets=inside_bubblewrap)
        except OSError as exc:
            applied["errors"].append(str(exc))
    return applied


def unavailable_reason(applied: dict[str, Any]) -> str | None:
    """Why a run that requires confinement must not run, or None when it may (for RunSpec.sandbox).

    Confinement counts as applied when the run is inside bubblewrap, or the Landlock filesystem
    ruleset or the seccomp filter is in force (the same rule as sandbox_level() != "rlimits-only").
    """
    if applied.get("layer") == "bubblewrap" or applied.get("filesystem") or applied.get("seccomp"):
        return None
    detail = "; ".join(applied.get("errors") or ()) or (
        f"Landlock ABI {applied.get('landlock_abi', 0)} and no seccomp filter support on this kernel"
    )
    return (
        f"sandbox unavailable: neither the Landlock filesystem rules nor the seccomp filter could be applied ({detail})"
    )


def inner_level() -> str:
    """ "landlock+seccomp", "landlock", "seccomp" or "rlimits-only": what confine() can apply here."""
    landlock = landlock_abi() >= 1
    use_seccomp = seccomp_available()
    if landlock and use_seccomp:
        return "landlock+seccomp"
    if landlock:
        return "landlock"
    if use_seccomp:
        return "seccomp"
    return "rlimits-only"


def sandbox_level(*, bubblewrap: bool | None = None) -> str:
    """The layers a run gets here: "bubblewrap+landlock+seccomp", "landlock+seccomp", ..., "rlimits-only".

    Cheap after the first call (bubblewrap is probed once per process). A caller refuses untrusted
    snippets at "rlimits-only". `bubblewrap` says whether the pool will use it (default: if usable).
    """
    inner = inner_level()
    if bubblewrap is None:
        bubblewrap = sys.platform == "linux" and bwrap.usable()
    if bubblewrap:
        return "bubblewrap" if inner == "rlimits-only" else f"bubblewrap+{inner}"
    return inner


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
    use_seccomp = seccomp_available()
    bwrap_reason = bwrap.reason_unusable() if linux else "Linux only"
    signal_scope = abi >= LANDLOCK_SIGNAL_ABI
    network = [what for what, on in (
        ("every socket (network namespace of bubblewrap)", bwrap_reason is None),
        ("tcp (landlock)", abi >= LANDLOCK_NET_ABI),
        ("non-unix sockets (seccomp)" if bwrap_reason is None else "every socket() (seccomp)", use_seccomp),
    ) if on]  # fmt: skip
    return {
        "platform": sys.platform,
        "kernel": platform.release(),
        "root": root,
        "rlimits": {
            "cpu": f"soft {limits.cpu_s:g} s, hard {limits.cpu_s + 1:g} s",
            "address_space": f"{limits.memory_bytes / 2**30:g} GiB (CPU runs; CUDA runs: the same as data "
            "segment limit, and the allocator's memory fraction on the GPU)",
            "file_size": f"{limits.file_bytes / 2**20:g} MiB",
            "shared_memory": f"{limits.shm_bytes / 2**20:g} MiB, emptied after every run",
            "core": "0",
            "nproc": "not set: running as root, which ignores RLIMIT_NPROC"
            if root
            else f"current task count + {limits.nproc_extra}",
        },
        "process_group": linux,  # each run is its own session and group, killed as a group
        "parent_death_signal": linux,
        "subreaper": linux and _kernel_at_least(3, 4),
        "bubblewrap": bwrap_reason is None,
        "bubblewrap_reason": bwrap_reason,  # why not, when it is not used
        "landlock_abi": abi,
        "landlock_signal_scope": signal_scope,  # applied to every run when true
        # Every run (own decks too) may write only beneath its temp dir, a private /dev/shm and the
        # harmless device files (Landlock ABI >= 1); reads are limited by bubblewrap's view only.
        "filesystem_restricted": abi >= 1,
        "network_restricted": ", ".join(network) if network else False,
        "seccomp": use_seccomp,
        "level": sandbox_level(bubblewrap=bwrap_reason is None),
        # With neither Landlock, seccomp nor bubblewrap, only the user's own decks run.
        "sandbox_capable": abi >= 1 or use_seccomp or bwrap_reason is None,
    }
