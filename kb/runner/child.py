"""What runs inside the forked child of a worker: isolate, run one snippet, report, exit.

Function: run_child. It is called right after fork() in a worker that has already imported numpy
and torch, and it never returns: the child always leaves through os._exit so that no state of the
worker (atexit handlers, buffered control-channel data) runs twice.
"""

from __future__ import annotations

import faulthandler
import io
import json
import linecache
import math
import os
import random
import resource
import signal
import sys
import tempfile
import traceback
import types
from typing import Any, NoReturn

from kb.runner import sandbox
from kb.runner.protocol import write_all

SNIPPET_FILENAME = "<snippet>"
MAX_MESSAGE_CHARS = 4000  # an assertion message may embed a huge tensor repr
MAX_VALUE_BYTES = 64 * 1024  # JSON of one computed value; bigger values are not card answers
_MEMORY_TEXTS = (
    "defaultcpuallocator",
    "failed to allocate",
    "can't allocate memory",
    "out of memory",
    "std::bad_alloc",
)
EXIT_RUNNER_ERROR = 70  # EX_SOFTWARE: the runner itself failed in the child
EXIT_SANDBOX_UNAVAILABLE = 77  # EX_NOPERM: the run required confinement that could not be applied


def _line_buffered(fd: int) -> io.TextIOWrapper:
    """A line-buffered text stream writing to `fd`; undecodable text is escaped, never an error."""
    return open(fd, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)


def run_child(
    spec: dict[str, Any],
    *,
    out_w: int,
    res_w: int,
    workdir: str,
    close_fds: list[int],
    worker_pid: int,
    inside_bubblewrap: bool = False,
) -> NoReturn:
    """Run `spec` (a RunSpec as a dict) in this freshly forked process and exit.

    The report goes to `res_w` once, after the code and the computed expressions have run; a process
    the snippet forks has it closed, and the worker accepts a report from this process only.
    """
    my_pid = os.getpid()
    exit_code = EXIT_RUNNER_ERROR
    _close_in_forks(res_w)
    try:
        applied = _isolate(
            spec,
            out_w=out_w,
            workdir=workdir,
            close_fds=close_fds,
            worker_pid=worker_pid,
            inside_bubblewrap=inside_bubblewrap,
        )
        refusal = sandbox.unavailable_reason(applied) if spec.get("sandbox") else None
        if refusal is not None:  # the run requires confinement (RunSpec.sandbox): do not run the code
            report, exit_code = {"status": "crashed", "message": refusal, "line": None}, EXIT_SANDBOX_UNAVAILABLE
        else:
            report, exit_code = _execute(spec, my_pid)
            if report["status"] == "failed" and (report.get("message") or "").startswith("PermissionError"):
                report["message"] = _truncate((report.get("message") or "") + _sandbox_hint(applied))
        _flush_stdio()
        write_all(res_w, json.dumps(report).encode("utf-8"))
    except BaseException as exc:  # the runner failed, not the snippet: say so rather than die silently
        if os.getpid() == my_pid:
            try:
                status = "memory" if isinstance(exc, MemoryError) else "crashed"
                report = {"status": status, "message": f"runner error: {_describe(exc)}", "line": None}
                write_all(res_w, json.dumps(report).encode("utf-8"))
            except BaseException:
                pass
        exit_code = EXIT_RUNNER_ERROR
    os._exit(exit_code)


def _close_in_forks(fd: int) -> None:
    """Keep the report channel out of every process the snippet starts (fork, or fork and exec)."""
    os.set_inheritable(fd, False)

    def close_it() -> None:
        try:
            os.close(fd)
        except OSError:
            pass

    os.register_at_fork(after_in_child=close_it)


