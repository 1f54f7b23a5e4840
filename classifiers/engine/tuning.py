"""Fine-tuning machinery of multilingual-e5-small (torch): the frozen lower layers computed once, low-rank adapters
on the upper layers, two linear heads, the training loop and its batches. What to train on and what is kept is
decided by the lab (``classifiers.lab.finetune``); this module only runs torch."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classifiers.engine.adapter import TARGETS, Adapter, owner_of
from classifiers.engine.convert import LeanTokenizer, ensure_converted

SCALE = 20.0  # the head reads the unit embedding times this (cosines are small numbers)


@dataclass(frozen=True)
class TuneSettings:
    """How the model is fine-tuned. These values were fixed before the first training and not searched (the
    combination with the rules and the thresholds were chosen out of fold); ``benchmarks/bench_finetune --grid``
    prints the out-of-fold scores of alternatives."""

    top_layers: int = 2
    rank: int = 8
    alpha: float = 16.0
    lr: float = 1e-3  # adapters
    head_lr: float = 3e-3
    epochs: int = 6
    batch: int = 16
    max_tokens: int = 256
    weight_decay: float = 0.01
    pos_weight_cap: float = 10.0
    seed: int = 0
    threads: int = 2


# -- the frozen part ---------------------------------------------------------------------------------------------

class Frozen:
    """The converted model in float32, the tokenizer and the word rows: what computes the frozen states."""

    def __init__(self, model_dir: Path, settings: TuneSettings):
        from classifiers.engine.e5 import WordRows, _load_encoder

        marker = ensure_converted(model_dir)
        torch.set_num_threads(settings.threads)
        self.model_dir = model_dir
        self.weights_sha256 = str(marker["weights_sha256"])
        self.settings = settings
        self.tokenizer = LeanTokenizer.from_file(model_dir / "tokenizer.json")
        self.words = WordRows(model_dir / "model.safetensors")
        self.model: Any = _load_encoder(model_dir, torch.float32)
        self.split = len(self.model.encoder.layer) - settings.top_layers

    def states(self, texts: Sequence[str], progress: Callable[[int], None] | None = None,
               prefix: str = "query: ") -> list[torch.Tensor]:
        """For each text (E5 prefix added), the input of the first trained layer: (tokens, 384)."""
        seqs = [self.tokenizer.encode(prefix + t, self.settings.max_tokens) for t in texts]
        order = np.argsort([len(s) for s in seqs], kind="stable")
        out: list[Any] = [None] * len(seqs)
        for start in range(0, len(order), 32):
            idx = order[start : start + 32]
            x, mask = self._embed([seqs[i] for i in idx])
            with torch.inference_mode():
                for layer in self.model.encoder.layer[: self.split]:
                    x = layer(x, attention_mask=additive_mask(mask))
            for k, i in enumerate(idx):
                out[i] = x[k, : len(seqs[i])].clone()
            if progress:
                progress(len(idx))
        return out

    def _embed(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), 1, dtype=np.int64)
        mask = np.zeros_like(ids)
        for k, r in enumerate(rows):
            ids[k, : len(r)], mask[k, : len(r)] = r, 1
        with torch.inference_mode():
            x = self.model.embeddings(inputs_embeds=torch.from_numpy(self.words.gather(ids)).float(),
                                      position_ids=torch.arange(2, width + 2).expand(len(rows), width),
                                      token_type_ids=torch.zeros((len(rows), width), dtype=torch.long))
        return x, torch.from_numpy(mask).float()


def additive_mask(mask: torch.Tensor) -> torch.Tensor:
    return (1.0 - mask)[:, None, None, :] * -1e4


# -- the trained part --------------------------------------------------------------------------------------------

class LowRank(torch.nn.Module):
    """``base(x) + scale * x A^T B^T``: a frozen dense layer and its trainable low-rank update."""

    def __init__(self, base: Any, rank: int, alpha: float, generator: torch.Generator):
        super().__init__()
        self.base = base
        fan_in, fan_out = base.weight.shape[1], base.weight.shape[0]
        bound = 1.0 / math.sqrt(fan_in)
        self.A = torch.nn.Parameter((torch.rand(rank, fan_in, generator=generator) * 2 - 1) * bound)
        self.B = torch.nn.Parameter(torch.zeros(fan_out, rank))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.A.T @ self.B.T) * self.scale  # type: ignore[no-any-return]


class Tuned:
    """The trained layers (copies of the upper layers with low-rank updates), mean pooling and the theme head."""

    def __init__(self, frozen: Frozen, themes: int, settings: TuneSettings):
        import copy

        generator = torch.Generator().manual_seed(settings.seed)
        self.layers = [copy.deepcopy(layer) for layer in frozen.model.encoder.layer[frozen.split :]]
        self.updates: dict[str, LowRank] = {}
        for n, layer in enumerate(self.layers):
            layer.train(False)
            for path, short in TARGETS:
                owner, attr = owner_of(layer, path)
                update = LowRank(getattr(owner, attr), settings.rank, settings.alpha, generator)
                setattr(owner, attr, update)
                self.updates[f"l{frozen.split + n}.{short}"] = update
        self.head = torch.nn.Linear(384, themes)  # the model alone
        self.joint = torch.nn.Linear(384, themes)  # the model beside the rules: z = rule_weight * rules + joint
        self.rule_weight = torch.nn.Parameter(torch.ones(themes))
        with torch.no_grad():
            for linear in (self.head, self.joint):
                linear.weight.copy_(torch.randn(themes, 384, generator=generator) * 0.01)
                linear.bias.zero_()

    def parameters(self) -> tuple[list[Any], list[Any]]:
        heads = [*self.head.parameters(), *self.joint.parameters(), self.rule_weight]
        return [p for u in self.updates.values() for p in (u.A, u.B)], heads

    def embed(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        additive = additive_mask(mask)
        for layer in self.layers:
            x = layer(x, attention_mask=additive)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def __call__(self, x: torch.Tensor, mask: torch.Tensor, rules: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the model alone's logits, the hybrid's logits given the clipped rule logits ``rules``)."""
        v = self.embed(x, mask) * SCALE
        return self.head(v), self.rule_weight * rules + self.joint(v)


