"""Helpers of the runner tests: running code on a pool, finding processes a run left behind."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from kb.runner import Limits, RunResult, RunSpec, WorkerPool, sandbox

TIGHT = Limits(cpu_s=1, wall_s=3)  # RELIABILITY.md: tight limits keep the suite fast
REPO_ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534


def needs_landlock(abi: int = 1) -> pytest.MarkDecorator:
    """Skip, saying why, when the kernel's Landlock ABI is below `abi`."""
    have = sandbox.landlock_abi()
    return pytest.mark.skipif(have < abi, reason=f"needs Landlock ABI >= {abi}; this kernel has ABI {have}")


needs_seccomp = pytest.mark.skipif(
    not sandbox.seccomp_available(), reason="needs seccomp filter support on x86_64 or aarch64"
)


def run(pool: WorkerPool, code: str, limits: Limits = TIGHT, **spec_fields) -> tuple[RunResult, float]:
    """Run `code` and return (result, wall seconds seen by the caller)."""
    started = time.monotonic()
    result = pool.run(RunSpec(key="test", code=code, limits=limits, **spec_fields))
    return result, time.monotonic() - started


def marked_pids(output: str, tag: str) -> list[int]:
    """Numbers a snippet printed as `TAG <n>` (its process group, a daemon's pid)."""
    return [int(n) for n in re.findall(rf"^{tag} (\d+)$", output, flags=re.MULTILINE)]


def processes_in_group(pgid: int) -> list[int]:
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                found.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def assert_no_leftovers(pool: WorkerPool, result: RunResult) -> None:
    """Nothing of the run survives: its group is empty, the workers have no children, daemons are dead."""
    for pgid in marked_pids(result.output, "PGID"):
        assert processes_in_group(pgid) == [], f"processes left in the run's group {pgid}"
    for pid in marked_pids(result.output, "PID"):
        assert not alive(pid), f"process {pid} started by the snippet is still alive"
    for worker_pid in pool.worker_pids():
        try:
            children = psutil.Process(worker_pid).children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        assert children == [], f"worker {worker_pid} still has children {children}"


def as_nobody_command(script: str, *args: str) -> list[str]:
    """A command that runs `script` with Python as an unprivileged user (root ignores RLIMIT_NPROC).

    Skips the test when we are root and setpriv is missing; runs directly when already unprivileged.
    """
    command = [sys.executable, "-c", script, *args]
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv is not installed, so RLIMIT_NPROC cannot be tested")
    # The virtualenv's interpreter may live under a directory nobody cannot enter (/root here), so
    # keep CAP_DAC_READ_SEARCH alone: it lets nobody reach files, and RLIMIT_NPROC is still enforced
    # (only CAP_SYS_RESOURCE and CAP_SYS_ADMIN bypass it).
    caps = ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *caps, *command]


def run_as_nobody(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), HOME="/tmp")
    return subprocess.run(
        as_nobody_command(script, *args), capture_output=True, text=True, timeout=timeout, env=env, cwd="/"
    )
