"""WorkerPool: runs snippets on warm worker processes, from the calling process, without torch.

Classes: WorkerPool. The pool starts `jobs` workers (python -m kb.runner.worker) lazily, all at once,
hands each run to an idle worker, and replaces a worker that dies. Each worker runs inside
bubblewrap where it can (kb.runner.bwrap), else under a keeper process (kb.runner.keeper). Only the
standard library is imported here: the calling process (the TUI, the CLI) must never import torch
or numpy.
"""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import IO, Any

from kb.runner import bwrap, sandbox
from kb.runner.models import DEVICES, RunResult, RunSpec
from kb.runner.protocol import ChannelClosed, Reader, send

LAYERS = ("bubblewrap", "fallback")
TERMINATE_GRACE_S = 1.0  # after SIGTERM, for the keeper's sweep or bubblewrap's teardown
STARTUP_TIMEOUT_S = 120.0  # importing torch takes ~1.5 s idle, much longer on a loaded machine
REPLY_GRACE_S = 15.0  # beyond the wall limit, for the worker's clean-up and reply
RETRIES = 2  # a request that never started may go to a fresh worker this many more times
_TOKEN_VAR = "KB_WORKER_TOKEN"
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the directory holding the `kb` package

OutputCallback = Callable[[str], None]


class _WorkerLost(Exception):
    def __init__(self, message: str, *, started: bool) -> None:
        super().__init__(message)
        self.message = message
        self.started = started


def _worker_env(token: str) -> dict[str, str]:
    env = dict(os.environ)  # keeps OPENBLAS_CORETYPE and friends
    env.update(
        OMP_NUM_THREADS="1",  # one thread per snippet: a fork of a threaded process is unsafe,
        MKL_NUM_THREADS="1",  # and thread pools also multiply address space under RLIMIT_AS
        OPENBLAS_NUM_THREADS="1",
        PYTHONHASHSEED="0",  # iteration order of sets of strings repeats from run to run
    )
    env[_TOKEN_VAR] = token  # every descendant inherits it: how leftovers are found if the worker dies
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    env.pop("PYTHONINSPECT", None)
    return env


def _worker_command(layer: str) -> list[str]:
    worker = [sys.executable, "-m", "kb.runner.worker"]
    if layer == "bubblewrap":
        executable = bwrap.executable()
        assert executable is not None  # the pool checked bwrap.usable() when it chose the layer
        return [executable, *bwrap.arguments(), "--", *worker, "--inside-bubblewrap"]
    return [sys.executable, "-m", "kb.runner.keeper", "--", *worker]


def _zygote_of(root_pid: int) -> int | None:
    """The worker process itself among the descendants of `root_pid` (bwrap or the keeper)."""
    for pid in [root_pid, *sandbox.descendants_of(root_pid)]:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv[1:3] == [b"-m", b"kb.runner.worker"]:
            return pid
    return None


