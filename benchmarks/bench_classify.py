"""Throughput, memory and quality of the whole theme classifier per model path, natively and under CPU caps.

    python -m benchmarks.bench_classify                        # every cap and path, all 2,136 gold items
    python -m benchmarks.bench_classify --caps avx2 --paths fp32,int8 --n 600 --naive-n 100

Items: the distinct real items of every gold set (tests/fixtures/gold/*.jsonl, title + summary, judged with the
gold format's source profiles), so that the same run gives the speed and the quality (macro-F1 against the gold
labels, the figure of ``classify --eval``) of each path.

Each (cap, path) runs in a fresh child process whose environment sets the cap **before torch is imported**:

- ``native``: this CPU as it is;
- ``avx512bf16``: ``ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 ATEN_CPU_CAPABILITY=avx512 MKL_ENABLE_INSTRUCTIONS=AVX512``
  (AVX-512 with BF16, no AMX: e.g. AMD EPYC Zen 4);
- ``avx2``: ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2`` (laptops, older
  servers).

A cap limits instructions, not the hardware: the ratio to the naive pipeline on the same cap is what travels. The
caps bind oneDNN, ATen and MKL only, which is why the int8 path uses oneDNN's quantised engine (FBGEMM would pick
its kernels from the CPU's own flags): the oneDNN kernels that ran are printed beside each row.

Paths: ``naive`` (plain fp32 transformers, one item at a time, every item embedded, then rules + head: the baseline),
``fp32``, ``bf16`` and ``int8`` (``FastE5Embedder`` pinned to that precision, gated as ``watcher classify`` runs).
``auto picks`` says what ``model_precision = "auto"`` chooses on that cap. The machine is shared: every child runs
torch on one thread and the table gives **CPU seconds** (``time.process_time``: what the work costs, whatever the
load) and wall seconds (what the load let it have) per item; the ratio is on CPU time.
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

GOLD_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "gold"
CAPS: dict[str, dict[str, str]] = {
    "native": {},
    "avx512bf16": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16", "ATEN_CPU_CAPABILITY": "avx512",
                   "MKL_ENABLE_INSTRUCTIONS": "AVX512"},
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}
PATHS = ("naive", "fp32", "bf16", "int8")
PRECISION = {"fp32": "float32", "bf16": "bfloat16", "int8": "int8"}
TARGET_RATIO, TARGET_MB, TARGET_F1 = 3.0, 700.0, 0.005


def gold_examples(n: int | None = None) -> list[Any]:
    """The distinct (title + summary) labelled items of every gold set, in file order (``n``: every k-th)."""
    from classifiers.lab.evaluation import load_gold

    seen: set[str] = set()
    out = []
    for path in sorted(GOLD_DIR.glob("*.jsonl")):
        for example in load_gold(path):
            text = example.item.classification_text()
            if text not in seen:
                seen.add(text)
                out.append(example)
    return naive_sample(out, n) if n else out  # every k-th: each gold set represented


def naive_sample(examples: Sequence[Any], n: int) -> list[Any]:
    """Every k-th item: the naive pipeline sees the same mix of lengths as the others."""
    step = max(1, len(examples) // max(1, n))
    return list(examples[::step])[:n]


def worker(path: str, n: int, naive_n: int, max_length: int) -> None:
    import torch

    from classifiers.decide.head import Head
    from classifiers.decide.hybrid import HybridClassifier
    from classifiers.engine import capability
    from classifiers.engine.e5 import FastE5Embedder, TransformersEmbedder, default_model_dir
    from classifiers.lab.evaluation import GOLD_SOURCES, score

    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    examples = gold_examples(n)
    if path == "naive":
        examples = naive_sample(examples, naive_n)
    items = [e.item for e in examples]
    head = Head.load()
    found = capability.detect()
    auto = capability.choose("auto", found, capability.onednn_linear(), int8_probe=_int8_probe(),
                             int8_checked=True).precision
    try:
        if path == "naive":
            embedder: Any = TransformersEmbedder(default_model_dir(), dtype="float32", sort=False, adapter=head.adapter)
        else:
            embedder = FastE5Embedder(default_model_dir(), precision=PRECISION[path],  # type: ignore[arg-type]
                                      adapter=head.adapter, max_length=max_length)
    except Exception as exc:  # a path this CPU (or cap) cannot run is a row that says so
        emit({"path": path, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}", "cpu": found.line(),
              "auto": auto})
        return
    chosen = getattr(getattr(embedder, "path", None), "precision", "float32")
    hybrid = HybridClassifier(embedder_factory=lambda: embedder, head=head, model_name="e5-small",
                              profiles=GOLD_SOURCES, consult_all=path == "naive")
    hybrid.prototypes()
    texts = [item.classification_text() for item in items[:16]]
    kernels = capability.onednn_kernels(lambda: embedder.embed(texts, batch_size=1 if path == "naive" else 32))
    cpu, wall = time.process_time(), time.perf_counter()
    if path == "naive":  # one item at a time: the batch-of-one pipeline
        results = [r for item in items for r in hybrid.classify([item])]
    else:
        results = [r for start in range(0, len(items), 64) for r in hybrid.classify(items[start : start + 64])]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    report = score([r.themes for r in results], examples, hybrid.taxonomy.ids)
    emit({"path": path, "ran": chosen, "auto": auto, "items": len(items), "cpu_s": cpu, "wall_s": wall,
          "macro_f1": report.macro_f1, "themes": [sorted(r.themes) for r in results],
          "consulted": sum(r.model.startswith("consulted") for r in results), "version": hybrid.full_version,
          "kernels": {k: v for k, v in kernels.items() if not k.startswith(("eltwise", "softmax", "layer"))},
          "cpu": found.line(), "loadavg": max(load, os.getloadavg()[0]), "degraded": hybrid.degraded or ""})


def _int8_probe() -> Any:
    from classifiers.engine import int8

    return int8.probe


def run(caps: Sequence[str], paths: Sequence[str], n: int, naive_n: int, max_length: int) -> list[dict[str, Any]]:
    rows = []
    for cap in caps:
        for path in paths:
            if cap == "avx2" and path == "bf16":
                rows.append({"cap": cap, "path": path, "error": "no bfloat16 instructions under the AVX2 cap"})
                continue
            args = ["--worker", path, "--n", str(n), "--naive-n", str(naive_n), "--max-length", str(max_length)]
            child = run_child(python_module("benchmarks.bench_classify", *args), env=CAPS[cap], check=False)
            result = child.result or {"path": path, "error": (child.stderr.strip().splitlines() or ["?"])[-1][:160]}
            rows.append({**result, "cap": cap, "peak_mb": child.peak_mb})
            print(f"  measured {cap} {path}: " + (result.get("error") or
                  f"{result['items'] / result['cpu_s']:.1f} items/CPU-s"), flush=True)
    return rows


def report(rows: list[dict[str, Any]]) -> None:
    cpu = next((r["cpu"] for r in rows if r.get("cpu")), "?")
    print(f"\nCPU: {cpu}\n{machine()}")
    table = []
    for cap in dict.fromkeys(r["cap"] for r in rows):
        mine = {r["path"]: r for r in rows if r["cap"] == cap}
        naive, fp32 = mine.get("naive", {}), mine.get("fp32", {})
        for path, r in mine.items():
            if r.get("error"):
                table.append([cap, path, r.get("auto", ""), "", "", "", "", "", "", "", f"not measured: {r['error']}", ""])
                continue
            rate, wall = r["items"] / r["cpu_s"], r["items"] / r["wall_s"]
            base = naive["items"] / naive["cpu_s"] if naive.get("cpu_s") else 0.0
            base_wall = naive["items"] / naive["wall_s"] if naive.get("wall_s") else 0.0
            same = ""
            if fp32.get("themes") and path not in ("naive", "fp32"):
                pairs = list(zip(r["themes"], fp32["themes"], strict=False))
                same = f"{sum(a == b for a, b in pairs)}/{len(pairs)}"
            delta = f" ({r['macro_f1'] - fp32['macro_f1']:+.4f})" if fp32.get("macro_f1") is not None and path != "naive" else ""
            ran = r["ran"] if r["ran"] == PRECISION.get(path, r["ran"]) or path == "naive" else f"{r['ran']} (fallback)"
            kernels = " ".join(sorted(r["kernels"])) or "(none: ATen/MKL)"
            table.append([cap, path if path == "naive" else f"{path} ran {ran}", r["auto"],
                          f"{base:.1f} ({base_wall:.1f})" if path != "naive" else f"{rate:.1f} ({wall:.1f})",
                          f"{rate:.1f} ({wall:.1f})", f"{rate / base:.2f}x ({wall / base_wall:.2f}x)" if base else "",
                          f"{r['peak_mb']:.0f}", f"{r['macro_f1']:.4f}{delta}", same, f"{r['consulted']}/{r['items']}",
                          kernels, f"{r['loadavg']:.1f}"])
    flags = cpu.split("flags:")[-1]
    if "amx" not in flags:
        table.append(["amx", "-", "", "", "", "", "", "", "", "", "not measured: this CPU has no AMX", ""])
    if "x86" in cpu:
        table.append(["arm", "-", "", "", "", "", "", "", "", "", "not measured: this CPU is x86", ""])
    print_table("whole classify per cap and path: items per CPU-second, one torch thread (items per wall-second)",
                ["cap", "path", "auto picks", "naive fp32 b=1", "whole classify", "ratio CPU (wall)", "peak RSS MB",
                 "macro-F1 (vs fp32)", "themes = fp32", "model consulted", "oneDNN kernels", "load avg"], table)
    for cap in dict.fromkeys(r["cap"] for r in rows):
        mine = {r["path"]: r for r in rows if r["cap"] == cap and not r.get("error")}
        naive, fp32 = mine.get("naive"), mine.get("fp32")
        best = [r for p, r in mine.items() if p == r.get("auto") or PRECISION.get(p) == r.get("auto")]
        if not naive or not best:
            continue
        r = best[0]
        ratio = (r["items"] / r["cpu_s"]) / (naive["items"] / naive["cpu_s"])
        verdict(f"{cap}: whole classify on the auto path ({r['auto']}) >= {TARGET_RATIO:.0f}x naive (CPU time)",
                f"{ratio:.2f}x", ratio >= TARGET_RATIO)
        verdict(f"{cap}: peak RSS <= {TARGET_MB:.0f} MB", f"{r['peak_mb']:.0f} MB", r["peak_mb"] <= TARGET_MB)
        if fp32:
            delta = r["macro_f1"] - fp32["macro_f1"]
            verdict(f"{cap}: macro-F1 within {TARGET_F1} of fp32", f"{delta:+.4f}", delta >= -TARGET_F1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--caps", default=",".join(CAPS), help=f"comma-separated: {', '.join(CAPS)}")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated: {', '.join(PATHS)}")
    parser.add_argument("--n", type=int, default=0, help="gold items for the tuned paths (0: all 2,136)")
    parser.add_argument("--naive-n", type=int, default=150, help="items for the naive batch-of-one pipeline")
    parser.add_argument("--max-length", type=int, default=0, help="tokens per item (0: the product's default)")
    parser.add_argument("--quick", action="store_true", help="--n 300 --naive-n 40")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.max_length:
        from classifiers.engine.e5 import DEFAULT_MAX_LENGTH

        args.max_length = DEFAULT_MAX_LENGTH
    if args.worker:
        worker(args.worker, args.n, args.naive_n, args.max_length)
        return
    if args.quick:
        args.n, args.naive_n = 300, 40
    caps = [c for c in args.caps.split(",") if c]
    paths = [p for p in args.paths.split(",") if p]
    print(f"{machine()}; items: distinct gold items of {GOLD_DIR} (n={args.n or 'all'}, naive n={args.naive_n}), "
          f"max length {args.max_length}")
    rows = run(caps, paths, args.n, args.naive_n, args.max_length)
    report(rows)
    print(f"\nload average after: {os.getloadavg()}")
    print(json.dumps([{k: v for k, v in r.items() if k != "themes"} for r in rows]))


if __name__ == "__main__":
    main()