def _isolate(
    spec: dict[str, Any], *, out_w: int, workdir: str, close_fds: list[int], worker_pid: int, inside_bubblewrap: bool
) -> dict[str, Any]:
    """Detach, redirect, limit and confine this process; returns what sandbox.confine applied."""
    # A session of our own: no controlling terminal to push keystrokes into, and one process group
    # the worker kills at once.
    os.setsid()
    sandbox.set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != worker_pid:  # the worker died before the line above took effect
        os._exit(EXIT_RUNNER_ERROR)

    # stdin reads EOF; stdout and stderr share one pipe so they interleave in the order written.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(out_w, 1)
    os.dup2(out_w, 2)
    os.close(out_w)
    for fd in close_fds:  # the worker's control channel must not be reachable from the snippet
        try:
            os.close(fd)
        except OSError:
            pass

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write raises OSError(EFBIG)
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    if spec["device"] == "cpu":
        # CUDA reads this when first initialised, which the worker never did: a cpu run sees no GPU.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.chdir(workdir)
    for name in ("TMPDIR", "TEMP", "TMP"):
        os.environ[name] = workdir
    # The CUDA driver's JIT cache (~/.nv/ComputeCache by default) and Triton's kernel cache
    # (~/.triton/cache) would be writes outside the allow-list: keep them in the run's directory.
    # Not exercised on a machine without a GPU.
    os.environ["CUDA_CACHE_PATH"] = workdir
    os.environ["TRITON_CACHE_DIR"] = workdir
    tempfile.tempdir = workdir

    _set_limits(spec["limits"], device=spec["device"])
    # Every run is confined as far as the kernel allows (Landlock writes/TCP/signals, seccomp sockets);
    # the worker that forked us is not. run_child refuses the run if it required more than this.
    applied = sandbox.confine(
        workdir, inside_bubblewrap=inside_bubblewrap, shm_bytes=int(spec["limits"].get("shm_bytes", 256 * 1024**2))
    )

    # The interpreter's own streams too (typeshed marks them final): the snippet sees only these.
    sys.stdin = sys.__stdin__ = open(0, encoding="utf-8", closefd=False)  # type: ignore[misc]
    sys.stdout = sys.__stdout__ = _line_buffered(1)  # type: ignore[misc]
    sys.stderr = sys.__stderr__ = _line_buffered(2)  # type: ignore[misc]
    faulthandler.enable(file=sys.stderr, all_threads=True)
    return applied


def _set_limit(which: int, soft: int, hard: int | None = None) -> None:
    hard = soft if hard is None else hard
    _, current_hard = resource.getrlimit(which)
    if current_hard != resource.RLIM_INFINITY:  # we may only lower a hard limit
        hard = min(hard, current_hard)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


