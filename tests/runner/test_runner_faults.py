"""Every snippet fault gets its verdict within its limit, the caller
survives, and no process of the run is left behind."""

from __future__ import annotations

import json
import os
import textwrap

import psutil
import pytest

from kb.runner import Limits, isolation_report

from .helpers import NOBODY, PGID, PID_MARK, assert_no_leftovers, marked_pids, processes_in_group, run, run_as_nobody


@pytest.mark.timeout(30)
def test_cpu_loop_hits_cpu_limit(pool):
    result, wall = run(pool, PGID + "while True:\n    pass\n")
    assert result.status == "cpu_limit", result
    assert result.signal == "SIGXCPU"
    assert wall < 3
    assert_no_leftovers(pool, result)


@pytest.mark.timeout(30)
def test_sleep_forever_times_out(pool):
    result, wall = run(pool, PGID + "import time\ntime.sleep(1e6)\n")
    assert result.status == "timeout", result
    assert result.message == "killed after 3 s wall time"
    assert 3 <= wall < 4.5
    assert_no_leftovers(pool, result)


@pytest.mark.timeout(30)
def test_input_sees_eof(pool):
    result, wall = run(pool, "x = 1\nanswer = input()\n", line_offset=20)
    assert result.status == "failed", result
    assert result.message == "EOFError: EOF when reading a line"
    assert result.line == 22
    assert wall < 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "code",
    [
        "import torch\nx = torch.empty(50 * 10**9, dtype=torch.uint8)\n",
        "import numpy as np\nx = np.ones(50 * 10**9, dtype=np.uint8)\n",
        "x = bytearray(50 * 10**9)\n",
    ],
    ids=["torch", "numpy", "bytearray"],
)
def test_huge_allocation_is_a_memory_verdict(pool, code):
    result, wall = run(pool, PGID + code)
    assert result.status == "memory", result
    assert "Error" in result.message
    assert result.line == len((PGID + code).splitlines())  # the allocating line is the last
    assert wall < 2
    assert_no_leftovers(pool, result)


