"""Attacks on the sandbox: each is a snippet that tries to get out, and a check on this side that it did not.

Every attack runs on both layers: inside bubblewrap, and on the fallback (Landlock, seccomp, no
capabilities, a private /dev/shm, the keeper). The test process runs as root here, so the snippets
do too; the attacks whose code path differs for an ordinary user (the private /dev/shm made in a
user namespace, no capabilities to drop) run again as `nobody` on the fallback layer.

What is asserted is the effect that must never happen (a marker file, a keystroke, a connection, a
device opened for writing, a changed mode, memory left in /dev/shm, a process alive), not only that
the snippet saw an error.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import termios
import textwrap
import threading
import time
from pathlib import Path

import pytest

from helpers import require_or_skip
from kb.runner import Limits, RunResult, RunSpec

from .helpers import processes_with_argument, run, run_as_nobody

ATTEMPT = textwrap.dedent(
    """
    import errno, os

    def attempt(name, fn):
        try:
            fn()
        except OSError as exc:
            print("DENIED", name, errno.errorcode.get(exc.errno, exc.errno), flush=True)
        else:
            print("ALLOWED", name, flush=True)
    """
)
SLOW = Limits(cpu_s=10, wall_s=20)


def outcomes(output: str) -> dict[str, str]:
    """name -> "ALLOWED" or the errno name, from ATTEMPT's lines."""
    found = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("DENIED", "ALLOWED"):
            found[parts[1]] = parts[2] if parts[0] == "DENIED" else "ALLOWED"
    return found


def attempts(*pairs: tuple[str, str]) -> str:
    return ATTEMPT + "".join(f"attempt({name!r}, lambda: {call})\n" for name, call in pairs)


def assert_all_denied(result: RunResult, names: list[str]) -> dict[str, str]:
    assert result.status == "passed", result
    seen = outcomes(result.output)
    assert sorted(seen) == sorted(names), result.output
    allowed = [name for name, how in seen.items() if how == "ALLOWED"]
    assert allowed == [], f"{allowed} got through: {result.output}"
    return seen


# --- 1. pathname and abstract UNIX sockets ------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_listening_socket_on_disk_is_not_reachable(layered_pool, tmp_path):
    path = tmp_path / "server.sock"  # where a terminal multiplexer or a D-Bus bus listens
    abstract = f"\0kb-test-{os.getpid()}-{layered_pool.layer}"
    with socket.socket(socket.AF_UNIX) as on_disk, socket.socket(socket.AF_UNIX) as in_abstract:
        on_disk.bind(str(path))
        in_abstract.bind(abstract)
        for listener in (on_disk, in_abstract):
            listener.listen(4)
            listener.setblocking(False)
        code = attempts(
            ("pathname", f"__import__('socket').socket(1).connect({str(path)!r})"),
            ("abstract", f"__import__('socket').socket(1).connect({abstract!r})"),
            ("datagram", f"__import__('socket').socket(1, 2).sendto(b'x', {str(path)!r})"),
        )
        result, _ = run(layered_pool, code)
        assert_all_denied(result, ["pathname", "abstract", "datagram"])
        for listener in (on_disk, in_abstract):
            with pytest.raises(BlockingIOError):
                listener.accept()  # nobody connected


@pytest.mark.timeout(60)
def test_a_tmux_server_cannot_be_made_to_run_a_command(layered_pool, tmp_path):
    tmux = shutil.which("tmux")
    if tmux is None:
        require_or_skip("tmux", "tmux is not installed, so its server socket cannot be attacked")
    sock, marker = tmp_path / "tmux.sock", tmp_path / "escaped"
    subprocess.run([tmux, "-S", str(sock), "new-session", "-d", "sleep 60"], check=True, timeout=10)
    try:
        # What the attack did: ask the user's tmux server to run a shell command outside the sandbox.
        code = (
            "import subprocess\n"
            f"done = subprocess.run([{tmux!r}, '-S', {str(sock)!r}, 'run-shell', 'touch {marker}'], capture_output=True)\n"
            "print('tmux exit', done.returncode)\n"
        )
        result, _ = run(layered_pool, code, limits=SLOW)
        assert result.status == "passed", result
        assert "tmux exit 0" not in result.output, result.output
        time.sleep(0.3)
        assert not marker.exists()
    finally:
        subprocess.run([tmux, "-S", str(sock), "kill-server"], timeout=10, capture_output=True)