class _Worker:
    """One worker process and its control channel. Used by one thread at a time."""

    def __init__(self, layer: str) -> None:
        self.layer = layer
        self.token = secrets.token_hex(16)
        self.zygote_pid: int | None = None
        self.proc = subprocess.Popen(
            _worker_command(layer),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_worker_env(self.token),
            cwd="/",
            start_new_session=True,  # signals to the snippet's process group never reach the caller
            close_fds=True,
        )
        # All three are pipes (a Popen's streams are typed as optional).
        assert self.proc.stdin is not None and self.proc.stdout is not None and self.proc.stderr is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = self.proc.stdout
        self.stderr: IO[bytes] = self.proc.stderr
        self.reader = Reader(self.stdout.fileno())
        self.ready = False
        self.versions: dict[str, str] = {}
        self.run_pgid: int | None = None
        self.run_workdir: str | None = None
        self.dead = False
        self.busy = False  # a thread is running a snippet on it (set under the pool's lock)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def find_zygote(self, timeout: float = 5.0) -> int:
        """The worker process's pid, once bubblewrap or the keeper has started it (else theirs)."""
        deadline = time.monotonic() + timeout
        while self.zygote_pid is None and self.proc.poll() is None and time.monotonic() < deadline:
            self.zygote_pid = _zygote_of(self.proc.pid)
            if self.zygote_pid is None:
                time.sleep(0.01)
        return self.zygote_pid or self.proc.pid

    def _stderr_tail(self) -> str:
        """What a worker that failed to start printed (it writes to stderr only before it is ready)."""
        stream = self.stderr
        if stream is None or stream.closed:
            return ""
        try:
            self.proc.wait(timeout=2)
            text = stream.read(64 * 1024).decode("utf-8", errors="replace").strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return text.splitlines()[-1] if text else ""

    def ensure_ready(self) -> None:
        if self.ready:
            return
        try:
            message = self.reader.recv(time.monotonic() + STARTUP_TIMEOUT_S)
        except (ChannelClosed, TimeoutError, ValueError) as exc:
            detail = self._stderr_tail() or str(exc)
            raise _WorkerLost(f"worker failed to start: {detail}", started=False) from None
        if message.get("type") != "ready":
            raise _WorkerLost(f"worker sent {message.get('type')!r} before 'ready'", started=False)
        self.versions = dict(message.get("versions") or {})
        self.zygote_pid = _zygote_of(self.proc.pid)
        self.ready = True
        self.stderr.close()  # the worker now sends its stderr to /dev/null

    def execute(self, spec: RunSpec, on_output: OutputCallback) -> RunResult:
        self.ensure_ready()
        try:
            send(self.stdin.fileno(), {"op": "run", "spec": spec.to_wire()})
        except (BrokenPipeError, OSError):
            raise _WorkerLost("worker process exited before the run", started=False) from None
        deadline = time.monotonic() + spec.limits.wall_s + REPLY_GRACE_S
        started = False
        while True:
            try:
                message = self.reader.recv(deadline)
            except ChannelClosed:
                raise _WorkerLost(self._death_message(), started=started) from None
            except TimeoutError:
                raise _WorkerLost(
                    f"worker did not answer within {spec.limits.wall_s + REPLY_GRACE_S:g} s; it was replaced",
                    started=True,
                ) from None
            except ValueError as exc:
                raise _WorkerLost(f"corrupt message from the worker ({exc}); it was replaced", started=True) from None
            kind = message.get("type")
            if kind == "started":
                started = True
                self.run_pgid = int(message["pgid"])
                self.run_workdir = str(message.get("workdir") or "") or None
            elif kind == "output":
                on_output(message["text"])
            elif kind == "result":
                self.run_pgid = self.run_workdir = None
                return RunResult(key=spec.key, versions=dict(self.versions), **message["result"])

    def _death_message(self) -> str:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "worker process stopped answering during the run; it was replaced"
        # bubblewrap and the keeper pass on a worker killed by signal N as exit code 128 + N.
        signum = -code if code < 0 else code - 128 if 128 < code < 128 + signal.NSIG else None
        how = f"killed by {_signal_name(signum)}" if signum is not None else f"exit code {code}"
        return f"worker process died during the run ({how}); it was replaced"

    def terminate(self) -> None:
        """Stop the worker process and everything it started. Idempotent; leaves the pipes open.

        EOF first (an idle worker exits at once), then SIGTERM, which the keeper answers by killing
        every descendant and bubblewrap by taking its namespaces down; SIGKILL only after that.
        """
        if self.dead:
            return
        self.dead = True
        graceful = self.run_pgid is None
        try:
            self.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=1.0 if graceful else 0.2)
        except subprocess.TimeoutExpired:
            graceful = False
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=TERMINATE_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not graceful:
            # A snippet may still be alive (its group, or a daemon that escaped it): find it by token.
            sandbox.kill_marked(f"{_TOKEN_VAR}={self.token}".encode())
        if self.zygote_pid is not None:
            # Inside bubblewrap the worker is a grandchild, killed asynchronously when bwrap dies:
            # return only once it is gone, so that a closed pool has no process left.
            _wait_gone(self.zygote_pid, timeout=2.0)
        workdir = self.run_workdir
        if workdir and os.path.basename(workdir).startswith("kb-run-") and not os.path.islink(workdir):
            shutil.rmtree(workdir, ignore_errors=True)  # the dead worker cannot remove it any more

    def destroy(self) -> None:
        """terminate(), then close the pipes; only the thread using the worker may call this."""
        self.terminate()
        for stream in (self.stdout, self.stderr):
            try:
                stream.close()
            except OSError:
                pass


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait until process `pid` (not our child) has exited (a zombie counts as exited)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            if stat[stat.rindex(b")") + 2 :][:1] in (b"Z", b"X"):
                return True
        except (OSError, ValueError):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class _Spawner:
    """Starts worker processes from one thread that lives as long as the pool.

    bubblewrap's --die-with-parent and the keeper's parent-death signal fire when the *thread* that
    started them exits, not the process: a worker started from a run's thread (a replacement, or
    the first start from run_many's executor or a TUI worker) would be killed with that thread.
    """

    def __init__(self) -> None:
        self._requests: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="kb-runner-spawner", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            request = self._requests.get()
            if request is None:
                return
            layer, reply = request
            try:
                reply.put(_Worker(layer))
            except BaseException as exc:  # e.g. the interpreter or bwrap could not be executed
                reply.put(exc)

    def spawn(self, layer: str) -> _Worker:
        if threading.current_thread() is self._thread:
            return _Worker(layer)
        reply: queue.Queue = queue.Queue(maxsize=1)
        self._requests.put((layer, reply))
        outcome = reply.get()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def stop(self) -> None:
        self._requests.put(None)


