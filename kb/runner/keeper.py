"""The keeper: the parent of a worker that runs without bubblewrap, so that nothing outlives the worker.

Run as `python -m kb.runner.keeper -- COMMAND...` by WorkerPool. Standard library only (no torch).

The worker is a child subreaper and kills what each run leaves behind; but if the worker itself is
killed (SIGKILL, the OOM killer), a process the snippet started with `setsid()` and an empty
environment would be re-parented to init and live on. The keeper is a subreaper too, one level up:
such orphans become its children. When the worker exits for any reason, or the keeper is told to
stop (SIGTERM, SIGINT, SIGHUP, or its own parent dying), it kills every descendant and exits with
the worker's status. Inside bubblewrap the PID namespace does this job instead: when the sandbox's
first process dies, the kernel kills every process in it.

The keeper holds no copy of the worker's pipes, so the pool sees end-of-file as soon as the worker
is gone.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from kb.runner import sandbox

GRACE_S = 1.0  # told to stop: how long the worker may take to clean up (kill its run, remove its directory)


class _Stop(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, _frame: object) -> None:
    raise _Stop(signum)


def _wait_for(pid: int, timeout: float) -> int | None:
    """The worker's wait status if it exits within `timeout` (reaping orphans meanwhile), else None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reaped, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 0
        if reaped == pid:
            return status
        if reaped == 0:
            time.sleep(0.01)
    return None


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: python -m kb.runner.keeper -- COMMAND...", file=sys.stderr)
        return 2
    parent = os.getppid()
    sandbox.set_child_subreaper()
    sandbox.set_parent_death_signal(signal.SIGTERM)  # the pool's process died: clean up, then go
    if os.getppid() != parent:  # it died before the line above took effect
        return 1
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _stop)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - replaced by the worker at once
        try:
            sandbox.set_parent_death_signal(signal.SIGKILL)  # the keeper died: the worker goes too
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    # The worker has the control pipes now; the pool must see EOF when it exits, not when we do.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    status = 1
    try:
        while True:
            try:
                reaped, wait_status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if reaped == pid:
                status = os.waitstatus_to_exitcode(wait_status)
                break
    except _Stop as stop:
        # The pool's process died or asked us to stop. The worker sees its channel close and cleans
        # up by itself (kills its run, removes the run's directory): give it a moment first.
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        _wait_for(pid, GRACE_S)
        status = 128 + stop.signum
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        sandbox.sweep_children()  # the worker, and every orphan re-parented to us
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
