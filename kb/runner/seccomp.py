"""The seccomp filter of every snippet run: a small BPF program built by hand (standard library only).

Functions: available, install, program. The filter is installed by the run's child after Landlock,
with NO_NEW_PRIVS set, and stays in force for everything the snippet starts. It refuses:

- system calls made through another ABI (x86_64's x32, a 32-bit `int 0x80`): their numbers differ,
  so they could reach anything below under another name;
- `socket()`: of every family but AF_UNIX inside bubblewrap (whose mount namespace hides the host's
  socket files), of every family in the fallback, where a pathname UNIX socket (a terminal
  multiplexer's, a D-Bus bus, a container daemon's) would otherwise be reachable; `socketpair()`
  stays allowed, as multiprocessing's pipes use it;
- `ioctl(TIOCSTI)` and `ioctl(TIOCLINUX)`: pushing keystrokes into a terminal;
- `mknod` of a block or character device (FIFOs and sockets are fine);
- changing metadata of a file: chmod, chown, utime and extended attributes, on any path or
  descriptor (seccomp cannot see which file a path names, and Landlock has no right for these);
- `clone()` with a namespace flag, `clone3()` (ENOSYS, so that libc falls back to clone, whose flags
  the filter can read) and `unshare`/`setns`: no new namespaces inside a run;
- io_uring (IORING_OP_SOCKET would get round the socket rule), ptrace and cross-process memory
  access, kernel modules, kexec, mounts, swap, reboot, keyrings, bpf, perf events, userfaultfd,
  handle-based opens, port I/O, quotas, accounting, setting clocks and the kernel log.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import sys
from dataclasses import dataclass

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
TIOCSTI = 0x5412  # the same value in the generic and x86 ioctl tables
TIOCLINUX = 0x541C
S_IFMT, S_IFCHR, S_IFBLK = 0o170000, 0o020000, 0o060000
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
# struct seccomp_data {int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6];}
_NR, _ARCH = 0, 4


def _arg_low(index: int) -> int:
    """Offset of the low 32 bits of args[index] (little-endian: they come first)."""
    return 16 + 8 * index


# Refused with EPERM wherever they exist. Names are the kernel's; numbers per ABI below.
_DENIED = (
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
    "utime", "utimes", "futimesat", "utimensat",
    "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr", "setxattrat", "removexattrat",
    "unshare", "setns",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
    "mount_setattr", "swapon", "swapoff", "reboot",
    "add_key", "request_key", "keyctl", "bpf", "perf_event_open", "userfaultfd",
    "name_to_handle_at", "open_by_handle_at", "iopl", "ioperm", "quotactl", "acct",
    "settimeofday", "clock_settime", "adjtimex", "clock_adjtime", "syslog", "vhangup",
)  # fmt: skip

_X86_64 = {
    "chmod": 90, "fchmod": 91, "chown": 92, "fchown": 93, "lchown": 94, "fchownat": 260, "fchmodat": 268,
    "fchmodat2": 452, "utime": 132, "utimes": 235, "futimesat": 261, "utimensat": 280,
    "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190, "removexattr": 197, "lremovexattr": 198,
    "fremovexattr": 199, "setxattrat": 463, "removexattrat": 466, "unshare": 272, "setns": 308,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "ptrace": 101,
    "process_vm_readv": 310, "process_vm_writev": 311, "pidfd_getfd": 438, "init_module": 175,
    "finit_module": 313, "delete_module": 176, "kexec_load": 246, "kexec_file_load": 320, "mount": 165,
    "umount2": 166, "pivot_root": 155, "chroot": 161, "open_tree": 428, "move_mount": 429, "fsopen": 430,
    "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442, "swapon": 167, "swapoff": 168,
    "reboot": 169, "add_key": 248, "request_key": 249, "keyctl": 250, "bpf": 321, "perf_event_open": 298,
    "userfaultfd": 323, "name_to_handle_at": 303, "open_by_handle_at": 304, "iopl": 172, "ioperm": 173,
    "quotactl": 179, "acct": 163, "settimeofday": 164, "clock_settime": 227, "adjtimex": 159,
    "clock_adjtime": 305, "syslog": 103, "vhangup": 153,
    "socket": 41, "ioctl": 16, "clone": 56, "clone3": 435, "mknod": 133, "mknodat": 259,
}  # fmt: skip

# The generic table (include/uapi/asm-generic/unistd.h) that aarch64 uses; it has no chmod, chown,
# lchown, utime, utimes, futimesat, mknod, iopl or ioperm (only their *at forms).
_GENERIC = {
    "fchmod": 52, "fchmodat": 53, "fchownat": 54, "fchown": 55, "fchmodat2": 452, "utimensat": 88,
    "setxattr": 5, "lsetxattr": 6, "fsetxattr": 7, "removexattr": 14, "lremovexattr": 15, "fremovexattr": 16,
    "setxattrat": 463, "removexattrat": 466, "unshare": 97, "setns": 268, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "ptrace": 117, "process_vm_readv": 270,
    "process_vm_writev": 271, "pidfd_getfd": 438, "init_module": 105, "finit_module": 273,
    "delete_module": 106, "kexec_load": 104, "kexec_file_load": 294, "mount": 40, "umount2": 39,
    "pivot_root": 41, "chroot": 51, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
    "fsmount": 432, "fspick": 433, "mount_setattr": 442, "swapon": 224, "swapoff": 225, "reboot": 142,
    "add_key": 217, "request_key": 218, "keyctl": 219, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282,
    "name_to_handle_at": 264, "open_by_handle_at": 265, "quotactl": 60, "acct": 89, "settimeofday": 170,
    "clock_settime": 112, "adjtimex": 171, "clock_adjtime": 266, "syslog": 116, "vhangup": 58,
    "socket": 198, "ioctl": 29, "clone": 220, "clone3": 435, "mknodat": 33,
}  # fmt: skip


@dataclass(frozen=True)
class _Abi:
    audit_arch: int
    numbers: dict[str, int]
    seccomp_nr: int
    x32: bool


_ABIS = {
    "x86_64": _Abi(AUDIT_ARCH_X86_64, _X86_64, 317, x32=True),
    "aarch64": _Abi(AUDIT_ARCH_AARCH64, _GENERIC, 277, x32=False),
}


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


Instruction = tuple[int, int, int, int]  # (code, jt, jf, k)


def _abi() -> _Abi | None:
    if sys.platform != "linux" or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None  # a 32-bit interpreter on a 64-bit kernel makes syscalls of another ABI
    return _ABIS.get(platform.machine())


def _ret(value: int) -> Instruction:
    return (_RET_K, 0, 0, value)


def _errno(code: int) -> Instruction:
    return _ret(SECCOMP_RET_ERRNO | code)


ALLOW = _ret(SECCOMP_RET_ALLOW)


def _when(nr: int, block: list[Instruction]) -> list[Instruction]:
    """`block` for system call `nr` (A holds the number); every block ends in a return."""
    return [(_JEQ_K, 0, len(block), nr), *block]


def _refuse_values(arg: int, values: tuple[int, ...], *, mask: int | None = None) -> list[Instruction]:
    """EPERM when args[arg] (masked) is one of `values`, else allow."""
    block: list[Instruction] = [(_LD_W_ABS, 0, 0, _arg_low(arg))]
    if mask is not None:
        block.append((_AND_K, 0, 0, mask))
    for value in values:
        block += [(_JEQ_K, 0, 1, value), _errno(errno.EPERM)]
    return [*block, ALLOW]


def program(*, allow_unix_sockets: bool, abi: _Abi | None = None) -> list[Instruction]:
    """The filter as (code, jt, jf, k) tuples, for this machine's ABI (or `abi`)."""
    abi = abi or _abi()
    if abi is None:
        raise OSError(errno.ENOSYS, f"no seccomp filter for {platform.machine()}")
    nr = abi.numbers
    prog: list[Instruction] = [
        (_LD_W_ABS, 0, 0, _ARCH),
        (_JEQ_K, 1, 0, abi.audit_arch),
        _errno(errno.EPERM),
        (_LD_W_ABS, 0, 0, _NR),
    ]
    if abi.x32:
        prog += [(_JGE_K, 0, 1, X32_SYSCALL_BIT), _errno(errno.EPERM)]
    for name in _DENIED:
        if name in nr:
            prog += _when(nr[name], [_errno(errno.EPERM)])
    if allow_unix_sockets:
        socket_rule = [(_LD_W_ABS, 0, 0, _arg_low(0)), (_JEQ_K, 0, 1, AF_UNIX), ALLOW, _errno(errno.EACCES)]
    else:
        socket_rule = [_errno(errno.EACCES)]
    prog += _when(nr["socket"], socket_rule)
    prog += _when(nr["ioctl"], _refuse_values(1, (TIOCSTI, TIOCLINUX)))
    if "mknod" in nr:
        prog += _when(nr["mknod"], _refuse_values(1, (S_IFBLK, S_IFCHR), mask=S_IFMT))
    prog += _when(nr["mknodat"], _refuse_values(2, (S_IFBLK, S_IFCHR), mask=S_IFMT))
    prog += _when(nr["clone3"], [_errno(errno.ENOSYS)])
    prog += _when(
        nr["clone"],
        [
            (_LD_W_ABS, 0, 0, _arg_low(0)),
            (_AND_K, 0, 0, CLONE_NAMESPACE_FLAGS),
            (_JEQ_K, 0, 1, 0),
            ALLOW,
            _errno(errno.EPERM),
        ],
    )
    return [*prog, ALLOW]


