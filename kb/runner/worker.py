"""A warm worker ("zygote"): imports numpy and torch once, then forks a fresh child per snippet.

Run as `python -m kb.runner.worker` by WorkerPool. The control channel is the process's original
stdin (requests) and stdout (replies), framed by kb.runner.protocol; both are moved to private file
descriptors at start so that stray prints cannot corrupt the channel.

Messages to the pool: ready {versions}, started {pid, pgid, workdir}, output {text}, result {result}.
Messages from the pool: run {spec}, exit.

The worker is a child subreaper: whatever a snippet leaves behind, even after setsid() and a double
fork, is reparented to the worker, which kills and reaps it before replying.

The worker is not confined by Landlock or seccomp (it must create each run's directory and reap):
only the forked child calls sandbox.confine(), and the spec (including RunSpec.sandbox) reaches it
unchanged. With `--inside-bubblewrap` the worker runs in bubblewrap's namespaces (the pool started
it that way) and empties the sandbox's private /dev/shm after every run.

The verdict: the child reports once, on a UNIX socket whose receiving end passes credentials, so
the kernel names the process behind every byte. Bytes from any other process (one the snippet
forked) make the run "crashed"; a run whose process exits without a report (os._exit, a closed
channel) or with garbage is "failed", never "passed"; only the report of the run's own process,
followed by its clean exit, can say "passed".
"""

from __future__ import annotations

import codecs
import json
import math
import os
import platform
import select
import shutil
import signal
import socket
import stat
import struct
import sys
import tempfile
import time
from typing import Any

from kb.runner import sandbox
from kb.runner.child import run_child
from kb.runner.models import STATUSES
from kb.runner.protocol import ChannelClosed, Reader, send

RESULT_LIMIT = 8 * 1024 * 1024  # the child's report; far above what a legitimate report needs
WORKDIR_PREFIX = "kb-run-"
DRAIN_TIMEOUT_S = 0.5  # after the group is dead, how long to wait for the last buffered output


def _import_stack() -> dict[str, str]:
    """Import what snippets use and run a few small ops, so each forked child starts warm.

    With OMP_NUM_THREADS=1 none of this starts a thread, and CUDA is never touched: forking after
    either is unsafe.
    """
    import multiprocessing  # noqa: F401  (DataLoader workers)

    import numpy
    import torch
    import torch.nn.functional as F
    import torch.utils.data  # noqa: F401

    x = torch.randn(16, 16)
    (x @ x).softmax(-1).sum().item()
    F.conv2d(torch.randn(1, 2, 8, 8), torch.randn(3, 2, 3, 3), padding=1).relu().mean().item()
    numpy.linalg.norm(numpy.ones((4, 4)) @ numpy.ones((4, 4)))
    # Many snippets check hand-written gradients; gradcheck's first call lazily imports sympy and
    # torch.fx (0.5-2 s). Paying it once here means no forked child pays it again.
    import torch.distributions  # noqa: F401

    if torch.version.cuda is None:
        # Not on a CUDA build: there, the first backward starts the autograd engine's per-device
        # threads (and asks CUDA how many devices there are), after which a forked child can use
        # neither autograd nor CUDA (seen on a GPU machine). There the children pay the import.
        torch.autograd.gradcheck(lambda t: (t * t).sum(), (torch.randn(3, dtype=torch.float64, requires_grad=True),))
        # An optimizer's first step imports torch._dynamo (about 0.85 s); snippets of training
        # concepts step SGD, Adam and the learning-rate schedulers.
        weight = torch.zeros(2, requires_grad=True)
        weight.sum().backward()
        torch.optim.SGD([weight], lr=0.1).step()
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}


