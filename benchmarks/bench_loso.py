"""Theme quality where nothing was tuned: leave one labelled set out, and leave one source out.

    python -m benchmarks.bench_loso                  # train and measure every fold (about 40 minutes on 2 cores)
    python -m benchmarks.bench_loso --only sets      # the leave-one-set-out folds only
    python -m benchmarks.bench_loso --report         # print the tables again from the saved fold outputs
    python -m benchmarks.bench_loso --variants       # ... and the model policies compared on them
    python -m benchmarks.bench_loso --cheap HEAD.npz # OPTIMISTIC: encoder of HEAD (trained on every set), heads
                                                     # refitted per fold; minutes instead of hours

Every labelled set ``watcher train`` trains on (``TRAINING_GOLD``) is used; the held-out
``watcher_annotated_external2`` is not read. Each fold trains what ``watcher train`` trains — the low-rank
adapters of the encoder's upper layers, the model-alone head, the joint head and the rules' weights, same settings
and seed — on every item **except** one labelled set (leave-one-set-out) or one source (leave-one-source-out), then
measures the left-out items with the rules alone (``R > 0``), the model alone (the head; the description prototype
for a theme without a head, as ``ModelOnlyClassifier``) and the hybrid (``head.combine`` with the themes file's
policy and the thresholds ``watcher train`` sets). Only the frozen lower layers' outputs are computed once for all items: they do not
depend on any label. Sources with fewer than ``MIN_ITEMS`` items are never left out (they stay in training).

The rules were written before the external set's labels were read; they were written with the other sets in view,
so the *rules* columns of those folds are not blind (the model and hybrid columns are: nothing of the left-out fold
is trained on). Per fold: items, macro-F1 (over the themes the fold holds) of rules / model / hybrid, per-theme
recall, seconds; then the worst fold beside the mean. ``--variants`` recomputes the hybrid of every fold under other
model policies from the saved outputs (no training): how the shipped policy was chosen.

``--cheap HEAD`` is the cheaper protocol, and it is **optimistic**: the encoder (its adapters) is the one of
``HEAD``, trained on every labelled set, the left-out one included; only the heads (model alone, joint, the rules'
weight) are refitted per fold, by logistic regression on the embeddings. It shows how the combination and the
policy behave on each fold, not what a model that never saw the fold would do.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from classifiers.decide.head import PROTO_Z, Head, Policy, RuleFlags, combine
from classifiers.decide.themes import load_themes
from classifiers.engine import tuning
from classifiers.engine.convert import MODEL_DIR_NAME
from classifiers.engine.e5 import default_cache_dir
from classifiers.lab import finetune
from classifiers.lab.evaluation import GOLD_SOURCES, Example, load_gold
from classifiers.lab.training import labels, rule_matrix
from watcher.cli.themes import TRAINING_GOLD

GOLD = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "gold"
CACHE = Path(__file__).resolve().parents[1] / "var" / "bench_loso"
MIN_ITEMS = 30
PARTS = ("rules", "model", "hybrid")


def gold_sets() -> dict[str, list[Example]]:
    """The labelled sets ``watcher train`` trains on; a held-out set (``watcher_annotated_external2``) is never a
    fold nor in a fold's training."""
    return {Path(name).stem: load_gold(GOLD / name) for name in sorted(TRAINING_GOLD)}


def fold_plan(sets: dict[str, list[Example]], only: str) -> list[tuple[str, np.ndarray]]:
    """(name, mask of the left-out items) for each fold."""
    set_of = np.array([name for name, examples in sets.items() for _ in examples])
    source_of = np.array([e.item.source for examples in sets.values() for e in examples])
    plan: list[tuple[str, np.ndarray]] = []
    if only in ("", "sets"):
        plan += [(f"set {name}", set_of == name) for name in sets]
    if only in ("", "sources"):
        counts = {s: int((source_of == s).sum()) for s in sorted(set(source_of.tolist()))}
        plan += [(f"source {s}", source_of == s) for s, n in sorted(counts.items(), key=lambda c: -c[1])
                 if n >= MIN_ITEMS]
    return plan