def available(libc: ctypes.CDLL) -> bool:
    """Whether this kernel can install a seccomp filter here, on an ABI the filter knows.

    Asks the kernel (seccomp(SECCOMP_GET_ACTION_AVAIL, SECCOMP_RET_ERRNO), Linux >= 4.14); on older
    kernels a "Seccomp_filters:" line in /proc/self/status, or a working PR_GET_SECCOMP, says so.
    """
    abi = _abi()
    if abi is None:
        return False
    try:
        action = ctypes.c_uint32(SECCOMP_RET_ERRNO)
        if libc.syscall(abi.seccomp_nr, SECCOMP_GET_ACTION_AVAIL, 0, ctypes.byref(action)) == 0:
            return True
        if ctypes.get_errno() not in (errno.ENOSYS, errno.EINVAL):
            return False  # e.g. EOPNOTSUPP: the kernel has seccomp but not this action
        with open("/proc/self/status", "rb") as f:
            if b"\nSeccomp_filters:" in f.read():
                return True
        return libc.prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0
    except (OSError, AttributeError):
        return False


def install(libc: ctypes.CDLL, *, allow_unix_sockets: bool) -> bool:
    """Install the filter on this thread and its future children (NO_NEW_PRIVS must be set).

    Returns False without installing anything on an ABI the filter does not know.
    """
    if _abi() is None:
        return False
    instructions = program(allow_unix_sockets=allow_unix_sockets)
    filters = (_SockFilter * len(instructions))(*(_SockFilter(c, jt, jf, k) for c, jt, jf, k in instructions))
    prog = _SockFprog(len(instructions), filters)
    if libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_SECCOMP): {os.strerror(err)}")
    return True