def _address_space() -> int:
    """This process's virtual memory size in bytes (0 where /proc cannot tell)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _set_limits(limits: dict[str, Any], *, device: str) -> None:
    cpu = max(1, math.ceil(limits["cpu_s"]))  # RLIMIT_CPU has whole seconds
    _set_limit(resource.RLIMIT_CPU, cpu, cpu + 1)  # soft -> SIGXCPU, hard -> SIGKILL
    _set_limit(resource.RLIMIT_FSIZE, int(limits["file_bytes"]))
    _set_limit(resource.RLIMIT_CORE, 0)  # a crash must not write gigabytes of core
    if device == "cpu" and _address_space() < int(limits["memory_bytes"]) // 2:
        _set_limit(resource.RLIMIT_AS, int(limits["memory_bytes"]))
    else:
        # A CUDA build of torch maps gigabytes of libraries into every process that imports it,
        # so the address space may already be past the limit before the snippet starts (seen on a
        # GPU machine: numpy's extensions then fail to map); such runs are bounded as CUDA runs are.
        # CUDA reserves huge address ranges (PROT_NONE, which RLIMIT_DATA does not count), so a GPU
        # run's host memory is bounded by its private writable mappings instead; the allocator's
        # fraction bounds the GPU's.
        _set_limit(resource.RLIMIT_DATA, int(limits["memory_bytes"]))
    if os.geteuid() != 0:  # root ignores RLIMIT_NPROC
        _set_limit(resource.RLIMIT_NPROC, sandbox.task_count(os.getuid()) + int(limits["nproc_extra"]))


def _execute(spec: dict[str, Any], my_pid: int) -> tuple[dict[str, Any], int]:
    import numpy
    import torch

    random.seed(0)
    numpy.random.seed(0)
    torch.manual_seed(0)
    device = torch.device(spec["device"])
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return {"status": "failed", "message": "CUDA is not available to the runner", "line": None}, 1
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, spec["limits"]["memory_bytes"] / total), 0)

    # A fresh __main__ module: pickling by reference (multiprocessing.Pool.map of a snippet function)
    # looks functions up in sys.modules["__main__"], which must be the snippet's namespace.
    module = types.ModuleType("__main__")
    module.__dict__.update(device=device, rng=numpy.random.default_rng(0))
    sys.modules["__main__"] = module
    namespace = module.__dict__
    # The code is compiled under the YAML file's name with its line numbers there (blank lines pad
    # the top), so a traceback reads `File "content/x.yaml", line 212` like the verdict does.
    filename = spec.get("source_path") or SNIPPET_FILENAME
    sys.argv = [filename]
    offset = int(spec["line_offset"])
    code = "\n" * offset + spec["code"]
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)

    report: dict[str, Any] = {"status": "passed", "message": None, "line": None, "values": {}}
    exit_code = 0
    try:
        # dont_inherit: this module's `from __future__ import annotations` must not leak into the snippet.
        exec(compile(code, filename, "exec", dont_inherit=True), namespace)
    except SystemExit as exc:
        exit_code = _exit_code(exc)
        if exit_code != 0:
            report.update(status="failed", message=_exit_message(exc, exit_code))
    except BaseException as exc:
        _print_exception(exc, filename)
        report.update(
            status="memory" if _is_memory_error(exc) else "failed",
            message=_describe(exc),
            line=_snippet_line(exc, filename),
        )
        exit_code = 1
    if os.getpid() != my_pid:
        # A process the snippet forked fell off the end of the code: exit as a script would, without
        # evaluating or reporting anything (only the snippet's own process speaks for the run).
        _flush_stdio()
        os._exit(exit_code)

    if report["status"] == "passed":
        values, error = _evaluate(spec["expressions"], namespace)
        report["values"] = values
        if error is not None:
            report.update(status="failed", message=error)
            exit_code = 1
    return report, exit_code


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):  # bool included, as in CPython
        return int(code) & 0xFF
    print(code, file=sys.stderr)  # what CPython does with sys.exit("message")
    return 1


def _exit_message(exc: SystemExit, exit_code: int) -> str:
    if isinstance(exc.code, int) or exc.code is None:
        return f"exit code {exit_code}"
    return _truncate(f"exit code {exit_code}: {exc.code}")


def _print_exception(exc: BaseException, filename: str) -> None:
    """Print the traceback as `python snippet.py` would: from the snippet's first frame on."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next  # drop the runner's own frames
    try:
        traceback.print_exception(type(exc), exc, tb, file=sys.stderr)
    except BaseException:  # under a memory limit printing may fail too; the report still goes out
        pass


def _sandbox_hint(applied: dict[str, Any]) -> str:
    """What the confinement in force forbids, for a PermissionError that is likely its doing."""
    blocked = []
    if applied.get("filesystem"):
        blocked.append("writes outside the run's temporary directory")
    if applied.get("seccomp"):
        blocked.append("changing file permissions, owners, times or attributes")
    if applied.get("network_tcp") or applied.get("seccomp"):
        if applied.get("seccomp") and applied.get("layer") != "bubblewrap":
            blocked.append("every socket (DataLoader workers and multiprocessing managers need bubblewrap: install it)")
        else:
            blocked.append("network sockets")
    if applied.get("signals"):
        blocked.append("signals to other processes")
    if applied.get("filesystem") and not applied.get("private_shm"):
        blocked.append("/dev/shm (no private one could be made here)")
    return f" (the sandbox blocks {', '.join(blocked)})" if blocked else ""