# --- 2. keystrokes and escape sequences into the user's terminal -------------------------------


@pytest.mark.timeout(60)
def test_no_keystroke_or_escape_sequence_reaches_a_terminal(layered_pool):
    master, slave = os.openpty()  # stands for the terminal `kb verify` was started from
    try:
        name = os.ttyname(slave)
        for fd in (master, slave):
            os.set_blocking(fd, False)
        code = ATTEMPT + textwrap.dedent(
            f"""
            import fcntl, termios
            def push():
                fd = os.open({name!r}, os.O_RDWR | os.O_NOCTTY)
                for ch in b"touch /tmp/pwned\\n":
                    fcntl.ioctl(fd, termios.TIOCSTI, bytes([ch]))
            def title():
                fd = os.open({name!r}, os.O_WRONLY | os.O_NOCTTY)
                os.write(fd, b"\\x1b]0;pwned\\x07\\x1b]52;c;cHduZWQ=\\x07")
            attempt("tiocsti", push)
            attempt("escape_sequences", title)
            attempt("controlling_tty", lambda: os.open("/dev/tty", os.O_RDWR))
            attempt("tiocsti_on_fd_0", lambda: fcntl.ioctl(0, termios.TIOCSTI, b"x"))
            """
        )
        result, _ = run(layered_pool, code)
        assert_all_denied(result, ["tiocsti", "escape_sequences", "controlling_tty", "tiocsti_on_fd_0"])
        for fd in (master, slave):  # nothing written to the screen, nothing pushed into the input
            with pytest.raises(BlockingIOError):
                os.read(fd, 1024)
    finally:
        os.close(master)
        os.close(slave)


def test_tiocsti_works_on_this_terminal_outside_the_sandbox():
    """The check above can fail: here, unconfined, the same push lands in the terminal's input."""
    if os.geteuid() != 0:
        pytest.skip("TIOCSTI on a terminal that is not one's controlling terminal needs CAP_SYS_ADMIN")
    master, slave = os.openpty()
    try:
        try:
            for ch in b"x\n":  # the terminal is line-buffered: the newline hands the line over
                fcntl.ioctl(slave, termios.TIOCSTI, bytes([ch]))
        except OSError as exc:
            pytest.skip(f"this kernel refuses TIOCSTI to everyone ({exc})")
        os.set_blocking(slave, False)
        assert os.read(slave, 16) == b"x\n"
    finally:
        os.close(master)
        os.close(slave)


# --- 3. raw devices ---------------------------------------------------------------------------


def _host_devices() -> list[str]:
    """Block and dangerous character devices of this machine that a run must never open for writing."""
    found = []
    for name in sorted(os.listdir("/sys/class/block")) if os.path.isdir("/sys/class/block") else []:
        if os.path.exists(f"/dev/{name}"):
            found.append(f"/dev/{name}")
    found += [p for p in ("/dev/kmsg", "/dev/mem", "/dev/port", "/dev/loop-control") if os.path.exists(p)]
    return found[:12]


@pytest.mark.timeout(60)
def test_raw_devices_cannot_be_opened_for_writing_or_made(layered_pool):
    devices = _host_devices()
    # Opening for writing and closing writes nothing, so the test is harmless if the check failed.
    pairs = [(f"open_{Path(d).name}", f"os.close(os.open({d!r}, os.O_WRONLY))") for d in devices]
    pairs += [
        ("mknod_block", "os.mknod('disk', 0o600 | 0o060000, os.makedev(7, 0))"),
        ("mknod_char", "os.mknod('mem', 0o600 | 0o020000, os.makedev(1, 1))"),
    ]
    result, _ = run(layered_pool, attempts(*pairs) + "os.mkfifo('fifo')\nprint('fifo ok')\n")
    seen = assert_all_denied(result, [name for name, _ in pairs])
    assert "fifo ok" in result.output  # FIFOs and sockets are not devices
    assert seen["mknod_block"] == seen["mknod_char"] == "EPERM"


