"""Which step breaks CUDA in a forked child on a GPU machine: a worker imports torch (never touching
CUDA), forks, and each child initialises CUDA after one more of kb's steps (limits, then the
sandbox). Prints one line per variant. Run by bench/cuda_checks.sh."""

from __future__ import annotations

import os
import resource
import sys
import tempfile

import torch  # noqa: F401  (as a warm worker has it)


def child(step: str) -> None:
    from kb.runner import sandbox

    try:
        if step in ("data", "data+confine"):
            resource.setrlimit(resource.RLIMIT_DATA, (2 << 30, 2 << 30))
        if step.endswith("confine"):
            sandbox.confine(tempfile.mkdtemp(), inside_bubblewrap=False, shm_bytes=256 << 20)
        if step == "shm":
            sandbox.private_dev_shm(256 << 20)
        if step == "caps":
            sandbox.drop_capabilities()
        if step in ("landlock", "seccomp", "seccomp+unix"):
            sandbox._prctl(sandbox.PR_SET_NO_NEW_PRIVS, 1)
        if step == "landlock":
            sandbox._landlock(tempfile.mkdtemp(), sandbox.landlock_abi(), {}, shm=False)
        if step == "seccomp":
            sandbox.install_seccomp_filter()
        if step == "seccomp+unix":
            sandbox.install_seccomp_filter(allow_unix_sockets=True)
        import torch

        x = torch.ones(4, device="cuda")
        print(step, "ok", float(x.sum()), flush=True)
        os._exit(0)
    except BaseException as exc:
        print(step, "FAILED", type(exc).__name__, str(exc).splitlines()[0][:200], flush=True)
        os._exit(1)


for step in ("plain", "data", "confine", "shm", "caps", "landlock", "seccomp", "seccomp+unix"):
    pid = os.fork()
    if pid == 0:
        child(step)
    os.waitpid(pid, 0)
sys.exit(0)
