"""Benchmark of `kb verify`'s runner: a fresh interpreter per snippet versus the warm worker pool.

Usage: python bench/verify.py [--no-baseline] [--content DIR]

Times the same snippets three ways, each from cold: one `python -c` per snippet in sequence (the
baseline, which pays for `import torch` every time), WorkerPool(jobs=1) and WorkerPool(jobs=2), both
including the pool's start-up. Then the latency of a single snippet on an already warm pool (median
of 20). The snippets are thirty generated torch checks plus every `snippet.code` found under
content/**/*.yaml.

Then the sandbox's cost, per layer (bubblewrap where it works, and the fallback): a worker's start-up
and a trivial snippet's latency on a warm worker; and what confining one run adds to it, as the
median time of a fork that confines itself (kb.runner.sandbox.confine) minus that of a fork that
does not, measured in this process in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from kb.runner import Limits, RunSpec, WorkerPool  # noqa: E402

# What a pool run gives every snippet, recreated for the one-interpreter-per-snippet baseline.
PREAMBLE = "import numpy, torch, random\ntorch.manual_seed(0); random.seed(0)\ndevice = torch.device('cpu'); rng = numpy.random.default_rng(0)\n"

TEMPLATES = [
    # matmul against an explicit sum of products
    """
    import torch
    a, b = torch.randn({n}, {m}), torch.randn({m}, {k})
    manual = (a[:, :, None] * b[None, :, :]).sum(1)
    assert torch.allclose(a @ b, manual, atol=1e-4)
    """,
    # softmax: rows sum to one and match exp / sum
    """
    import torch
    x = torch.randn({n}, {m}, device=device)
    p = torch.softmax(x, dim=-1)
    assert torch.allclose(p.sum(-1), torch.ones({n}), atol=1e-6), "rows must sum to 1"
    assert torch.allclose(p, x.exp() / x.exp().sum(-1, keepdim=True), atol=1e-6)
    """,
    # conv2d against unfold + matmul
    """
    import torch
    import torch.nn.functional as F
    x, w = torch.randn(2, 3, {n}, {n}), torch.randn(4, 3, 3, 3)
    out = F.conv2d(x, w, padding=1)
    cols = F.unfold(x, 3, padding=1)
    manual = (w.view(4, -1) @ cols).view(2, 4, {n}, {n})
    assert torch.allclose(out, manual, atol=1e-4)
    """,
    # layer norm against mean and variance
    """
    import torch
    x = torch.randn({n}, {m})
    ln = torch.nn.LayerNorm({m}, elementwise_affine=False)
    manual = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
    assert torch.allclose(ln(x), manual, atol=1e-5)
    """,
    # cross-entropy against -log_softmax at the target
    """
    import torch
    import torch.nn.functional as F
    logits, target = torch.randn({n}, {k}), torch.randint(0, {k}, ({n},))
    manual = -F.log_softmax(logits, -1)[torch.arange({n}), target].mean()
    assert torch.allclose(F.cross_entropy(logits, target), manual, atol=1e-6)
    """,
    # scaled dot-product attention against the formula
    """
    import math, torch
    import torch.nn.functional as F
    q, k, v = (torch.randn(2, {n}, {m}) for _ in range(3))
    manual = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt({m}), -1) @ v
    assert torch.allclose(F.scaled_dot_product_attention(q, k, v), manual, atol=1e-5)
    """,
]
SIZES = [(4, 8, 3), (16, 32, 5), (32, 16, 7), (8, 64, 4), (64, 8, 10)]


def generated_snippets() -> list[tuple[str, str]]:
    snippets = []
    for t, template in enumerate(TEMPLATES):
        for n, m, k in SIZES:
            snippets.append((f"gen-{t}-{n}x{m}x{k}", textwrap.dedent(template).format(n=n, m=m, k=k)))
    return snippets


def content_snippets(content_dir: Path) -> list[tuple[str, str]]:
    """Every `snippet.code` under content/**/*.yaml that may run on the CPU."""
    if not content_dir.is_dir():
        return []
    import yaml

    found: list[tuple[str, str]] = []

    def walk(node: object, path: Path) -> None:
        if isinstance(node, dict):
            snippet = node.get("snippet")
            if isinstance(snippet, dict) and isinstance(snippet.get("code"), str):
                if "cpu" in (snippet.get("devices") or ["cpu"]):
                    found.append((f"{path.relative_to(content_dir)}:{node.get('id', len(found))}", snippet["code"]))
            for value in node.values():
                walk(value, path)
        elif isinstance(node, list):
            for value in node:
                walk(value, path)

    for path in sorted(content_dir.rglob("*.yaml")):
        try:
            with open(path, "rb") as f:
                walk(yaml.load(f, Loader=yaml.CSafeLoader), path)
        except (OSError, yaml.YAMLError) as exc:
            print(f"skipped {path}: {exc}", file=sys.stderr)
    return found


def baseline(snippets: list[tuple[str, str]]) -> tuple[float, int]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    passed = 0
    started = time.perf_counter()
    for _, code in snippets:
        done = subprocess.run([sys.executable, "-c", PREAMBLE + code], env=env, capture_output=True, timeout=120)
        passed += done.returncode == 0
    return time.perf_counter() - started, passed


def pooled(snippets: list[tuple[str, str]], jobs: int) -> tuple[float, int]:
    specs = [RunSpec(key, code, limits=Limits(wall_s=60)) for key, code in snippets]
    started = time.perf_counter()
    with WorkerPool(jobs=jobs) as pool:
        results = pool.run_many(specs)
    elapsed = time.perf_counter() - started
    for result in results:
        if result.status != "passed":
            print(f"  {result.key}: {result.status} {result.message}", file=sys.stderr)
    return elapsed, sum(r.status == "passed" for r in results)


def warm_latency(code: str, repeats: int = 20, bubblewrap: bool | None = None) -> tuple[float, float]:
    with WorkerPool(jobs=1, bubblewrap=bubblewrap) as pool:
        pool.start(wait=True)
        pool.run(RunSpec("warm-up", code))
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            result = pool.run(RunSpec("warm", code))
            times.append(time.perf_counter() - started)
            assert result.status == "passed", result
    return statistics.median(times), min(times)


def worker_start(bubblewrap: bool, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        with WorkerPool(jobs=1, bubblewrap=bubblewrap) as pool:
            pool.start(wait=True)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def fork_time(confine: bool, inside_bubblewrap: bool, repeats: int = 60) -> float:
    """Median seconds from fork to the child's exit, the child confining itself first or not."""
    import tempfile

    from kb.runner import sandbox

    times = []
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(repeats):
            started = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                if confine:
                    sandbox.confine(workdir, inside_bubblewrap=inside_bubblewrap)
                os._exit(0)
            os.waitpid(pid, 0)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def sandbox_costs() -> None:
    from kb.runner import bwrap

    layers = [("fallback", False)]
    if bwrap.usable():
        layers.insert(0, ("bubblewrap", True))
    else:
        print(f"bubblewrap not measured: {bwrap.reason_unusable()}")
    plain = fork_time(confine=False, inside_bubblewrap=False)
    for name, use_bwrap in layers:
        start = worker_start(use_bwrap)
        median, best = warm_latency("pass\n", repeats=40, bubblewrap=use_bwrap)
        added = fork_time(confine=True, inside_bubblewrap=use_bwrap) - plain
        print(
            f"{name + ' layer':45s} worker start-up {start:5.2f} s; `pass` on a warm worker {median * 1000:5.1f} ms "
            f"(best {best * 1000:.1f}); confine() adds {added * 1000:.2f} ms a run"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-baseline", action="store_true", help="skip the slow one-interpreter-per-snippet run")
    parser.add_argument("--content", type=Path, default=REPO_ROOT / "content")
    parser.add_argument("--sandbox-only", action="store_true", help="only the sandbox's cost per layer")
    args = parser.parse_args()
    if args.sandbox_only:
        sandbox_costs()
        return

    snippets = generated_snippets()
    extra = content_snippets(args.content)
    snippets += extra
    print(
        f"{len(snippets)} snippets ({len(snippets) - len(extra)} generated, {len(extra)} from {args.content}); "
        f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}"
    )

    rows: list[tuple[str, float, int]] = []
    base = None
    if not args.no_baseline:
        base, ok = baseline(snippets)
        rows.append(("fresh `python -c` per snippet (baseline)", base, ok))
    for jobs in (1, 2):
        elapsed, ok = pooled(snippets, jobs)
        rows.append((f"WorkerPool(jobs={jobs}), start-up included", elapsed, ok))

    for label, elapsed, ok in rows:
        ratio = f"  {base / elapsed:5.1f}x faster than the baseline" if base and elapsed != base else ""
        print(f"{label:45s} {elapsed:7.2f} s  {ok}/{len(snippets)} passed{ratio}")
    median, best = warm_latency(snippets[0][1])
    per_snippet = (
        f"  (baseline per snippet {base / len(snippets) * 1000:.0f} ms, {base / len(snippets) / median:.0f}x)"
        if base
        else ""
    )
    print(
        f"{'single snippet on a warm pool (median of 20)':45s} {median * 1000:7.1f} ms (best {best * 1000:.1f} ms){per_snippet}"
    )
    sandbox_costs()


if __name__ == "__main__":
    main()