def train_folds(plan: Sequence[tuple[str, np.ndarray]], examples: Sequence[Example], cache: Path) -> None:
    """Train each fold not yet saved in ``cache`` and save what measuring it needs."""
    taxonomy = load_themes()
    settings = tuning.TuneSettings()
    Y = labels(examples, taxonomy.ids)
    R, flags = rule_matrix(examples, taxonomy, GOLD_SOURCES)
    start = time.perf_counter()
    frozen = tuning.Frozen(default_cache_dir() / MODEL_DIR_NAME, settings)
    states = frozen.states([e.item.classification_text() for e in examples])
    print(f"frozen layers of {len(examples)} items: {time.perf_counter() - start:.0f} s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    for name, test_mask in plan:
        target = cache / f"{name.replace(' ', '_')}.npz"
        if target.exists():
            continue
        begin = time.perf_counter()
        train, test = np.flatnonzero(~test_mask), np.flatnonzero(test_mask)
        model = tuning.fit(frozen, [states[int(i)] for i in train], Y[train], finetune.clip_rules(R[train]), settings)
        protos = finetune.prototypes(frozen, model, taxonomy)
        X_train = tuning.predict(model, [states[int(i)] for i in train])[2]
        head = finetune.head_of(model, X_train, Y[train], X_train @ protos.T, taxonomy.ids)
        alone, joint, X = tuning.predict(model, [states[int(i)] for i in test])
        seconds = time.perf_counter() - begin
        np.savez_compressed(target, test=test, alone=alone, joint=joint, cosines=X @ protos.T,
                            rule_weight=head.rule_weight, bias=head.bias, has_head=head.has_head,
                            proto_mean=head.proto_mean, proto_std=head.proto_std, seconds=np.float32(seconds))
        print(f"{name}: trained on {len(train)}, measured on {len(test)} ({seconds:.0f} s)", flush=True)
    del flags


def cheap_folds(plan: Sequence[tuple[str, np.ndarray]], examples: Sequence[Example], head_file: Path,
                cache: Path) -> None:
    """The optimistic protocol (see the module doc): embeddings from ``head_file``'s encoder, heads refitted per fold."""
    from sklearn.linear_model import LogisticRegression

    from classifiers.engine.e5 import FastE5Embedder
    from classifiers.engine.tuning import SCALE

    taxonomy = load_themes()
    ids = taxonomy.ids
    Y = labels(examples, ids)
    R = rule_matrix(examples, taxonomy, GOLD_SOURCES)[0]
    shipped = Head.load(head_file)
    start = time.perf_counter()
    embedder = FastE5Embedder(default_cache_dir() / MODEL_DIR_NAME, adapter=shipped.adapter)
    X = embedder.embed([e.item.classification_text() for e in examples], kind="query")
    texts = [d for theme in taxonomy for d in theme.descriptions()]
    protos = embedder.embed(texts, kind="passage").reshape(len(ids), 2, -1).mean(axis=1)
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    print(f"embedded {len(examples)} items with {shipped.version}: {time.perf_counter() - start:.0f} s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    clipped = finetune.clip_rules(R)
    for name, test_mask in plan:
        begin = time.perf_counter()
        train, test = np.flatnonzero(~test_mask), np.flatnonzero(test_mask)
        alone, joint = np.zeros((len(test), len(ids))), np.zeros((len(test), len(ids)))
        rule_weight, bias, has = np.ones(len(ids)), np.zeros(len(ids)), Y[train].sum(axis=0) >= 5
        for j in np.flatnonzero(has):
            weight = {0: 1.0, 1: min(10.0, float((Y[train, j] == 0).sum()) / max(1.0, float(Y[train, j].sum())))}
            model = LogisticRegression(C=1.0, class_weight=weight, max_iter=2000).fit(X[train] * SCALE, Y[train, j])
            alone[:, j] = model.decision_function(X[test] * SCALE)
            bias[j] = float(model.intercept_[0])
            both = LogisticRegression(C=1.0, class_weight=weight, max_iter=2000).fit(
                np.hstack([X[train] * SCALE, clipped[train, j : j + 1]]), Y[train, j])
            rule_weight[j] = float(both.coef_[0, -1])
            joint[:, j] = X[test] * SCALE @ both.coef_[0, :-1] + both.intercept_[0]
        cos_train = X[train] @ protos.T
        np.savez_compressed(cache / f"{name.replace(' ', '_')}.npz", test=test, alone=alone, joint=joint,
                            cosines=X[test] @ protos.T, rule_weight=rule_weight.astype(np.float32),
                            bias=bias.astype(np.float32), has_head=has, proto_mean=cos_train.mean(axis=0),
                            proto_std=cos_train.std(axis=0), seconds=np.float32(time.perf_counter() - begin))
    print(f"heads refitted for {len(plan)} folds: {time.perf_counter() - start:.0f} s", flush=True)


def shipped_outputs(head_file: Path, names: Sequence[str], sets: dict[str, list[Example]], cache: Path) -> None:
    """The shipped head as it is, on labelled sets it was not trained on: each set saved as a fold (its own
    heads, thresholds and encoder; nothing refitted), so ``report`` and ``--variants`` read it like the others."""
    from classifiers.engine.e5 import FastE5Embedder

    examples = [e for group in sets.values() for e in group]
    taxonomy = load_themes()
    head = Head.load(head_file)
    embedder = FastE5Embedder(default_cache_dir() / MODEL_DIR_NAME, adapter=head.adapter)
    texts = [d for theme in taxonomy for d in theme.descriptions()]
    protos = embedder.embed(texts, kind="passage").reshape(len(taxonomy), 2, -1).mean(axis=1)
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    cache.mkdir(parents=True, exist_ok=True)
    offsets = np.cumsum([0] + [len(group) for group in sets.values()])
    for name in names:
        start = time.perf_counter()
        k = list(sets).index(name)
        test = np.arange(offsets[k], offsets[k + 1])
        X = embedder.embed([examples[int(i)].item.classification_text() for i in test], kind="query")
        np.savez_compressed(cache / f"set_{name}.npz", test=test, alone=head.logits(X), joint=head.joint_logits(X),
                            cosines=X @ protos.T, rule_weight=head.rule_weight, bias=head.bias,
                            has_head=head.has_head, proto_mean=head.proto_mean, proto_std=head.proto_std,
                            thresholds=head.thresholds, seconds=np.float32(time.perf_counter() - start))
        print(f"{name}: {len(test)} items embedded with {head.version} ({time.perf_counter() - start:.0f} s)",
              flush=True)


def predictions(saved: dict[str, np.ndarray], R: np.ndarray, flags: RuleFlags, policy: Policy,
                ids: Sequence[str], thresholds: np.ndarray | None = None,
                all_grounded: bool = False) -> dict[str, np.ndarray]:
    """The rules', the model alone's and the hybrid's decisions on a fold's left-out items (``all_grounded``: every
    theme the rules give counts as grounded, so ``policy.remove_grounded`` applies to all of them)."""
    test = saved["test"]
    if all_grounded:
        flags = RuleFlags(flags.certain, flags.grounded | (R > 0), flags.excluded)
    dim = saved["alone"].shape[1]
    if thresholds is None:
        thresholds = saved["thresholds"] if "thresholds" in saved else np.full(len(ids), finetune.THRESHOLDS,
                                                                                  np.float32)
    head = Head(tuple(ids), np.zeros((len(ids), 1), np.float32), saved["bias"], saved["has_head"],
                saved["proto_mean"], saved["proto_std"], thresholds, rule_weight=saved["rule_weight"])
    head = replace(head, rule_clip=finetune.RULE_CLIP)
    proto = 1.0 / (1.0 + np.exp(-(head.proto_z(saved["cosines"]) - PROTO_Z)))
    model = np.where(head.has_head, saved["alone"] > 0, proto > 0.5)
    joint = np.where(head.has_head, saved["joint"], 0.0)
    hybrid = combine(R[test], flags.rows(test), head, joint, saved["cosines"], alone=saved["alone"], policy=policy)
    del dim
    return {"rules": R[test] > 0, "model": model, "hybrid": hybrid > head.thresholds}


def scores(pred: np.ndarray, Y: np.ndarray) -> tuple[float, dict[int, float]]:
    """(macro-F1 over the themes with support, recall per such theme)."""
    f1s, recall = [], {}
    for j in np.flatnonzero(Y.sum(axis=0)):
        gold = Y[:, j] == 1
        tp = float((pred[:, j] & gold).sum())
        f1s.append(2 * tp / float(pred[:, j].sum() + gold.sum()))
        recall[int(j)] = tp / float(gold.sum())
    return (float(np.mean(f1s)) if f1s else float("nan")), recall


def report(plan: Sequence[tuple[str, np.ndarray]], examples: Sequence[Example], cache: Path,
           policy: Policy | None = None, quiet: bool = False,
           thresholds: np.ndarray | None = None, all_grounded: bool = False) -> dict[str, dict[str, float]]:
    taxonomy = load_themes()
    ids = taxonomy.ids
    Y = labels(examples, ids)
    R, flags = rule_matrix(examples, taxonomy, GOLD_SOURCES)
    policy = policy or Policy.of(taxonomy)
    short = {"health-data": "HD", "ai": "AI", "dmuu-reprocessing": "DMUU", "personal-data": "PD",
             "health-products": "HP"}
    rows: dict[str, dict[str, float]] = {}
    pooled: dict[str, list[tuple[np.ndarray, dict[str, np.ndarray]]]] = {"set": [], "source": []}
    if not quiet:
        print(f"\n{'left out':<38} {'n':>4}  {'macro-F1 rules/model/hybrid':<28} {'recall per theme: rules/model/hybrid'}")
    for name, _ in plan:
        path = cache / f"{name.replace(' ', '_')}.npz"
        if not path.exists():
            continue
        with np.load(path) as z:
            saved = {k: z[k] for k in z.files}
        test = saved["test"]
        preds = predictions(saved, R, flags, policy, ids, thresholds, all_grounded)
        row: dict[str, float] = {"n": len(test), "seconds": float(saved["seconds"])}
        recalls = {}
        for part, pred in preds.items():
            row[part], recalls[part] = scores(pred, Y[test])
            for j, r in recalls[part].items():
                row[f"{part} {ids[j]}"] = r
        rows[name] = row
        pooled[name.split()[0]].append((test, preds))
        if not quiet:
            cells = "  ".join(f"{short[ids[j]]} {recalls['rules'][j]:.2f}/{recalls['model'][j]:.2f}/"
                              f"{recalls['hybrid'][j]:.2f} ({int(Y[test, j].sum())})" for j in recalls["rules"])
            print(f"{name:<38} {len(test):>4}  {row['rules']:.3f} / {row['model']:.3f} / {row['hybrid']:.3f}       "
                  f"{cells}   [{row['seconds']:.0f} s]")
    if not quiet and rows:
        _summary(rows, ids)
        _pooled(pooled, Y, ids, examples)
    return rows


def _pooled(pooled: dict[str, list[tuple[np.ndarray, dict[str, np.ndarray]]]], Y: np.ndarray,
            ids: Sequence[str], examples: Sequence[Example]) -> None:
    """Every left-out item once, judged by the fold that left it out: macro-F1 and recall with the full support."""
    for kind, folds in pooled.items():
        if not folds:
            continue
        test = np.concatenate([t for t, _ in folds])
        print(f"\npooled leave-one-{kind}-out ({len(test)} items, each judged by a model trained without it):")
        for part in PARTS:
            pred = np.concatenate([p[part] for _, p in folds])
            macro, recall = scores(pred, Y[test])
            print(f"  {part:<7} macro-F1 {macro:.3f}; recall " + ", ".join(
                f"{ids[j]} {r:.3f} ({int(Y[test, j].sum())})" for j, r in recall.items()))
        if kind != "set":
            continue
        sources = np.array([examples[int(i)].item.source for i in test])
        print("  by source (macro-F1 rules / model / hybrid):")
        for source in sorted(set(sources.tolist()), key=lambda s: -(sources == s).sum()):
            mask = sources == source
            if mask.sum() < MIN_ITEMS:
                continue
            cells = [scores(np.concatenate([p[part] for _, p in folds])[mask], Y[test][mask])[0] for part in PARTS]
            print(f"    {source:<14} {int(mask.sum()):>4}  " + " / ".join(f"{c:.3f}" for c in cells))


def _summary(rows: dict[str, dict[str, float]], ids: Sequence[str]) -> None:
    for kind in ("set", "source"):
        chosen = {n: r for n, r in rows.items() if n.startswith(kind)}
        if not chosen:
            continue
        print(f"\nleave-one-{kind}-out, {len(chosen)} folds:")
        for part in PARTS:
            macro = [r[part] for r in chosen.values()]
            worst = min(chosen, key=lambda n: chosen[n][part])
            line = f"  {part:<7} macro-F1 mean {np.mean(macro):.3f}, worst {chosen[worst][part]:.3f} ({worst})"
            recalls = []
            for theme in ids:
                values = {n: r[f"{part} {theme}"] for n, r in chosen.items() if f"{part} {theme}" in r}
                if values:
                    low = min(values, key=lambda n: values[n])
                    recalls.append(f"{theme} {np.mean(list(values.values())):.2f} (worst {values[low]:.2f})")
            print(line + "; recall mean (worst): " + ", ".join(recalls))
        print(f"  fold work (training, or embedding for --shipped) {sum(r['seconds'] for r in chosen.values()):.0f} s")


VARIANTS: dict[str, dict[str, float | bool | tuple[float, ...] | tuple[str, ...]]] = {
    "shipped policy (themes.toml)": {},
    "grounded removable by any model (no recall-first keep)": {"remove_grounded": 1.0},
    "grounded removable when the model alone says p < 0.05": {"remove_grounded": 0.05},
    "grounded removable when the model alone says p < 0.2": {"remove_grounded": 0.2},
    "the model may not remove any rule's theme": {"remove": False},
    "any rule's theme removable only when the model alone says p < 0.05": {"remove_grounded": 0.05,
                                                                           "all_grounded": True},
    "any rule's theme removable only when the model alone says p < 0.02": {"remove_grounded": 0.02,
                                                                           "all_grounded": True},
    "any rule's theme removable only when the model alone says p < 0.1": {"remove_grounded": 0.1,
                                                                          "all_grounded": True},
    "the model may not remove health-data or ai": {"keep": ("health-data", "ai")},
    "the model may not remove health-data, ai or personal-data": {"keep": ("health-data", "ai", "personal-data")},
    "the model may not add a theme": {"add": False},
    "thresholds of the previous head (ai 0.5, health-products 0.75)": {"thresholds": (0.0, 0.5, 0.0, 0.0, 0.75)},
    "thresholds -0.5 on every theme": {"thresholds": (-0.5,) * 5},
    "thresholds +0.5 on every theme": {"thresholds": (0.5,) * 5},
    "thresholds -1.0 on every theme": {"thresholds": (-1.0,) * 5},
    "thresholds -0.5, the model may not remove any rule's theme": {"thresholds": (-0.5,) * 5, "remove": False},
}


def variants(plan: Sequence[tuple[str, np.ndarray]], examples: Sequence[Example], cache: Path) -> None:
    """The hybrid's mean and worst macro-F1 and worst per-theme recall over the folds under each policy."""
    taxonomy = load_themes()
    base = Policy.of(taxonomy)
    print(f"\n{'policy':<58} {'sets: mean / worst':<20} {'sources: mean / worst':<22} worst theme recall")
    for label, change in VARIANTS.items():
        n = len(taxonomy)
        keep = change.get("keep", ())
        remove = np.full(n, bool(change["remove"]), bool) if "remove" in change else base.remove.copy()
        remove &= np.array([t not in keep for t in taxonomy.ids]) if isinstance(keep, tuple) else True
        policy = Policy(np.full(n, bool(change["add"]), bool) if "add" in change else base.add, remove,
                        np.full(n, float(change["remove_grounded"]), np.float32) if "remove_grounded" in change  # type: ignore[arg-type]
                        else base.remove_grounded)
        given = change.get("thresholds")
        thresholds = np.array(given, dtype=np.float32) if isinstance(given, tuple) else None
        rows = report(plan, examples, cache, policy, quiet=True, thresholds=thresholds,
                      all_grounded=bool(change.get("all_grounded", False)))
        cells = []
        for kind in ("set", "source"):
            values = [r["hybrid"] for name, r in rows.items() if name.startswith(kind)]
            cells.append(f"{np.mean(values):.3f} / {min(values):.3f}" if values else "-")
        worst = min((r[k], k.split()[1], name) for name, r in rows.items() for k in r if k.startswith("hybrid "))
        print(f"{label:<58} {cells[0]:<20} {cells[1]:<22} {worst[0]:.2f} ({worst[1]}, {worst[2]})")
        for theme in ("health-data", "ai"):
            values = {name: r[f"hybrid {theme}"] for name, r in rows.items() if f"hybrid {theme}" in r}
            print(f"    {theme} recall: mean {np.mean(list(values.values())):.3f}, worst {min(values.values()):.3f}"
                  f" ({min(values, key=lambda n: values[n]).split()[-1]})")
        print("    per fold: " + ", ".join(f"{name.split()[-1].removeprefix('watcher_annotated_')} {r['hybrid']:.3f}"
                                      for name, r in rows.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("sets", "sources"), default="")
    parser.add_argument("--fold", action="append", default=[], metavar="NAME",
                        help="only this fold (repeatable), e.g. 'set watcher_annotated_external', 'source cnil'")
    parser.add_argument("--report", action="store_true", help="only print the tables from the saved folds")
    parser.add_argument("--variants", action="store_true", help="compare model policies on the saved folds")
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"where fold outputs are saved (default {CACHE})")
    parser.add_argument("--fresh", action="store_true", help="retrain every fold (delete the saved outputs first)")
    parser.add_argument("--shipped", type=Path, default=None, metavar="HEAD",
                        help="measure HEAD as it is on the --fold sets it was not trained on (saved under "
                             "CACHE/shipped)")
    parser.add_argument("--cheap", type=Path, default=None, metavar="HEAD",
                        help="the optimistic protocol with HEAD's encoder (saved under CACHE/cheap)")
    args = parser.parse_args()
    sets = gold_sets()
    examples = [e for group in sets.values() for e in group]
    plan = [(n, m) for n, m in fold_plan(sets, args.only) if not args.fold or n in args.fold]
    print(f"{len(examples)} labelled items in {len(sets)} sets ({', '.join(f'{k} {len(v)}' for k, v in sets.items())}); "
          f"{len(plan)} folds", flush=True)
    if args.fresh:
        for path in args.cache.glob("*.npz"):
            path.unlink()
    start = time.perf_counter()
    if args.shipped:
        args.cache = args.cache / "shipped"
        names = [n.split(" ", 1)[1] for n, _ in plan if n.startswith("set ")]
        print(f"the shipped head {args.shipped} as it is, on sets it was not trained on: {', '.join(names)}")
        if not (args.report or args.variants):
            shipped_outputs(args.shipped, names, sets, args.cache)
    elif args.cheap:
        args.cache = args.cache / "cheap"
        print("OPTIMISTIC protocol: the encoder saw every fold; only the heads are refitted per fold", flush=True)
        if not (args.report or args.variants):
            cheap_folds(plan, examples, args.cheap, args.cache)
    elif not (args.report or args.variants):
        train_folds(plan, examples, args.cache)
        print(f"all folds trained in {time.perf_counter() - start:.0f} s", flush=True)
    report(plan, examples, args.cache)
    if args.variants:
        variants(plan, examples, args.cache)
    print("\n" + json.dumps({"folds": len(plan), "items": len(examples)}))


if __name__ == "__main__":
    main()