# --- 4. metadata of files outside the run -------------------------------------------------------


def _metadata(path: Path) -> tuple:
    st = os.lstat(path)
    xattrs = sorted(os.listxattr(path)) if hasattr(os, "listxattr") else []
    return (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns, xattrs)


@pytest.mark.timeout(60)
def test_metadata_of_files_outside_cannot_change(layered_pool, tmp_path):
    database = tmp_path / "kb.sqlite"
    database.write_bytes(b"SQLite format 3\0")
    os.chmod(database, 0o640)
    os.utime(database, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before = _metadata(database)
    dev_null = _metadata(Path("/dev/null"))
    target = str(database)
    code = attempts(
        ("chmod", f"os.chmod({target!r}, 0)"),
        ("chown", f"os.chown({target!r}, 1, 1)"),
        ("utime", f"os.utime({target!r}, (0, 0))"),
        ("setxattr", f"os.setxattr({target!r}, 'user.kb', b'x')"),
        # Visible in both layers: a device bound into bubblewrap's /dev, and a file of the Python
        # installation. Their current mode is asked for, so a failure of the check changes nothing.
        ("chmod_dev_null", "os.chmod('/dev/null', 0o666)"),
        ("utime_dev_null", "os.utime('/dev/null')"),
        ("fchmod_read_only_fd", "os.fchmod(os.open(os.__file__, os.O_RDONLY), os.stat(os.__file__).st_mode & 0o7777)"),
        ("setxattr_python", "os.setxattr(os.__file__, 'user.kb', b'x')"),
    )
    result, _ = run(layered_pool, code)
    seen = assert_all_denied(
        result,
        [
            "chmod",
            "chown",
            "utime",
            "setxattr",
            "chmod_dev_null",
            "utime_dev_null",
            "fchmod_read_only_fd",
            "setxattr_python",
        ],
    )
    assert seen["chmod_dev_null"] == seen["fchmod_read_only_fd"] == "EPERM"
    assert _metadata(database) == before
    assert _metadata(Path("/dev/null")) == dev_null


def test_chmod_inside_the_run_is_refused_with_a_reason(layered_pool):
    result, _ = run(layered_pool, "open('a', 'w').close()\nimport os\nos.chmod('a', 0o600)\n")
    assert result.status == "failed", result
    assert result.message.startswith("PermissionError") and "changing file permissions" in result.message


# --- 5. /dev/shm ----------------------------------------------------------------------------------


SHM_FILL = textwrap.dedent(
    """
    import os
    print("SHM_BEFORE", sorted(os.listdir("/dev/shm")) if os.access("/dev/shm", os.W_OK) else "none")
    written = 0
    try:
        for i in range(64):  # 15 MiB files stay under the 16 MiB file-size limit; 960 MiB in all
            with open(f"/dev/shm/kb-left-{marker}-{i}", "wb") as f:
                f.write(b"x" * (15 * 2**20))
            written += 15 * 2**20
    except OSError as exc:
        print("STOPPED", type(exc).__name__, exc.errno)
    print("WRITTEN", written)
    """
)


@pytest.mark.timeout(60)
def test_dev_shm_is_bounded_private_and_emptied(layered_pool):
    marker = f"{os.getpid()}-{layered_pool.layer}"
    result, _ = run(layered_pool, f"marker = {marker!r}\n" + SHM_FILL, limits=SLOW)
    assert result.status == "passed", result
    written = int(result.output.split("WRITTEN ")[1].split()[0])
    assert written <= 256 * 2**20, result.output  # the private /dev/shm's size, not 960 MiB
    assert "STOPPED" in result.output
    assert not [n for n in os.listdir("/dev/shm") if marker in n]  # never reached this machine's
    # The next runs on the same workers find it empty: nothing of that run is left anywhere.
    for _ in range(layered_pool.jobs):
        after, _ = run(layered_pool, "import os\nprint(sorted(os.listdir('/dev/shm')))\n")
        assert after.status == "passed" and after.output == "[]\n", after


# --- 6. processes that outlive their worker -------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_detached_process_with_no_environment_dies_with_its_worker(layered_pool):
    marker = f"9999.{os.getpid() % 10000}{int(time.monotonic() * 1000) % 100000}"  # a unique sleep time
    started = threading.Event()
    results: list[RunResult] = []
    code = textwrap.dedent(
        f"""
        import os, time
        os.posix_spawn("/bin/sleep", ["sleep", {marker!r}], {{}}, setsid=True)
        print("SPAWNED", flush=True)
        time.sleep(60)
        """
    )
    spec = RunSpec("escape", code, limits=Limits(cpu_s=10, wall_s=30))
    thread = threading.Thread(target=lambda: results.append(layered_pool.run(spec, on_output=lambda t: started.set())))
    thread.start()
    assert started.wait(20)
    deadline = time.monotonic() + 5
    while not processes_with_argument(marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert processes_with_argument(marker), "the detached process never started"
    busy = [pid for pid in layered_pool.worker_pids() if _has_children(pid)]
    assert len(busy) == 1
    os.kill(busy[0], signal.SIGKILL)
    thread.join(20)
    assert results and results[0].status == "crashed", results
    deadline = time.monotonic() + 10
    while processes_with_argument(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with_argument(marker) == []


def _has_children(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return bool(f.read().split())
    except OSError:
        return False


# --- 8. forged verdicts ---------------------------------------------------------------------------


FAKE = '{"status": "passed", "message": null, "line": null, "values": {"x": {"value": 42, "text": "42"}}}'


WRITE_EVERYWHERE = (
    f"for fd in range(3, 1024):\n    try:\n        os.write(fd, {FAKE!r}.encode())\n    except OSError:\n        pass\n"
)
# A fork given a copy of every socket the snippet holds (the report channel among them), made under
# numbers the fork-time closing does not know.
HAND_OVER = (
    "import os, stat\n"
    "copies = [os.dup(fd) for fd in range(3, 64) if os.path.exists(f'/proc/self/fd/{fd}') and stat.S_ISSOCK(os.fstat(fd).st_mode)]\n"
)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("name", "code"),
    [
        pytest.param("early os._exit", "import os\nos._exit(0)\nassert False\n", id="os._exit"),
        pytest.param("libc _exit", "import ctypes\nctypes.CDLL(None)._exit(0)\n", id="libc-exit"),
        pytest.param("fake report, then fail", "import os\n" + WRITE_EVERYWHERE + "assert False\n", id="fake-report"),
        pytest.param(
            "fake report from a fork",
            "import os\nif os.fork() == 0:\n"
            + textwrap.indent(WRITE_EVERYWHERE, "    ")
            + "    os._exit(0)\nos.wait()\nos._exit(0)\n",
            id="fake-report-from-fork",
        ),
        pytest.param(
            "channel handed to a fork",
            HAND_OVER
            + "if os.fork() == 0:\n"
            + textwrap.indent(WRITE_EVERYWHERE, "    ")
            + "    os._exit(0)\nos.wait()\nos._exit(0)\n",
            id="channel-handed-to-fork",
        ),
        pytest.param("fake report on stdout", f"print({FAKE!r}, flush=True)\nimport os\nos._exit(0)\n", id="stdout"),
        pytest.param("every descriptor closed", "import os\nos.closerange(3, 1024)\nx = 42\n", id="closed-channel"),
    ],
)
@pytest.mark.parametrize("expressions", [(), ("x",)], ids=["no-computed-card", "computed-card"])
def test_a_run_that_did_not_finish_is_never_passed(layered_pool, name, code, expressions):
    result = layered_pool.run(RunSpec("forged", code, limits=Limits(cpu_s=5, wall_s=10), expressions=expressions))
    assert result.status != "passed", (name, result)
    assert result.values.get("x", {}).get("value") != 42, (name, result)
    if name == "channel handed to a fork":  # the kernel named the writer: not the run's process
        assert result.status == "crashed" and "report channel" in result.message, result


@pytest.mark.timeout(60)
def test_the_report_channel_is_closed_in_forked_processes(layered_pool):
    code = textwrap.dedent(
        """
        import os, stat
        def sockets():
            found = []
            for fd in map(int, os.listdir("/proc/self/fd")):
                try:
                    if stat.S_ISSOCK(os.fstat(fd).st_mode):
                        found.append(fd)
                except OSError:
                    pass
            return found
        mine = sockets()
        r, w = os.pipe()
        if os.fork() == 0:
            os.write(w, repr(sockets()).encode())
            os._exit(0)
        os.wait()
        print("PARENT", len(mine), "CHILD", os.read(r, 100).decode())
        """
    )
    result, _ = run(layered_pool, code)
    assert result.status == "passed", result
    assert "PARENT 1 CHILD []" in result.output, result.output


# --- the same attacks as an unprivileged user (fallback layer) -----------------------------------


NOBODY_DRIVER = """
import json, sys
from kb.runner import Limits, RunSpec, WorkerPool
with WorkerPool(jobs=1, bubblewrap=False) as pool:
    results = {name: pool.run(RunSpec(name, code, limits=Limits(cpu_s=10, wall_s=20))).to_dict()
               for name, code in json.loads(sys.argv[1]).items()}
print(json.dumps(results))
"""


@pytest.mark.timeout(120)
def test_attacks_as_an_unprivileged_user(tmp_path):
    master, slave = os.openpty()
    os.chmod(os.ttyname(slave), 0o666)  # an attacker's best case: a terminal anyone may open
    database = tmp_path / "kb.sqlite"
    database.write_bytes(b"x")
    os.chmod(database, 0o666)
    os.chmod(tmp_path, 0o777)
    before = _metadata(database)
    marker = f"nobody-{os.getpid()}"
    snippets = {
        "terminal": attempts(
            (
                "tiocsti",
                f"__import__('fcntl').ioctl(os.open({os.ttyname(slave)!r}, os.O_RDWR | os.O_NOCTTY), 0x5412, b'x')",
            ),
            ("write", f"os.write(os.open({os.ttyname(slave)!r}, os.O_WRONLY | os.O_NOCTTY), b'\\x1b]0;pwned\\x07')"),
        ),
        "metadata": attempts(
            ("chmod", f"os.chmod({str(database)!r}, 0)"), ("utime", f"os.utime({str(database)!r}, (0, 0))")
        ),
        "devices": attempts(
            ("kmsg", "os.close(os.open('/dev/kmsg', os.O_WRONLY))"),
            ("mknod_char", "os.mknod('mem', 0o600 | 0o020000, os.makedev(1, 1))"),
        ),
        "shm": f"marker = {marker!r}\n" + SHM_FILL,
        "shm_after": "import os\nprint(sorted(os.listdir('/dev/shm')) if os.access('/dev/shm', os.W_OK) else 'none')\n",
        "capabilities": "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])\n",
    }
    try:
        os.set_blocking(master, False)
        os.set_blocking(slave, False)
        done = run_as_nobody(NOBODY_DRIVER, json.dumps(snippets), timeout=100)
        assert done.returncode == 0, done.stderr
        results = json.loads(done.stdout.strip().splitlines()[-1])
        for name in ("terminal", "metadata", "devices"):
            assert results[name]["status"] == "passed", results[name]
            assert "ALLOWED" not in results[name]["output"], (name, results[name]["output"])
        for fd in (master, slave):
            with pytest.raises(BlockingIOError):
                os.read(fd, 1024)
    finally:
        os.close(master)
        os.close(slave)
    assert _metadata(database) == before
    shm = results["shm"]
    assert shm["status"] == "passed", shm
    assert int(shm["output"].split("WRITTEN ")[1].split()[0]) <= 256 * 2**20
    assert not [n for n in os.listdir("/dev/shm") if marker in n]
    assert results["shm_after"]["output"] in ("[]\n", "none\n"), results["shm_after"]
    assert results["capabilities"]["output"].strip() == "0000000000000000"
