"""Benchmark: full load, no-op sync and search over N generated entries (default 10,000).

Each figure is printed beside a baseline measured in the same run, because this machine is noisy:
- full load vs plain `yaml.load(..., Loader=yaml.CSafeLoader)` of the same files;
- search vs a plain `SELECT count(*)` round trip on the same database.
Budgets, so that starting kb and typing a search feel instant: no-op sync < 150 ms, full load < 3 s, search p95 < 20 ms.

    python bench/sync.py [--entries 10000]
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from kb.config import Settings
from kb.schema import CATEGORIES
from kb.service import KnowledgeBase

# Topic words (the ones queried) are rare, as in a real glossary; the rest of the text is drawn
# Zipf-like from 4,000 pseudo-words so that term frequencies look like prose, not a 20-word loop.
WORDS_EN = (
    "gradient attention kernel tensor softmax residual entropy diffusion latent token encoder decoder "
    "window patch norm variance bias weight layer pooling stride dilation"
).split()
WORDS_ZH = (
    "注意力",
    "卷积",
    "梯度",
    "掩码",
    "量化",
    "归一化",
    "残差",
    "扩散",
    "潜在",
    "编码器",
    "解码器",
    "窗口",
    "采样",
    "激活",
    "损失",
    "优化器",
    "张量",
    "批量",
    "池化",
    "步长",
    "填充",
    "嵌入",
    "词元",
    "对齐",
    "蒸馏",
    "剪枝",
    "检索",
    "生成",
    "判别器",
    "生成器",
    "变分",
    "先验",
    "后验",
    "似然",
    "熵",
    "散度",
    "度量",
    "精度",
    "召回",
    "插值",
    "滤波",
    "边缘",
    "深度",
    "法线",
    "姿态",
    "分割",
    "检测",
    "跟踪",
    "配准",
    "融合",
    "去噪",
    "超分",
)
_SYLLABLES = "ka ri to ne mu sa lo vi de pa zu ho me ti ra no ke fu be si".split()
FILLER = sorted({"".join(random.Random(n).choice(_SYLLABLES) for _ in range(3)) for n in range(4000)})
ZIPF_WEIGHTS = [1 / (rank + 1) for rank in range(len(FILLER))]


def entry_text(i: int, rng: random.Random) -> str:
    en = " ".join(rng.choice(WORDS_EN) for _ in range(2)) + " " + rng.choice(FILLER)
    zh = "".join(rng.choice(WORDS_ZH) for _ in range(2))
    words = rng.choices(FILLER, weights=ZIPF_WEIGHTS, k=60)
    words[rng.randrange(60)] = rng.choice(WORDS_EN)
    body = " ".join(words)
    return f"""id: concept-{i}
title:
  en: {en.title()} {i}
  zh: {zh}{i}
summary:
  en: A generated concept about {en}.
  zh: 关于{zh}的生成概念。
category: {CATEGORIES[i % len(CATEGORIES)]}
tags: [generated, {rng.choice(WORDS_EN)}]
aliases: [{en} alias {i}]
definition: |
  {body}
formulas:
  - name: rule {i}
    latex: 'y = \\sum_i w_i x_i + b'
    where: {{y: output, w: weight, x: input, b: bias}}
snippet:
  requires: [numpy]
  code: |
    import numpy as np
    x = np.arange({i % 50 + 1})
    assert x.sum() == {sum(range(i % 50 + 1))}
cards:
  - type: basic
    id: q
    front: What is {en}?
    back: {body[:80]}
"""


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        deck = Path(tmp) / "deck"
        for i in range(args.entries):
            path = deck / CATEGORIES[i % len(CATEGORIES)] / f"concept-{i}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(entry_text(i, rng), encoding="utf-8")
        files = sorted(deck.rglob("*.yaml"))

        baseline_load = timed(lambda: [yaml.load(f.read_bytes(), Loader=yaml.CSafeLoader) for f in files])
        settings = Settings(home=Path(tmp) / "home", bundled_content=deck)
        with KnowledgeBase(settings, clock=lambda: datetime.now(timezone.utc)) as kb:
            _ = kb.engine  # open (and create) the database outside the timing
            start = time.perf_counter()
            full_report = kb.sync()
            full = time.perf_counter() - start
            noop = [timed(kb.sync) for _ in range(5)]
            # One edited file: stat everything, parse one, write one transaction.
            files[0].write_text(entry_text(0, rng).replace("A generated", "An edited"), encoding="utf-8")
            one_edit = timed(kb.sync)

            def raw_roundtrip():
                from kb.store.engine import read

                with read(kb.engine) as conn:
                    conn.exec_driver_sql("SELECT count(*) FROM concept").scalar()

            base_q = [timed(raw_roundtrip) for _ in range(args.queries)]
            results = {}
            for label, pool in (
                (
                    "English (>=3 chars, FTS5 trigram)",
                    ["attention", "softmax", "kernel tensor", "diffusion", "residual"],
                ),
                ("Chinese 3+ chars (FTS5 trigram)", ["注意力", "归一化", "编码器", "解码器"]),
                ("Chinese 2 chars (word index)", ["卷积", "梯度", "掩码", "量化"]),
            ):
                times = [timed(functools.partial(kb.search, pool[i % len(pool)])) for i in range(args.queries)]
                results[label] = times

    print(f"entries: {args.entries:,}")
    print(
        f"full load:        {full:7.2f} s   baseline yaml.load CSafeLoader {baseline_load:5.2f} s   "
        f"ratio {full / baseline_load:4.2f}x   budget 3 s"
    )
    print("  of which: " + ", ".join(f"{k} {v:.2f} s" for k, v in full_report.seconds.items()))
    print(f"no-op sync:       {statistics.median(noop) * 1e3:7.1f} ms  (median of 5)   budget 150 ms")
    print(f"one file edited:  {one_edit * 1e3:7.1f} ms")
    print(f"query round trip baseline: p50 {statistics.median(base_q) * 1e3:.2f} ms")
    for label, times in results.items():
        p50, p95 = statistics.median(times) * 1e3, percentile(times, 0.95) * 1e3
        print(
            f"search {label}: p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  "
            f"(p95 {p95 / (statistics.median(base_q) * 1e3):.0f}x baseline)   budget p95 20 ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
