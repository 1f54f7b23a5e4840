"""Throughput of the whole theme classifier (rules + model) on real items, per CPU path, against a naive pipeline.

    python -m benchmarks.bench_classify                       # both paths, 400 items (naive: 100)
    python -m benchmarks.bench_classify --paths avx2 --n 200 --naive-n 60

Items are real (title + summary) from tests/fixtures/gold/dev.jsonl, judged with the gold format's source profiles.
Two CPU paths, each in fresh child processes (honest peak memory, ``os.wait4``):

- ``native``: this CPU as it is, ``model_precision = "auto"`` (bfloat16 where the CPU does it natively);
- ``avx2``: oneDNN, ATen and MKL capped at AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
  MKL_ENABLE_INSTRUCTIONS=AVX2``) and ``model_precision = "float32"`` forced: the class of CPU most users own.

On each path three settings are timed after loading (load time shown apart):

- ``naive``: plain fp32 transformers (AutoModel/AutoTokenizer), one item at a time, every item embedded, then the
  hybrid head and rules: the baseline of the ratio;
- ``all-items``: the tuned embedder on that path (sorted batches), every item embedded;
- ``classifier``: what ``watcher classify`` runs: the tuned embedder only where the rules leave a decision open.

Ratios are to ``naive`` on the same path in the same run. The machine may be shared: each row shows the 1-minute
load average seen around it (re-run when it is high).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._util import emit, machine, print_table, python_module, run_child, verdict

GOLD = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "gold" / "dev.jsonl"
AVX2_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
PATHS: dict[str, dict[str, str]] = {"native": {"WATCHER_BENCH_PRECISION": "auto"},
                                    "avx2": {**AVX2_ENV, "WATCHER_BENCH_PRECISION": "float32"}}
SETTINGS = ("naive", "all-items", "classifier")
GOALS = {"native": 150.0, "avx2": 60.0}


def load_items(n: int) -> list[Any]:
    from classifiers.lab.evaluation import load_gold

    return [e.item for e in load_gold(GOLD)][:n]


def build(setting: str, precision: str) -> tuple[Any, str]:
    """The classifier of ``setting`` and the CPU capability line."""
    from classifiers.decide.head import Head
    from classifiers.decide.hybrid import HybridClassifier
    from classifiers.engine import capability
    from classifiers.engine.e5 import FastE5Embedder, TransformersEmbedder, default_model_dir
    from classifiers.lab.evaluation import GOLD_SOURCES

    model_dir = default_model_dir()
    head = Head.load()  # the shipped, fine-tuned model: its adapter is merged into either embedder
    if setting == "naive":
        embedder: Any = TransformersEmbedder(model_dir, dtype="float32", sort=False, adapter=head.adapter)
    else:
        embedder = FastE5Embedder(model_dir, precision=precision, adapter=head.adapter)  # type: ignore[arg-type]
    hybrid = HybridClassifier(embedder_factory=lambda: embedder, head=head, model_name="e5-small",
                              profiles=GOLD_SOURCES, consult_all=setting != "classifier")
    hybrid.prototypes()
    return hybrid, capability.detect().line()


def classify_all(hybrid: Any, items: Sequence[Any], setting: str) -> list[Any]:
    if setting == "naive":  # one item at a time: the batch-of-one pipeline
        return [r for item in items for r in hybrid.classify([item])]
    return [r for start in range(0, len(items), 64) for r in hybrid.classify(items[start : start + 64])]


def worker(setting: str, n: int) -> None:
    precision = os.environ.get("WATCHER_BENCH_PRECISION", "auto")
    load = os.getloadavg()[0]
    start = time.perf_counter()
    hybrid, cpu = build(setting, precision)
    load_s = time.perf_counter() - start
    items = load_items(n)
    classify_all(hybrid, items[:8], setting)  # warm-up
    start = time.perf_counter()
    results = classify_all(hybrid, items, setting)
    seconds = time.perf_counter() - start
    emit({"setting": setting, "items": len(items), "seconds": seconds, "load_s": load_s, "cpu": cpu,
          "version": hybrid.full_version, "consulted": sum(r.model.startswith("consulted") for r in results),
          "themes": [r.themes for r in results], "degraded": hybrid.degraded or "",
          "loadavg": max(load, os.getloadavg()[0])})


def run_path(path: str, n: int, naive_n: int) -> list[dict[str, Any]]:
    rows = []
    for setting in SETTINGS:
        count = naive_n if setting == "naive" else n
        child = run_child(python_module("benchmarks.bench_classify", "--worker", setting, "--n", str(count)),
                          env=PATHS[path])
        rows.append({**child.result, "path": path, "peak_mb": child.peak_mb})
    return rows


def report(path: str, rows: list[dict[str, Any]]) -> None:
    by = {r["setting"]: r for r in rows}
    naive_rate = by["naive"]["items"] / by["naive"]["seconds"]
    print(f"\n{path}: {by['classifier']['cpu']}")
    table = []
    for r in rows:
        rate = r["items"] / r["seconds"]
        table.append([r["setting"], f"{rate:.1f}", f"{rate / naive_rate:.2f}", f"{r['peak_mb']:.0f}",
                      f"{r['load_s']:.1f}", f"{r['consulted']}/{r['items']}", f"{r['loadavg']:.1f}", r["version"]])
    print_table(f"whole classifier, path {path}", ["setting", "items/s", "x naive", "peak RSS MB", "load s",
                                                   "model consulted", "load avg", "version"], table)
    same = by["classifier"]["themes"] == by["all-items"]["themes"][: len(by["classifier"]["themes"])]
    rate = by["classifier"]["items"] / by["classifier"]["seconds"]
    verdict(f"{path}: classifier >= 5x naive", f"{rate / naive_rate:.2f}x", rate >= 5 * naive_rate)
    verdict(f"{path}: classifier >= {GOALS[path]:.0f} items/s", f"{rate:.1f} items/s", rate >= GOALS[path])
    verdict(f"{path}: peak RSS <= 700 MB", f"{by['classifier']['peak_mb']:.0f} MB", by["classifier"]["peak_mb"] <= 700)
    verdict(f"{path}: gating gives the themes of the model on every item", "identical" if same else "DIFFERENT", same)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", default="native,avx2", help="comma-separated: native, avx2")
    parser.add_argument("--n", type=int, default=400, help="items for the tuned settings")
    parser.add_argument("--naive-n", type=int, default=100, help="items for the naive batch-of-one pipeline")
    parser.add_argument("--quick", action="store_true", help="--n 120 --naive-n 40")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.n)
        return
    if args.quick:
        args.n, args.naive_n = 120, 40
    print(f"{machine()}; items: {GOLD} (n={args.n}, naive n={args.naive_n})")
    results = {}
    for path in [p for p in args.paths.split(",") if p]:
        results[path] = run_path(path, args.n, args.naive_n)
        report(path, results[path])
    print(f"\nload average after: {os.getloadavg()}")
    print(json.dumps({p: [{k: v for k, v in r.items() if k != "themes"} for r in rows]
                      for p, rows in results.items()}))


if __name__ == "__main__":
    main()
