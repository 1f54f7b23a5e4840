"""The fine-tuned theme model: training time and memory, reproducibility, and model selection by cross-validation.

    python -m benchmarks.bench_finetune                  # train as `watcher train` does: time, memory, OOF scores
    python -m benchmarks.bench_finetune --repeat 2       # ... twice with the same seed: same model, same scores?
    python -m benchmarks.bench_finetune --grid           # model selection: out-of-fold scores of other settings

Training data: the sets `watcher train` uses by default (every labelled set of tests/fixtures/gold). Held-out figures
are not measured here: ``benchmarks/bench_loso.py`` trains without each labelled set and each source in turn and
measures the one left out. ``--grid`` trains each candidate setting in 5 folds of the training data and prints its
out-of-fold macro-F1 (model alone and hybrid).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.decide.themes import load_themes
from classifiers.engine import tuning
from classifiers.engine.convert import MODEL_DIR_NAME
from classifiers.engine.e5 import default_cache_dir
from classifiers.lab import finetune
from classifiers.lab.evaluation import load_gold
from classifiers.lab.training import labels, rule_matrix
from watcher.cli.themes import TRAINING_GOLD

GOLD = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "gold"
TRAINING = TRAINING_GOLD
GRID: tuple[dict[str, Any], ...] = ({}, {"epochs": 10}, {"top_layers": 4}, {"rank": 16, "alpha": 32.0},
                                   {"lr": 5e-4, "epochs": 8})


def train_once(model_dir: Path, seed: int) -> finetune.Trained:
    examples = [e for name in TRAINING for e in load_gold(GOLD / name)]
    start = time.perf_counter()
    trained = finetune.train(examples, load_themes(), model_dir, tuning.TuneSettings(seed=seed),
                             log=lambda line: print(f"  {line}", flush=True))
    print(f"trained on {len(examples)} items in {time.perf_counter() - start:.0f} s ("
          + ", ".join(f"{k} {v:.0f} s" for k, v in trained.seconds.items())
          + f"); peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB", flush=True)
    for line in finetune.summary(trained, load_themes().ids):
        print(f"  {line}")
    return trained


def grid(model_dir: Path, candidates: Sequence[dict[str, Any]] = GRID) -> None:
    """Out-of-fold macro-F1 of the model alone and of the hybrid (thresholds 0) for each setting of ``candidates``."""
    examples = [e for name in TRAINING for e in load_gold(GOLD / name)]
    taxonomy = load_themes()
    Y, rules = labels(examples, taxonomy.ids), rule_matrix(examples, taxonomy)
    for changes in candidates:
        settings = tuning.TuneSettings(**changes)
        start = time.perf_counter()
        frozen = tuning.Frozen(model_dir, settings)
        states = frozen.states([e.item.classification_text() for e in examples])
        alone, hybrid = finetune.out_of_fold(frozen, states, Y, rules, taxonomy, settings, 5)
        print(f"{json.dumps(changes)}: model {macro(alone > 0, Y):.3f}, hybrid {macro(hybrid > 0, Y):.3f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)


def macro(pred: np.ndarray, Y: np.ndarray) -> float:
    scores = [2 * float((pred[:, j] & (Y[:, j] == 1)).sum()) / float(pred[:, j].sum() + Y[:, j].sum())
              for j in np.flatnonzero(Y.sum(axis=0))]
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="train this many times with the same seed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", nargs="?", const="", default=None, metavar="JSON",
                        help="model selection instead: out-of-fold scores per setting (default: GRID; or a JSON list "
                             "of TuneSettings changes)")
    parser.add_argument("--save", type=Path, default=None, help="write the (last) trained head here")
    args = parser.parse_args()
    model_dir = default_cache_dir() / MODEL_DIR_NAME
    if args.grid is not None:
        grid(model_dir, json.loads(args.grid) if args.grid else GRID)
        return
    versions = []
    for _ in range(args.repeat):
        trained = train_once(model_dir, args.seed)
        versions.append((trained.head.version, trained.oof.tobytes()))
    if args.repeat > 1:
        same = all(v == versions[0] for v in versions)
        print(f"{args.repeat} trainings with seed {args.seed}: {'identical' if same else 'DIFFERENT'} models "
              f"({', '.join(v for v, _ in versions)})")
    if args.save:
        trained.head.save(args.save)
        print(f"saved {trained.head.version} -> {args.save}")


if __name__ == "__main__":
    main()
