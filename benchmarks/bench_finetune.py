"""One fine-tune of multilingual-e5-small for the themes, measured on the held-out sets (an experiment, not shipped).

    python -m benchmarks.bench_finetune

The two upper transformer layers (10 and 11 of 12) and a linear multi-label head are trained; the word embeddings and
layers 0-9 stay frozen, so the output of layer 9 is computed once per item and cached in memory. Training data:
``dev.jsonl`` + ``watcher_annotated_supplement.jsonl`` (592 items); the model alone is then measured on both held-out
sets. The settings below were fixed before the one run that was made (AdamW, lr 3e-5 for the layers and 1e-3 for
the head, 6 epochs, batch 16, positive-class weights capped at 10, seed 0): nothing was selected on held-out data,
and nothing was selected by cross-validation either (the run did not fit twice in the session's time), so this is
one honest measurement, not a tuned result.

Measured on 2 busy cores (load 6-15), 2026-12-01: held-out 1 macro-F1 0.887 (health-data 0.800, ai 0.941,
personal-data 0.912, health-products 0.896), held-out 2 0.838 (0.667, 0.833, 0.906, 0.945); frozen embeddings +
logistic head on the same training data: 0.829 and 0.789. 19 min 43 s wall (10 min of it computing the frozen
layers in float32 on the loaded machine), peak 1.7 GB.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.e5 import load_embedder
from classifiers.evaluation import Example, load_gold
from classifiers.themes import load_themes
from classifiers.training import labels

GOLD = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "gold"
TRAIN = ("dev.jsonl", "watcher_annotated_supplement.jsonl")
HELD_OUT = ("watcher_annotated_heldout.jsonl", "watcher_annotated_heldout2.jsonl")
EPOCHS, BATCH, LR_LAYERS, LR_HEAD, MAX_TOKENS, SEED = 6, 16, 3e-5, 1e-3, 256, 0


def frozen_states(embedder: Any, examples: list[Example]) -> list[Any]:
    """The output of layer 9 for each item (tokens x 384), computed once."""
    import torch

    seqs = [embedder._tokenizer.encode("query: " + e.item.classification_text(), MAX_TOKENS) for e in examples]
    out = []
    for start in range(0, len(seqs), 16):
        rows = seqs[start : start + 16]
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), 1, dtype=np.int64)
        mask = np.zeros_like(ids)
        for k, r in enumerate(rows):
            ids[k, : len(r)], mask[k, : len(r)] = r, 1
        attention = torch.from_numpy(mask)
        with torch.inference_mode():
            states = embedder._model(inputs_embeds=torch.from_numpy(embedder._words.gather(ids)).float(),
                                     attention_mask=attention, position_ids=torch.arange(2, width + 2).expand(
                                         len(rows), width), token_type_ids=torch.zeros_like(attention),
                                     output_hidden_states=True).hidden_states[10]
        out.extend(states[k, : len(r)].clone() for k, r in enumerate(rows))
    return out


class Tuned:
    """Layers 10-11 (float32 copies, trainable) + mean pooling + a linear head over the normalised embedding."""

    def __init__(self, model: Any, themes: int):
        import torch

        self.layers = torch.nn.ModuleList([copy.deepcopy(model.encoder.layer[i]).float() for i in (10, 11)])
        for p in self.layers.parameters():
            p.requires_grad_(True)
        self.head = torch.nn.Linear(384, themes)

    def __call__(self, x: Any, mask: Any) -> Any:
        import torch

        additive = (1.0 - mask)[:, None, None, :] * -1e4
        for layer in self.layers:
            out = layer(x, attention_mask=additive)
            x = out[0] if isinstance(out, tuple) else out
        pooled = torch.nn.functional.normalize((x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True), dim=-1)
        return self.head(pooled * 20)


def batch(states: list[Any], idx: list[int]) -> tuple[Any, Any]:
    import torch

    width = max(states[i].shape[0] for i in idx)
    x, mask = torch.zeros(len(idx), width, 384), torch.zeros(len(idx), width)
    for k, i in enumerate(idx):
        x[k, : states[i].shape[0]], mask[k, : states[i].shape[0]] = states[i], 1
    return x, mask


def train(model: Tuned, states: list[Any], Y: Any) -> None:
    import torch

    positives = Y.sum(0)
    loss_of = torch.nn.BCEWithLogitsLoss(pos_weight=((len(Y) - positives) / positives.clamp(min=1)).clamp(max=10))
    opt = torch.optim.AdamW([{"params": model.layers.parameters(), "lr": LR_LAYERS},
                             {"params": model.head.parameters(), "lr": LR_HEAD}], weight_decay=0.01)
    order_rng = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        order, total = torch.randperm(len(states), generator=order_rng).tolist(), 0.0
        for start in range(0, len(order), BATCH):
            idx = order[start : start + BATCH]
            loss = loss_of(model(*batch(states, idx)), Y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        print(f"epoch {epoch}: loss {total / len(order):.4f}", flush=True)


def macro_f1(P: np.ndarray, Y: np.ndarray) -> tuple[float, list[float]]:
    per = []
    for j in range(Y.shape[1]):
        if Y[:, j].sum():
            tp = int((P[:, j] & (Y[:, j] == 1)).sum())
            per.append(2 * tp / max(1, int(P[:, j].sum() + Y[:, j].sum())))
    return float(np.mean(per)), per


def main() -> None:
    import torch

    torch.manual_seed(SEED)
    start = time.perf_counter()
    ids = load_themes().ids
    embedder: Any = load_embedder("e5-small", dtype="float32")
    examples = [e for name in TRAIN for e in load_gold(GOLD / name)]
    states = frozen_states(embedder, examples)
    print(f"frozen layers computed for {len(examples)} items in {time.perf_counter() - start:.0f} s", flush=True)
    model = Tuned(embedder._model, len(ids))
    train(model, states, torch.tensor(labels(examples, ids), dtype=torch.float32))
    with torch.no_grad():
        for name in HELD_OUT:
            held = load_gold(GOLD / name)
            cached = frozen_states(embedder, held)
            Z = torch.cat([model(*batch(cached, list(range(s, min(s + 32, len(held))))))
                           for s in range(0, len(held), 32)]).numpy()
            score, per = macro_f1(Z > 0, labels(held, ids))
            print(f"{name}: model alone macro-F1 {score:.3f} (" + ", ".join(f"{f:.3f}" for f in per) + ")")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
