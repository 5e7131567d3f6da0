"""Linux process controls used by the runner, and the isolation report for `kb doctor`.

Functions: set_child_subreaper, set_parent_death_signal, landlock_abi, seccomp_available,
sandbox_level, confine, install_seccomp_filter, unavailable_reason, task_count, children_of,
sweep_children, kill_marked, isolation_report. Standard library and ctypes only, so the calling
process can use them without importing torch.

Confinement (`confine`) is applied by each run's child process only, never by the worker or the
pool: one Landlock ruleset (writes only to the run's workdir, /dev/shm and files under /dev; no TCP;
signals and abstract unix sockets scoped to the run) and one seccomp filter (no socket other than
AF_UNIX). Both are best effort: what the kernel lacks is skipped, and the returned dict says what
was applied. `sandbox_level()` is the cheap probe a caller uses to decide whether an untrusted
snippet may run at all; tests make it "rlimits-only" by monkeypatching `landlock_abi` to return 0
and `seccomp_available` to return False (confine() consults the same two functions, so a child
forked from the patched process confines nothing either).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
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

# seccomp (uapi/linux/seccomp.h, filter.h, audit.h)
PR_GET_SECCOMP = 21
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_GET_ACTION_AVAIL = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000
AF_UNIX = 1
# machine -> (AUDIT_ARCH, socket, seccomp, io_uring_setup) syscall numbers of the 64-bit ABI.
_SECCOMP_ARCHES = {
    "x86_64": (AUDIT_ARCH_X86_64, 41, 317, 425),
    "aarch64": (AUDIT_ARCH_AARCH64, 198, 277, 425),
}
_BPF_LD_W_ABS = 0x00 | 0x00 | 0x20  # BPF_LD | BPF_W | BPF_ABS
_BPF_JEQ_K = 0x05 | 0x10 | 0x00  # BPF_JMP | BPF_JEQ | BPF_K
_BPF_JGE_K = 0x05 | 0x30 | 0x00  # BPF_JMP | BPF_JGE | BPF_K
_BPF_RET_K = 0x06 | 0x00  # BPF_RET | BPF_K
# Offsets into struct seccomp_data {int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6];}.
_SECCOMP_NR = 0
_SECCOMP_ARCH = 4
_SECCOMP_ARG0_LOW = 16  # little-endian: the low 32 bits of args[0] come first

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


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # __attribute__((packed)) in the kernel's header: 12 bytes
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


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


def _landlock_rules(workdir: str, abi: int) -> list[tuple[str, int]]:
    """(path, allowed rights) of the write allow-list; a missing path is skipped by the caller."""
    everything = _fs_write_rights(abi)
    # /dev: open existing device files for writing (/dev/null, /dev/nvidia*), but create nothing.
    dev = LANDLOCK_ACCESS_FS_WRITE_FILE | (LANDLOCK_ACCESS_FS_TRUNCATE if abi >= 3 else 0)
    return [(workdir, everything), ("/dev/shm", everything), ("/dev", dev)]


def _add_path_rule(ruleset_fd: int, path: str, rights: int) -> None:
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        rule = _PathBeneathAttr(rights, fd)
        if libc().syscall(SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset_fd), LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
            raise _syscall_error(f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def _landlock(workdir: str, abi: int, applied: dict[str, Any]) -> None:
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
        for path, rights in _landlock_rules(workdir, abi):
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


def _seccomp_arch() -> tuple[int, int, int, int] | None:
    if sys.platform != "linux" or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None  # a 32-bit interpreter on a 64-bit kernel makes syscalls of another ABI
    return _SECCOMP_ARCHES.get(platform.machine())


def seccomp_available() -> bool:
    """Whether this kernel can install a seccomp filter here, on an architecture the filter knows.

    Asks the kernel (seccomp(SECCOMP_GET_ACTION_AVAIL, SECCOMP_RET_ERRNO), Linux >= 4.14); on older
    kernels a "Seccomp_filters:" line in /proc/self/status, or a working PR_GET_SECCOMP, says so.
    """
    arch = _seccomp_arch()
    if arch is None:
        return False
    try:
        action = ctypes.c_uint32(SECCOMP_RET_ERRNO)
        if libc().syscall(arch[2], SECCOMP_GET_ACTION_AVAIL, 0, ctypes.byref(action)) == 0:
            return True
        if ctypes.get_errno() not in (errno.ENOSYS, errno.EINVAL):
            return False  # e.g. EOPNOTSUPP: the kernel has seccomp but not this action
        with open("/proc/self/status", "rb") as f:
            if b"\nSeccomp_filters:" in f.read():
                return True
        return libc().prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0
    except (OSError, AttributeError):
        return False


def _bpf(code: int, k: int, jt: int = 0, jf: int = 0) -> _SockFilter:
    return _SockFilter(code, jt, jf, k)


def _seccomp_program(audit_arch: int, socket_nr: int, io_uring_setup_nr: int, x32: bool) -> list[_SockFilter]:
    allow = _bpf(_BPF_RET_K, SECCOMP_RET_ALLOW)
    eperm = _bpf(_BPF_RET_K, SECCOMP_RET_ERRNO | errno.EPERM)
    eacces = _bpf(_BPF_RET_K, SECCOMP_RET_ERRNO | errno.EACCES)
    program = [
        # Syscall numbers differ per ABI: a call made through another ABI (int 0x80 on x86_64) would
        # bypass the number checks below, so anything not of our architecture gets EPERM.
        _bpf(_BPF_LD_W_ABS, _SECCOMP_ARCH),
        _bpf(_BPF_JEQ_K, audit_arch, jt=1),
        eperm,
        _bpf(_BPF_LD_W_ABS, _SECCOMP_NR),
    ]
    if x32:
        # x86_64's x32 ABI shares AUDIT_ARCH_X86_64 but sets bit 30 of the number: refuse it all.
        program += [_bpf(_BPF_JGE_K, X32_SYSCALL_BIT, jf=1), eperm]
    program += [
        # io_uring can create sockets (IORING_OP_SOCKET) without calling socket(): refuse io_uring.
        _bpf(_BPF_JEQ_K, io_uring_setup_nr, jf=1),
        eperm,
        # Any other syscall but socket() is allowed.
        _bpf(_BPF_JEQ_K, socket_nr, jt=1),
        allow,
        # socket(domain, ...): AF_UNIX is allowed (multiprocessing, DataLoader); AF_INET, AF_INET6,
        # AF_PACKET, AF_NETLINK and every other family get EACCES. socketpair() is not checked: it
        # can only make AF_UNIX pairs.
        _bpf(_BPF_LD_W_ABS, _SECCOMP_ARG0_LOW),
        _bpf(_BPF_JEQ_K, AF_UNIX, jt=1),
        eacces,
        allow,
    ]
    return program


def install_seccomp_filter() -> bool:
    """Install the socket filter on this thread and its future children (NO_NEW_PRIVS must be set).

    Returns False without installing anything on an architecture the filter does not know.
    """
    arch = _seccomp_arch()
    if arch is None:
        return False
    audit_arch, socket_nr, _seccomp_nr, io_uring_setup_nr = arch
    program = _seccomp_program(audit_arch, socket_nr, io_uring_setup_nr, x32=audit_arch == AUDIT_ARCH_X86_64)
    filters = (_SockFilter * len(program))(*program)
    prog = _SockFprog(len(program), filters)
    if libc().prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(prog), 0, 0) != 0:
        raise _syscall_error("prctl(PR_SET_SECCOMP)")
    return True


def confine(workdir: str) -> dict[str, Any]:
    """Confine this process and its future children to one snippet run, as far as the kernel allows.

    Landlock (ABI >= 1): writes only beneath `workdir` and /dev/shm, and to existing files under /dev;
    with ABI >= 4 no TCP bind or connect; with ABI >= 6 signals and abstract unix sockets stay within
    the run. seccomp: socket() of any family but AF_UNIX fails with EACCES. Reads are not restricted.
    Never raises for a missing kernel feature. Returns what was applied: {"landlock_abi",
    "filesystem", "writable", "network_tcp", "signals", "seccomp", "errors"}.
    """
    applied: dict[str, Any] = {
        "landlock_abi": 0,
        "filesystem": False,
        "writable": [],
        "network_tcp": False,
        "signals": False,
        "seccomp": False,
        "errors": [],
    }
    if sys.platform != "linux":
        return applied
    abi = landlock_abi()
    seccomp = seccomp_available()
    applied["landlock_abi"] = abi
    if abi < 1 and not seccomp:
        return applied
    try:
        # Required for an unprivileged landlock_restrict_self and seccomp filter; also keeps setuid
        # programs from gaining privileges.
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
    except OSError as exc:
        applied["errors"].append(str(exc))
        return applied
    if abi >= 1:
        try:
            _landlock(workdir, abi, applied)
        except OSError as exc:
            applied["errors"].append(str(exc))
    if seccomp:
        try:
            applied["seccomp"] = install_seccomp_filter()
        except OSError as exc:
            applied["errors"].append(str(exc))
    return applied


def unavailable_reason(applied: dict[str, Any]) -> str | None:
    """Why a run that requires confinement must not run, or None when it may (for RunSpec.sandbox).

    Confinement counts as applied when the Landlock filesystem ruleset or the seccomp filter is in
    force (the same rule as sandbox_level() != "rlimits-only").
    """
    if applied.get("filesystem") or applied.get("seccomp"):
        return None
    detail = "; ".join(applied.get("errors") or ()) or (
        f"Landlock ABI {applied.get('landlock_abi', 0)} and no seccomp filter support on this kernel"
    )
    return f"sandbox unavailable: neither the Landlock filesystem rules nor the seccomp filter could be applied ({detail})"


def sandbox_level() -> str:
    """"landlock+seccomp", "landlock", "seccomp" or "rlimits-only": what confine() can apply here.

    Cheap (two probes, no torch). A caller refuses untrusted snippets at "rlimits-only".
    """
    landlock = landlock_abi() >= 1
    seccomp = seccomp_available()
    if landlock and seccomp:
        return "landlock+seccomp"
    if landlock:
        return "landlock"
    if seccomp:
        return "seccomp"
    return "rlimits-only"


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
    network = [what for what, on in (("tcp (landlock)", abi >= LANDLOCK_NET_ABI), ("non-unix sockets (seccomp)", seccomp)) if on]
    return {
        "platform": sys.platform,
        "kernel": platform.release(),
        "root": root,
        "rlimits": {
            "cpu": f"soft {limits.cpu_s:g} s, hard {limits.cpu_s + 1:g} s",
            "address_space": f"{limits.memory_bytes / 2**30:g} GiB (CPU runs; CUDA runs use the allocator's memory fraction)",
            "file_size": f"{limits.file_bytes / 2**20:g} MiB",
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
        # Every run (own decks too) may write only beneath its temp dir and /dev/shm, and to existing
        # files under /dev (Landlock ABI >= 1); reads are not restricted.
        "filesystem_restricted": abi >= 1,
        "network_restricted": ", ".join(network) if network else False,
        "seccomp": seccomp,
        "level": sandbox_level(),
        # RELIABILITY.md's probe: with neither Landlock nor seccomp, run only local (own) decks.
        "sandbox_capable": abi >= 1 or seccomp,
    }