FORK_BOMB = (
    PGID
    + """
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
)

NOBODY_DRIVER = """
import json, os, sys
from kb.runner import Limits, RunSpec, WorkerPool
with WorkerPool(jobs=1) as pool:
    result = pool.run(RunSpec("bomb", sys.argv[1], limits=Limits(cpu_s=1, wall_s=3, nproc_extra=64)))
    worker = pool.worker_pids()[0]
    with open(f"/proc/{worker}/task/{worker}/children") as f:
        children = f.read().split()
print(json.dumps({"uid": os.getuid(), "result": result.to_dict(), "worker_children": children}))
"""


def _nobody_runner_processes() -> list[int]:
    found = []
    for proc in psutil.process_iter(["uids", "cmdline"]):
        try:
            if proc.info["uids"].real == NOBODY and "kb.runner.worker" in " ".join(proc.info["cmdline"] or ()):
                found.append(proc.pid)
        except (psutil.Error, TypeError, AttributeError):
            continue
    return found


@pytest.mark.timeout(60)
def test_fork_bomb_as_unprivileged_user():
    completed = run_as_nobody(NOBODY_DRIVER, FORK_BOMB, timeout=50)
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    result = report["result"]
    if os.geteuid() == 0:
        assert report["uid"] == NOBODY
    assert result["status"] in {"timeout", "failed", "cpu_limit"}, result
    assert report["worker_children"] == []
    for pgid in marked_pids(result["output"], "PGID"):
        assert processes_in_group(pgid) == []
    assert _nobody_runner_processes() == []


@pytest.mark.timeout(30)
def test_setsid_daemon_does_not_survive(pool):
    code = PGID + textwrap.dedent(
        f"""
        import time
        if os.fork() == 0:
            os.setsid()  # leaves the run's process group and session
            if os.fork() == 0:
                {PID_MARK}
                time.sleep(1000)
            os._exit(0)
        time.sleep(0.3)
        """
    )
    result, _ = run(pool, code)
    assert result.status == "passed", result
    assert len(marked_pids(result.output, "PID")) == 1
    assert_no_leftovers(pool, result)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("stream", ["stdout", "stderr"])
@pytest.mark.parametrize("newline", [True, False], ids=["lines", "no-newline"])
def test_printing_a_gigabyte_is_cut_off(pool, stream, newline):
    chunk = '"x" * 1023 + "\\n"' if newline else '"x" * 1024'
    code = PGID + f"import sys\nfor _ in range(2**20):\n    sys.{stream}.write({chunk})\n"
    result, wall = run(pool, code)
    assert result.status == "output_limit", result
    assert result.truncated
    assert len(result.output.encode()) <= 64 * 1024
    assert result.output.startswith("PGID ")
    assert wall < 3
    assert_no_leftovers(pool, result)


@pytest.mark.timeout(30)
def test_file_size_limit_inside_the_temp_dir(pool):
    result, _ = run(pool, "with open('big.bin', 'wb') as f:\n    f.write(b'x' * (100 * 2**20))\n")
    assert result.status == "failed", result
    assert "File too large" in result.message


@pytest.mark.timeout(30)
def test_runs_in_a_fresh_temp_dir_that_is_removed(pool):
    code = "import os\nprint('CWD', os.getcwd())\nassert os.listdir('.') == []\nopen('left.txt', 'w').write('x')\n"
    first, _ = run(pool, code)
    second, _ = run(pool, code)
    assert first.status == second.status == "passed", (first, second)
    first_dir = first.output.split()[1]
    assert first_dir != second.output.split()[1]
    assert not os.path.exists(first_dir)


@pytest.mark.timeout(30)
def test_segfault_is_crashed_with_traceback(pool):
    result, _ = run(pool, PGID + "import ctypes\nctypes.string_at(0)\n")
    assert result.status == "crashed", result
    assert result.signal == "SIGSEGV" and result.message == "SIGSEGV"
    assert "Segmentation fault" in result.output
    assert 'File "<snippet>", line 3' in result.output  # faulthandler's traceback
    assert_no_leftovers(pool, result)


@pytest.mark.timeout(30)
def test_abort_is_crashed(pool):
    result, _ = run(pool, "import os\nos.abort()\n")
    assert result.status == "crashed", result
    assert result.signal == "SIGABRT"
    assert "Aborted" in result.output


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("code", "status", "exit_code", "message"),
    [
        ("import sys\nsys.exit(3)\n", "failed", 3, "exit code 3"),
        ("import sys\nsys.exit(0)\n", "passed", 0, None),
        ("import sys\nsys.exit()\n", "passed", 0, None),
        ("import sys\nsys.exit('bad input')\n", "failed", 1, "exit code 1: bad input"),
        # os._exit skips the report: the run did not finish its code, so it never passes.
        (
            "import os\nos._exit(4)\n",
            "failed",
            4,
            "the snippet's process exited before its code finished (exit code 4, no report)",
        ),
        (
            "import os\nos._exit(0)\n",
            "failed",
            0,
            "the snippet's process exited before its code finished (exit code 0, no report)",
        ),
    ],
)
def test_exit_codes(pool, code, status, exit_code, message):
    result, _ = run(pool, code)
    assert (result.status, result.exit_code, result.message) == (status, exit_code, message), result


@pytest.mark.timeout(30)
def test_killing_the_worker_leaves_pool_and_caller_alive(pool):
    result, _ = run(pool, PGID + "os.kill(os.getppid(), 9)\nimport time\ntime.sleep(1)\n")
    # With Landlock signal scoping the kill is refused (failed, PermissionError); without it the
    # worker dies and the run is reported as crashed. Either way the caller and the pool go on.
    assert result.status in {"failed", "crashed"}, result
    if result.status == "failed":
        assert result.message.startswith("PermissionError")
    else:
        assert "worker process died" in result.message
    for pgid in marked_pids(result.output, "PGID"):
        assert processes_in_group(pgid) == []
    after, _ = run(pool, "assert 1 + 1 == 2\n")
    assert after.status == "passed", after


@pytest.mark.timeout(30)
def test_killing_its_own_group(pool):
    result, _ = run(pool, PGID + "import time\nif os.fork() == 0:\n    time.sleep(100)\nos.killpg(0, 9)\n")
    assert result.status == "crashed", result
    assert result.signal == "SIGKILL"
    assert_no_leftovers(pool, result)
    after, _ = run(pool, "assert True\n")
    assert after.status == "passed"


@pytest.mark.timeout(30)
def test_outside_processes_cannot_be_signalled_with_landlock(pool):
    if not isolation_report()["landlock_signal_scope"]:
        pytest.skip("Landlock ABI >= 6 (signal scoping) is not available on this kernel")
    # Signal 0 only checks permission, so nothing is harmed if the restriction were missing. Inside
    # bubblewrap this test's pid does not exist in the run's PID namespace (ProcessLookupError).
    code = f"import os\nfor pid in (1, os.getppid(), {os.getpid()}):\n    try:\n        os.kill(pid, 0)\n        print('REACHED', pid)\n    except (PermissionError, ProcessLookupError):\n        print('UNREACHABLE', pid)\n"
    result, _ = run(pool, code)
    assert result.status == "passed", result
    assert "REACHED" not in result.output
    assert result.output.count("UNREACHABLE") == 3


@pytest.mark.timeout(30)
def test_ignoring_sigxcpu_still_hits_the_hard_limit(pool):
    code = PGID + "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n"
    result, wall = run(pool, code, limits=Limits(cpu_s=1, wall_s=6))
    assert result.status == "cpu_limit", result
    assert result.signal == "SIGKILL"
    assert wall < 6
    assert_no_leftovers(pool, result)


@pytest.mark.timeout(30)
def test_non_utf8_output_is_replaced(pool):
    result, _ = run(pool, "import sys\nsys.stdout.buffer.write(b'caf\\xe9 \\xff\\xfe ok\\n')\nprint('\\udcff')\n")
    assert result.status == "passed", result
    assert result.output.startswith("caf\ufffd \ufffd\ufffd ok\n")


DATALOADER = textwrap.dedent(
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    data = TensorDataset(torch.arange(40.0).reshape(20, 2))
    total = sum(batch[0].sum() for batch in DataLoader(data, batch_size=4, num_workers=2, timeout=5))
    assert total.item() == sum(range(40)), total
    print("ok")
    """
)
MP_POOL = textwrap.dedent(
    """
    import multiprocessing as mp

    def square(x):
        return x * x

    with mp.Pool(2) as workers:
        assert workers.map(square, range(5)) == [0, 1, 4, 9, 16]
    print("ok")
    """
)