def pad(states: Sequence[torch.Tensor], idx: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(states[i].shape[0] for i in idx)
    x, mask = torch.zeros(len(idx), width, states[idx[0]].shape[1]), torch.zeros(len(idx), width)
    for k, i in enumerate(idx):
        x[k, : states[i].shape[0]], mask[k, : states[i].shape[0]] = states[i], 1
    return x, mask


def fit(frozen: Frozen, states: Sequence[torch.Tensor], Y: np.ndarray, rules: np.ndarray, settings: TuneSettings,
        log: Callable[[str], None] | None = None) -> Tuned:
    """Train adapters and heads on ``states`` (from :meth:`Frozen.states`), the clipped rule logits ``rules`` and the
    labels ``Y`` (items, themes): the loss is the model alone's plus the hybrid's, so the encoder learns what the
    themes are and the joint head learns what the rules get wrong."""
    torch.manual_seed(settings.seed)
    model = Tuned(frozen, Y.shape[1], settings)
    target = torch.tensor(Y, dtype=torch.float32)
    given = torch.tensor(rules, dtype=torch.float32)
    positives = target.sum(0)
    pos_weight = ((len(target) - positives) / positives.clamp(min=1)).clamp(max=settings.pos_weight_cap)
    loss_of = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    adapters, head = model.parameters()
    opt = torch.optim.AdamW([{"params": adapters, "lr": settings.lr}, {"params": head, "lr": settings.head_lr}],
                            weight_decay=settings.weight_decay)
    rng = np.random.default_rng(settings.seed)
    lengths = np.array([s.shape[0] for s in states])
    for epoch in range(settings.epochs):
        total = 0.0
        for idx in buckets(lengths, settings.batch, rng):
            alone, hybrid = model(*pad(states, idx), given[idx])
            loss = loss_of(alone, target[idx]) + loss_of(hybrid, target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        if log:
            log(f"epoch {epoch + 1}/{settings.epochs}: loss {total / len(states):.4f}")
    return model


def buckets(lengths: np.ndarray, size: int, rng: np.random.Generator, pool: int = 8) -> list[list[int]]:
    """One epoch's batches: a random order, cut into pools of ``pool`` batches, each pool sorted by length and cut
    into batches, the batches shuffled. Batches hold items of similar length (little padding: about half the
    work of random batches on real items) and are still random from epoch to epoch."""
    order = rng.permutation(len(lengths))
    out = []
    for start in range(0, len(order), size * pool):
        group = order[start : start + size * pool]
        group = group[np.argsort(lengths[group], kind="stable")]
        out += [group[k : k + size].tolist() for k in range(0, len(group), size)]
    return [out[i] for i in rng.permutation(len(out))]


def predict(model: Tuned, states: Sequence[torch.Tensor]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the head's logits, the joint head's logits without the rules' term, unit embeddings) of ``states``."""
    order = np.argsort([s.shape[0] for s in states], kind="stable")
    vecs = []
    with torch.no_grad():
        for start in range(0, len(order), 32):
            vecs.append(model.embed(*pad(states, order[start : start + 32].tolist())))
        v = torch.cat(vecs)
        alone, joint = model.head(v * SCALE).numpy(), model.joint(v * SCALE).numpy()
    back = np.argsort(order)  # row i of the result is item i again
    return alone[back], joint[back], v.numpy()[back]


def adapter_of(model: Tuned, frozen: Frozen, trained_on: int) -> Adapter:
    """What is kept of a trained model's layers (the head goes into ``head.Head``)."""
    factors = {name: (u.A.detach().numpy().copy(), u.B.detach().numpy().copy()) for name, u in model.updates.items()}
    scale = next(iter(model.updates.values())).scale
    return Adapter(factors, scale, frozen.weights_sha256, asdict(frozen.settings), trained_on)
