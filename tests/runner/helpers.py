"""Helpers of the runner tests: running code on a pool, finding processes a run left behind."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from kb.runner import Limits, RunResult, RunSpec, WorkerPool, sandbox

TIGHT = Limits(cpu_s=1, wall_s=3)  # tight limits keep the suite fast
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


# Snippets print their process group as `PGID <pgid> <pid-namespace inode>`: inside bubblewrap the
# run has a PID namespace of its own, and the number means something only within it.
PGID = 'import os; print("PGID", os.getpgrp(), os.stat("/proc/self/ns/pid").st_ino, flush=True)\n'
PID_MARK = 'print("PID", os.getpid(), os.stat("/proc/self/ns/pid").st_ino, flush=True)'


@dataclass(frozen=True)
class Mark:
    """A pid or pgid as a snippet saw it, and the PID namespace it saw it in (None: this one)."""

    number: int
    namespace: int | None = None


def marked_pids(output: str, tag: str) -> list[Mark]:
    """What a snippet printed as `TAG <n> [<pid-namespace inode>]` (its group, a daemon's pid)."""
    return [
        Mark(int(n), int(ns) if ns else None)
        for n, ns in re.findall(rf"^{tag} (\d+)(?: (\d+))?$", output, flags=re.MULTILINE)
    ]


def _namespace_ids(pid: int, field: str) -> tuple[int, list[int]] | None:
    """(PID namespace inode, the `field` line of /proc/PID/status: NSpid or NSpgid, outermost first)."""
    try:
        namespace = os.stat(f"/proc/{pid}/ns/pid").st_ino
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return namespace, [int(v) for v in line.split()[1:]]
    except (OSError, ValueError):
        return None
    return None


def _host_pids_matching(mark: Mark, field: str) -> list[int]:
    """Host pids of live processes whose `field` (NSpid, NSpgid) is `mark` in its namespace."""
    namespace = mark.namespace if mark.namespace is not None else os.stat("/proc/self/ns/pid").st_ino
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        ids = _namespace_ids(int(name), field)
        if ids and ids[0] == namespace and ids[1] and ids[1][-1] == mark.number and _alive_host_pid(int(name)):
            found.append(int(name))
    return found


def processes_in_group(mark: Mark) -> list[int]:
    """Host pids of the live processes of the group a snippet printed."""
    return _host_pids_matching(mark, "NSpgid")


def _alive_host_pid(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def alive(pid: int | Mark) -> bool:
    """Whether a process is alive: a host pid, or a pid a snippet printed in its namespace."""
    if isinstance(pid, Mark):
        return bool(_host_pids_matching(pid, "NSpid"))
    return _alive_host_pid(pid)


def processes_with_argument(marker: str) -> list[int]:
    """Host pids of live processes with `marker` among their arguments (how escaped daemons are found)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(proc.info["cmdline"] or ()) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


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