def _describe(exc: BaseException) -> str:
    try:
        # A SyntaxError's str() repeats the file and line, which the result carries separately.
        text = str(exc.msg) if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    except BaseException:
        text = "<exception text unavailable>"
    name = type(exc).__name__
    return _truncate(f"{name}: {text}" if text else name)


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def _is_memory_error(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    if isinstance(exc, RuntimeError):  # torch's allocators raise RuntimeError (OutOfMemoryError)
        try:
            text = str(exc).lower()
        except BaseException:
            return False
        return any(marker in text for marker in _MEMORY_TEXTS)
    return False


def _snippet_line(exc: BaseException, filename: str) -> int | None:
    """The line of the innermost traceback frame in the snippet (or of a SyntaxError in it)."""
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        return exc.lineno
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _evaluate(expressions: list[str], namespace: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    values: dict[str, Any] = {}
    for expr in expressions:
        try:
            raw = eval(compile(expr, "<expression>", "eval", dont_inherit=True), namespace)
            value, shown = _convert(raw)
            size = len(json.dumps(value))
            if size > MAX_VALUE_BYTES:
                raise ValueError(f"value too large ({size} bytes of JSON, limit {MAX_VALUE_BYTES})")
            values[expr] = {"value": value, "text": repr(shown)}
        except BaseException as exc:
            return values, _truncate(f"computed expression {expr!r} raised {_describe(exc)}")
    return values, None


class _Shown(str):
    """Display text for a value with no JSON form: repr() gives the text itself, not a quoted string."""

    def __repr__(self) -> str:
        return str(self)


def _convert(value: Any, depth: int = 0) -> tuple[Any, Any]:
    """(JSON-able value, display value); the display value keeps tuples so repr shows (4, 3, 2)."""
    if depth > 32:
        raise ValueError("value nested too deeply")
    if value is None or type(value) in (bool, int, float, str):
        return value, value
    torch = sys.modules.get("torch")
    numpy = sys.modules.get("numpy")
    if torch is not None and isinstance(value, torch.Tensor):
        return _convert(value.detach().cpu().tolist(), depth + 1)
    if numpy is not None and isinstance(value, numpy.ndarray):
        return _convert(value.tolist(), depth + 1)
    if numpy is not None and isinstance(value, numpy.generic):
        return _convert(value.item(), depth + 1)
    if isinstance(value, bool):
        return bool(value), bool(value)
    if isinstance(value, int):  # IntEnum and friends
        return int(value), int(value)
    if isinstance(value, float):
        return float(value), float(value)
    if isinstance(value, str):
        return str(value), str(value)
    if isinstance(value, tuple):  # torch.Size and named tuples too
        pairs = [_convert(item, depth + 1) for item in value]
        return [p[0] for p in pairs], tuple(p[1] for p in pairs)
    if isinstance(value, list):
        pairs = [_convert(item, depth + 1) for item in value]
        return [p[0] for p in pairs], [p[1] for p in pairs]
    if isinstance(value, dict):
        converted = {str(k): _convert(v, depth + 1) for k, v in value.items()}
        return {k: p[0] for k, p in converted.items()}, {k: p[1] for k, p in converted.items()}
    text = repr(value)
    return text, _Shown(text)


def _flush_stdio() -> None:
    """Flush Python's streams and C's stdio buffers, which os._exit would otherwise drop."""
    for stream in {id(s): s for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__) if s}.values():
        try:
            stream.flush()
        except BaseException:
            pass
    try:
        sandbox.libc().fflush(None)  # output printed by native code (printf, std::cout)
    except BaseException:
        pass