def main() -> None:
    inside_bubblewrap = "--inside-bubblewrap" in sys.argv[1:]
    ctl_in = os.dup(0)  # os.dup gives non-inheritable copies: exec'd programs never see them
    ctl_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # until ready, anything printed goes to stderr, which the pool reads on failure

    sandbox.set_child_subreaper()
    sandbox.set_parent_death_signal(signal.SIGKILL)  # bubblewrap's init or the keeper: never outlive it
    versions = _import_stack()
    send(ctl_out, {"type": "ready", "pid": os.getpid(), "versions": versions})
    os.dup2(devnull, 1)  # the pool stops reading stderr once we are ready
    os.dup2(devnull, 2)

    reader = Reader(ctl_in)
    while True:
        try:
            message = reader.recv()
        except ChannelClosed:
            break  # the pool closed the channel or died
        if message.get("op") != "run":
            break
        try:
            result = _supervise(message["spec"], ctl_in=ctl_in, ctl_out=ctl_out, inside_bubblewrap=inside_bubblewrap)
        except _PoolGone:
            break
        except Exception as exc:  # a bug here must not take the worker down with the run
            sandbox.sweep_children()
            result = _result(status="crashed", message=f"runner error in worker: {type(exc).__name__}: {exc}")
        try:
            send(ctl_out, {"type": "result", "result": result})
        except BrokenPipeError:
            break
    sandbox.sweep_children()
    os._exit(0)  # skip interpreter teardown (torch's takes a while); nothing is left to flush


class _PoolGone(Exception):
    pass


def _result(**fields: Any) -> dict[str, Any]:
    base = {
        "status": "crashed",
        "device": "cpu",
        "duration_s": 0.0,
        "output": "",
        "truncated": False,
        "message": None,
        "line": None,
        "signal": None,
        "exit_code": None,
        "values": {},
    }
    base.update(fields)
    return base


def _killpg(pgid: int) -> None:
    """Kill the run's session: its group, and its first process even before it made the group."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _report_channel() -> tuple[int, int]:
    """(read end, write end) of a stream socket whose read end receives each sender's credentials."""
    reader, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    return reader.detach(), writer.detach()


def _empty_dev_shm() -> None:
    """Inside bubblewrap /dev/shm belongs to this worker alone: nothing of a run may stay there."""
    try:
        names = os.listdir("/dev/shm")
    except OSError:
        return
    for name in names:
        path = os.path.join("/dev/shm", name)
        if os.path.isdir(path) and not os.path.islink(path):
            _remove_tree(path)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass


def _supervise(spec: dict[str, Any], *, ctl_in: int, ctl_out: int, inside_bubblewrap: bool = False) -> dict[str, Any]:
    """Fork a child for one run, enforce the wall and output limits, and build its result."""
    limits = spec["limits"]
    workdir = tempfile.mkdtemp(prefix=WORKDIR_PREFIX)
    out_r, out_w = os.pipe()
    res_r, res_w = _report_channel()
    worker_pid = os.getpid()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        run_child(
            spec, out_w=out_w, res_w=res_w, workdir=workdir, close_fds=[ctl_in, ctl_out, out_r, res_r],
            worker_pid=worker_pid, inside_bubblewrap=inside_bubblewrap,
        )  # fmt: skip
    os.close(out_w)
    os.close(res_w)
    try:
        send(ctl_out, {"type": "started", "pid": pid, "pgid": pid, "workdir": workdir})
        watch = _Watch(pid, out_r, res_r, ctl_in, ctl_out, limits, start)
        watch.run()
    except BaseException:
        _killpg(pid)
        sandbox.sweep_children()
        raise
    finally:
        for fd in (out_r, res_r):
            os.close(fd)
        _remove_tree(workdir)
        if inside_bubblewrap:
            _empty_dev_shm()
    return watch.verdict(spec)


