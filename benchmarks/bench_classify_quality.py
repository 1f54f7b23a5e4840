"""Cross-validated quality of the theme classifiers on a labelled file (default: the dev set).

    python -m benchmarks.bench_classify_quality [--gold FILE] [--folds 5] [--model e5-small] [--json]

Prints per-theme precision / recall / F1 and macro-F1 for: the keyword baseline, the rules alone, the logistic head
alone, the hybrid (rules + head) and the plain keywords + head (what the model adds where rules are weak), where every trained part (head weights, thresholds, calibration) is fitted on
the training folds only. Embeddings are cached outside the repository (``$TMPDIR/watcher-bench-embeddings``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks._util import verdict
from classifiers.e5 import Embedder, Kind, load_embedder
from classifiers.evaluation import Report, evaluate, load_gold, score
from classifiers.keyword import KeywordClassifier
from classifiers.themes import load_themes
from classifiers.training import cross_validate, prepare

GOLD = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "gold" / "dev.jsonl"


class CachedEmbedder:
    """Any embedder, with its vectors cached on disk by (model version, kind, text)."""

    def __init__(self, inner: Embedder, folder: Path):
        self.inner, self.folder = inner, folder
        self.name, self.version, self.dim = inner.name, inner.version, inner.dim
        folder.mkdir(parents=True, exist_ok=True)

    def embed(self, texts: Sequence[str], *, kind: Kind = "query", batch_size: int = 32) -> np.ndarray:
        keys = [hashlib.sha256(f"{self.version}\0{kind}\0{t}".encode()).hexdigest()[:24] for t in texts]
        missing = [i for i, k in enumerate(keys) if not (self.folder / f"{k}.npy").exists()]
        if missing:
            vecs = self.inner.embed([texts[i] for i in missing], kind=kind, batch_size=batch_size)
            for i, v in zip(missing, vecs, strict=True):
                np.save(self.folder / f"{keys[i]}.npy", v.astype(np.float32))
        return np.stack([np.load(self.folder / f"{k}.npy") for k in keys]).astype(np.float32)


def _report(pred: np.ndarray, examples: Sequence, ids: Sequence[str]) -> Report:
    return score([[ids[int(j)] for j in np.flatnonzero(row)] for row in pred], examples, ids)


def run(gold: Path, folds: int, model: str) -> dict[str, Report]:
    taxonomy = load_themes()
    examples = load_gold(gold)
    cache = Path(tempfile.gettempdir()) / "watcher-bench-embeddings"
    embedder = CachedEmbedder(load_embedder(model), cache)
    data = prepare(examples, embedder, taxonomy)
    cv = cross_validate(data.X, data.Y, data.R, data.cosines, k=folds)
    keyword = KeywordClassifier(taxonomy)
    reports = {"keyword": evaluate(keyword, examples, taxonomy.ids)}
    reports.update({name: _report(cv[name], examples, taxonomy.ids) for name in ("rules", "head", "hybrid")})
    # the same head on top of the plain keywords instead of the rules: what the model adds where rules are weak
    found = [set(result.themes) for result in keyword.classify([e.item for e in examples])]
    K = np.array([[2.0 if t in f else -2.0 for t in taxonomy.ids] for f in found], dtype=np.float32)
    reports["keyword+head"] = _report(cross_validate(data.X, data.Y, K, data.cosines, k=folds)["hybrid"],
                                      examples, taxonomy.ids)
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", type=Path, default=GOLD)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--model", default="e5-small")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    reports = run(args.gold, args.folds, args.model)
    if args.json:
        print(json.dumps({k: r.as_dict() for k, r in reports.items()}, ensure_ascii=False))
        return
    for name, report in reports.items():
        cells = "  ".join(f"{t} P {s.precision:.3f} R {s.recall:.3f} F1 {s.f1:.3f}"
                          for t, s in report.themes.items() if s.support)
        print(f"{name:<8} macro-F1 {report.macro_f1:.3f}  |  {cells}")
    hybrid, keyword = reports["hybrid"], reports["keyword"]
    verdict("cross-validated hybrid beats the keyword baseline", f"macro-F1 {hybrid.macro_f1:.3f} vs "
            f"{keyword.macro_f1:.3f}", hybrid.macro_f1 > keyword.macro_f1)
    low = min(s.recall for s in hybrid.themes.values() if s.support)
    verdict("recall >= 0.95 on every theme with support", f"lowest recall {low:.3f}", low >= 0.95)


if __name__ == "__main__":
    main()