def _shutdown(workers: list[_Worker], lock: threading.Lock, spawner: _Spawner) -> None:
    spawner.stop()
    with lock:
        doomed = list(workers)
        workers.clear()
    for worker in doomed:  # close every channel first so that the workers exit in parallel
        try:
            worker.stdin.close()
        except OSError:
            pass
    for worker in doomed:
        if worker.busy:
            # Another thread is reading this worker's pipe: it sees EOF and closes the pipes itself.
            worker.terminate()
        else:
            worker.destroy()


class WorkerPool:
    """Runs snippets on `jobs` warm worker processes.

    Args:
        jobs: How many snippets may run at once (default: os.cpu_count()).
        device: The device this pool is mainly for ("cpu" or "cuda"); kept as `pool.device`. Each
            RunSpec's own device decides where its snippet runs, so one pool serves a mixed plan;
            a "cpu" run never sees a GPU.
        bubblewrap: Run the workers inside bubblewrap: None (the default) where it works here, True
            to require it (RuntimeError at start when it cannot), False for the fallback layer.

    The workers start on first use. Use as a context manager, or call close(); a pool that is
    garbage-collected or still open at interpreter exit is closed too.
    """

    def __init__(self, jobs: int | None = None, device: str = "cpu", *, bubblewrap: bool | None = None) -> None:
        if device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
        self.jobs = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
        self.device = device
        self._bubblewrap = bubblewrap
        self._layer: str | None = None
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._started = False
        self._closed = False
        self._spawner = _Spawner()
        self._finalizer = weakref.finalize(self, _shutdown, self._workers, self._lock, self._spawner)

    # -- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Kill the workers and whatever they run. Idempotent."""
        with self._lock:
            self._closed = True
        self._finalizer()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def layer(self) -> str:
        """ "bubblewrap" or "fallback": the outer layer the workers run in (decided once)."""
        if self._layer is None:
            if self._bubblewrap is False:
                self._layer = "fallback"
            else:
                reason = bwrap.reason_unusable()
                if reason is not None and self._bubblewrap:
                    raise RuntimeError(f"bubblewrap was required but cannot be used: {reason}")
                self._layer = "fallback" if reason else "bubblewrap"
        return self._layer

    @property
    def level(self) -> str:
        """Every layer a run of this pool gets, e.g. "bubblewrap+landlock+seccomp"."""
        return sandbox.sandbox_level(bubblewrap=self.layer == "bubblewrap")

    def start(self, wait: bool = False) -> None:
        """Start the workers now rather than on first use; they import torch in parallel.

        Args:
            wait: Return only once every worker is ready (or has failed to start).
        """
        fresh: list[_Worker] = []
        layer = self.layer  # may probe bubblewrap once: not under the lock
        with self._lock:
            if self._closed:
                raise RuntimeError("the pool is closed")
            if not self._started:
                self._started = True
                fresh = [self._spawner.spawn(layer) for _ in range(self.jobs)]
                self._workers.extend(fresh)
        if wait:
            for worker in fresh:
                try:
                    worker.ensure_ready()
                except _WorkerLost:
                    pass  # the first run on it replaces it and reports why
        for worker in fresh:
            self._idle.put(worker)

    def worker_pids(self) -> list[int]:
        """Process ids (as this process sees them) of the current workers: the worker processes
        themselves, not bubblewrap or the keeper around them (for diagnostics and tests). Waits up
        to a few seconds for a worker that is still being started to exist."""
        with self._lock:
            workers = list(self._workers)
        return [w.find_zygote() for w in workers]

    def _acquire(self) -> _Worker:
        while True:
            if self._closed:
                raise RuntimeError("the pool is closed")
            try:
                worker = self._idle.get(timeout=0.2)
            except queue.Empty:
                continue
            with self._lock:
                if worker in self._workers:  # else close() took it away while it was queued
                    worker.busy = True
                    return worker
            worker.destroy()

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            worker.busy = False
            keep = not self._closed and worker in self._workers
        if keep:
            self._idle.put(worker)
        else:
            worker.destroy()

    def _replace(self, worker: _Worker) -> None:
        with self._lock:
            worker.busy = False
        worker.destroy()
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
            if self._closed:
                return
            fresh = self._spawner.spawn(self.layer)  # starts importing now, so it is warm by the next run
            self._workers.append(fresh)
        self._idle.put(fresh)

    # -- running ----------------------------------------------------------------------------

    def run(self, spec: RunSpec, on_output: OutputCallback | None = None) -> RunResult:
        """Run one snippet and return its record; `on_output` receives output text as it arrives.

        Never raises for anything the snippet does; a worker that dies is replaced and the run
        reported as "crashed".

        Raises:
            RuntimeError: The pool is closed.
            Exception: Whatever `on_output` raised, re-raised once the run has finished.
        """
        self.start()
        streamed: list[str] = []
        callback_errors: list[BaseException] = []

        def forward(text: str) -> None:
            streamed.append(text)
            if on_output is not None and not callback_errors:
                try:
                    on_output(text)
                except Exception as exc:  # keep reading so the worker stays in step
                    callback_errors.append(exc)

        started_at = time.monotonic()
        for attempt in range(RETRIES + 1):
            worker = self._acquire()
            try:
                result = worker.execute(spec, forward)
            except _WorkerLost as lost:
                self._replace(worker)
                if not lost.started and attempt < RETRIES:
                    continue
                output = "".join(streamed)
                return _synthetic(
                    spec,
                    "crashed",
                    lost.message,
                    output=output,
                    duration=time.monotonic() - started_at,
                    versions=worker.versions,
                )
            except BaseException:
                # KeyboardInterrupt or a bug: the worker's state is unknown, so it cannot be reused.
                self._replace(worker)
                raise
            self._release(worker)
            if callback_errors:
                raise callback_errors[0]
            return result
        raise AssertionError("unreachable")

    def run_many(
        self, specs: Iterable[RunSpec], on_result: Callable[[RunResult], None] | None = None
    ) -> list[RunResult]:
        """Run snippets in parallel over the workers; results in input order.

        `on_result` is called in the calling thread as each run finishes (for a progress bar).
        """
        specs = list(specs)
        if not specs:
            return []
        self.start()
        results: list[RunResult | None] = [None] * len(specs)
        executor = ThreadPoolExecutor(max_workers=min(self.jobs, len(specs)), thread_name_prefix="kb-runner")
        try:
            futures = {executor.submit(self.run, spec): index for index, spec in enumerate(specs)}
            for future in as_completed(futures):
                result = future.result()
                results[futures[future]] = result
                if on_result is not None:
                    on_result(result)
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
        return [r for r in results if r is not None]


def _synthetic(
    spec: RunSpec,
    status: str,
    message: str,
    *,
    output: str = "",
    duration: float = 0.0,
    versions: dict[str, str] | None = None,
) -> RunResult:
    """A result for a run the worker could not report on itself."""
    return RunResult(
        key=spec.key,
        status=status,
        device=spec.device,
        duration_s=round(duration, 6),
        output=output,
        truncated=False,
        message=message,
        line=None,
        signal=None,
        exit_code=None,
        values={},
        versions=dict(versions or {}),
    )