class _Watch:
    """The poll loop of one run: output, the child's report, its exit, the deadline, the pool."""

    def __init__(
        self, pid: int, out_r: int, res_r: int, ctl_in: int, ctl_out: int, limits: dict[str, Any], start: float
    ):
        self.pid, self.out_r, self.res_r, self.ctl_in, self.ctl_out = pid, out_r, res_r, ctl_in, ctl_out
        self.limits = limits
        self.start = start
        self.deadline = start + float(limits["wall_s"])
        self.keep = int(limits["output_keep_bytes"])
        self.kill_at = int(limits["output_kill_bytes"])
        self.kept = bytearray()
        self.total = 0
        self.report = bytearray()
        self.foreign_report_pids: set[int] = set()  # processes other than the run's that wrote to it
        self.kill_reason: str | None = None
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.wait_status = 0
        self.rusage: Any = None
        self.end = start

    def _kill(self, reason: str) -> None:
        if self.kill_reason is None:
            self.kill_reason = reason
        _killpg(self.pid)

    def _keep(self, data: bytes) -> None:
        """Count output, keep the first `keep` bytes and stream them to the pool."""
        self.total += len(data)
        room = self.keep - len(self.kept)
        if room > 0:
            piece = data[:room]
            self.kept += piece
            text = self.decoder.decode(piece)
            if text:
                send(self.ctl_out, {"type": "output", "text": text})

    def _on_output(self, data: bytes) -> None:
        self._keep(data)
        if self.total > self.kill_at:
            self._kill("output_limit")

    def run(self) -> None:
        for fd in (self.out_r, self.res_r):
            os.set_blocking(fd, False)
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # kernel before 5.3: fall back to polling wait4
            pidfd = None
        poller = select.poll()
        poller.register(self.out_r, select.POLLIN)
        poller.register(self.res_r, select.POLLIN)
        poller.register(self.ctl_in, 0)  # no events asked: reports only POLLHUP, i.e. the pool is gone
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        try:
            exited = False
            while not exited:
                now = time.monotonic()
                if now >= self.deadline and self.kill_reason is None:
                    self._kill("timeout")
                wait = self.deadline - now if self.kill_reason is None else 0.1
                if pidfd is None:
                    wait = min(wait, 0.02)
                for fd, _events in poller.poll(max(1, int(wait * 1000))):
                    if fd == self.ctl_in:
                        raise _PoolGone()
                    if fd == pidfd:
                        exited = True
                    elif not self._read(fd):
                        poller.unregister(fd)
                if pidfd is None and not exited:
                    exited = self._try_wait()
            if self.rusage is None:
                _, self.wait_status, self.rusage = os.wait4(self.pid, 0)
            self.end = time.monotonic()
        finally:
            if pidfd is not None:
                os.close(pidfd)
        # The child is gone: kill the rest of its group and anything that escaped it, then drain.
        _killpg(self.pid)
        sandbox.sweep_children()
        self._drain()

    def _try_wait(self) -> bool:
        pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
        if pid == 0:
            return False
        self.wait_status, self.rusage = status, rusage
        return True

    def _read(self, fd: int) -> bool:
        """Read what is there; False at EOF."""
        try:
            data = os.read(fd, 1 << 16) if fd == self.out_r else self._receive_report()
        except BlockingIOError:
            return True
        if not data:
            return False
        if fd == self.out_r:
            self._on_output(data)
        elif len(self.report) > RESULT_LIMIT:
            self._kill("report_limit")
        return True

    def _receive_report(self) -> bytes:
        """One chunk of the report channel; the kernel says which process wrote it (SCM_CREDENTIALS)."""
        data, ancillary, _flags, _address = _recvmsg(self.res_r)
        sender = None
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= 12:
                sender = struct.unpack("iII", payload[:12])[0]
        if data:
            if sender == self.pid:
                if len(self.report) <= RESULT_LIMIT:
                    self.report += data
            else:
                self.foreign_report_pids.add(sender if sender is not None else -1)
        return data

    def _drain(self) -> None:
        """Collect output still buffered in the pipes (all writers are dead, so EOF comes quickly)."""
        end = time.monotonic() + DRAIN_TIMEOUT_S
        poller = select.poll()
        open_fds = {self.out_r, self.res_r}
        for fd in open_fds:
            poller.register(fd, select.POLLIN)
        while open_fds and time.monotonic() < end:
            for fd, _events in poller.poll(10):
                try:
                    data = os.read(fd, 1 << 16) if fd == self.out_r else self._receive_report()
                except BlockingIOError:
                    continue
                if not data:
                    open_fds.discard(fd)
                    poller.unregister(fd)
                elif fd == self.out_r:
                    # The verdict is decided: more output now only sets `truncated`, it kills nothing.
                    self._keep(data)

    def verdict(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The run's result: the worker's own kill reasons first, then the signal, then the report."""
        tail = self.decoder.decode(b"", final=True)
        if tail:
            send(self.ctl_out, {"type": "output", "text": tail})
        status = self.wait_status
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        sig_name = _signal_name(sig) if sig is not None else None

        def result(status: str, message: str | None, **fields: Any) -> dict[str, Any]:
            return _result(
                status=status,
                message=message,
                device=spec["device"],
                duration_s=round(self.end - self.start, 6),
                output=bytes(self.kept).decode("utf-8", errors="replace"),
                truncated=self.total > self.keep,
                signal=sig_name,
                exit_code=exit_code,
                **fields,
            )

        limits = self.limits
        if self.kill_reason == "timeout":
            return result("timeout", f"killed after {float(limits['wall_s']):g} s wall time")
        if self.kill_reason == "output_limit":
            return result("output_limit", f"output exceeded {int(limits['output_kill_bytes'])} bytes; killed")
        if self.kill_reason == "report_limit":
            return result("crashed", "the snippet's report to the runner exceeded its size limit")
        cpu_used = self.rusage.ru_utime + self.rusage.ru_stime
        cpu_soft = max(1, math.ceil(float(limits["cpu_s"])))  # as the child set RLIMIT_CPU
        # SIGXCPU at the soft limit, or SIGKILL at the hard one when SIGXCPU was ignored.
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_used >= cpu_soft - 0.05):
            return result("cpu_limit", f"CPU time limit exceeded ({cpu_soft:g} s)")
        if sig is not None:
            return result("crashed", sig_name)
        if self.foreign_report_pids:
            return result(
                "crashed", "a process the snippet started wrote to the run's report channel; the report is void"
            )
        report = _parse_report(bytes(self.report))
        if report is None:
            if self.report:
                return result("failed", "the run's report was not valid (written twice, cut short or overwritten)")
            # The process left without reporting: os._exit(), a closed channel, an exit from a thread.
            return result(
                "failed", f"the snippet's process exited before its code finished (exit code {exit_code}, no report)"
            )
        line = report.get("line")
        values = report.get("values") if isinstance(report.get("values"), dict) else {}
        if report["status"] == "passed" and exit_code != 0:
            return result("failed", f"the snippet reported success but exited with code {exit_code}", values=values)
        return result(
            report["status"], report.get("message"), line=line if isinstance(line, int) else None, values=values
        )


def _recvmsg(fd: int) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]:
    """recvmsg on a raw descriptor, asking for the sender's credentials."""
    sock = socket.socket(fileno=fd)
    try:
        return sock.recvmsg(1 << 16, socket.CMSG_SPACE(12))
    finally:
        sock.detach()  # the descriptor stays open: _supervise closes it


def _parse_report(data: bytes) -> dict[str, Any] | None:
    if not data:
        return None
    try:
        report = json.loads(data)
    except ValueError:
        return None
    if not isinstance(report, dict) or report.get("status") not in STATUSES:
        return None  # garbage, e.g. written to the report pipe by a process the snippet forked
    return report


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _remove_tree(path: str) -> None:
    """Remove the run's directory, even where the snippet made parts of it read-only."""

    def make_writable_and_retry(func: Any, target: str, _exc: Any) -> None:
        try:
            os.chmod(os.path.dirname(target), stat.S_IRWXU)
            func(target)
        except OSError:
            pass  # the second rmtree below ignores what is still left

    # Python 3.12 renamed the hook (same arguments) and deprecated the old name.
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=make_writable_and_retry)
    else:
        shutil.rmtree(path, onerror=make_writable_and_retry)
    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