@pytest.mark.timeout(60)
def test_dataloader_workers_inside_bubblewrap(bwrap_pool):
    result, _ = run(bwrap_pool, DATALOADER, limits=Limits(cpu_s=10, wall_s=30))
    assert result.status == "passed", result
    assert result.output == "ok\n"
    assert_no_leftovers(bwrap_pool, result)


@pytest.mark.timeout(60)
def test_dataloader_workers_on_the_fallback_fail_and_say_why(fallback_pool):
    # Passing tensors between processes needs a UNIX socket, which the fallback refuses (a socket
    # file of the user's could be reached): the run fails, with the reason, instead of passing.
    result, _ = run(fallback_pool, DATALOADER, limits=Limits(cpu_s=10, wall_s=30))
    assert result.status == "failed", result
    assert "PermissionError" in result.output and "Permission denied" in result.output
    assert_no_leftovers(fallback_pool, result)


@pytest.mark.timeout(60)
def test_multiprocessing_pool(layered_pool):
    result, _ = run(layered_pool, MP_POOL, limits=Limits(cpu_s=10, wall_s=30))
    assert result.status == "passed", result
    assert result.output == "ok\n"
    assert_no_leftovers(layered_pool, result)


@pytest.mark.timeout(30)
def test_forked_process_falling_off_the_end_does_not_report(pool):
    code = "import os\npid = os.fork()\nif pid:\n    _, status = os.waitpid(pid, 0)\n    assert status == 0, status\n"
    result, _ = run(pool, code)
    assert result.status == "passed", result
    assert_no_leftovers(pool, result)
