"""The trained low-rank update of the encoder (see ``classifiers.lab.finetune``): kept, loaded and merged.

An adapter is a few small matrices per trained layer: ``factors["l10.q"] = (A, B)`` is the update of layer 10's
attention query, ``W += scale * B @ A``. It is saved inside the head file (``classifiers.decide.head.Head``), so one file
holds all that training produced, and merged into the encoder's weights when the model loads
(``classifiers.engine.e5.FastE5Embedder``): the encoder keeps its shape and runs on every path as before. It records the SHA-256
of the converted weights it was trained on; merging into other weights is refused.

numpy only; :meth:`Adapter.merge_into` imports torch when called.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

ADAPTER_FORMAT = 1
# (layer attribute path, short name) of the six dense matrices of an XLM-R layer that get a low-rank update
TARGETS = (("attention.self.query", "q"), ("attention.self.key", "k"), ("attention.self.value", "v"),
           ("attention.output.dense", "ao"), ("intermediate.dense", "fi"), ("output.dense", "fo"))


@dataclass
class Adapter:
    """The trained low-rank updates: ``factors[name] = (A, B)`` with names like ``l10.q``; merged at load time."""

    factors: dict[str, tuple[np.ndarray, np.ndarray]]
    scale: float
    base_sha256: str
    settings: dict[str, Any]
    trained_on: int = 0

    @property
    def version(self) -> str:
        digest = hashlib.sha256()
        for name in sorted(self.factors):
            a, b = self.factors[name]
            digest.update(name.encode() + a.astype(np.float32).tobytes() + b.astype(np.float32).tobytes())
        return f"lora-{digest.hexdigest()[:10]}"

    def arrays(self, prefix: str = "adapter.") -> dict[str, np.ndarray]:
        """The adapter as named arrays (to be saved in an ``.npz`` beside others): factors and one JSON header."""
        meta = {"format": ADAPTER_FORMAT, "scale": self.scale, "base_sha256": self.base_sha256,
                "settings": self.settings, "trained_on": self.trained_on}
        out = {f"{prefix}meta": np.array(json.dumps(meta, sort_keys=True))}
        for name, (a, b) in self.factors.items():
            out[f"{prefix}{name}.A"], out[f"{prefix}{name}.B"] = a.astype(np.float32), b.astype(np.float32)
        return out

    @classmethod
    def from_arrays(cls, z: Any, prefix: str = "adapter.") -> Adapter | None:
        """The adapter stored in ``z`` (an open ``.npz``) by :meth:`arrays`, or ``None`` if there is none."""
        if f"{prefix}meta" not in z.files:
            return None
        meta = json.loads(str(z[f"{prefix}meta"]))
        if meta.get("format") != ADAPTER_FORMAT:
            raise ValueError(f"adapter format {meta.get('format')!r}, expected {ADAPTER_FORMAT}")
        keys = [k[len(prefix):] for k in z.files if k.startswith(prefix) and k != f"{prefix}meta"]
        names = sorted({k.rsplit(".", 1)[0] for k in keys})
        factors = {n: (z[f"{prefix}{n}.A"].astype(np.float32), z[f"{prefix}{n}.B"].astype(np.float32)) for n in names}
        return cls(factors, float(meta["scale"]), str(meta["base_sha256"]), dict(meta["settings"]),
                   int(meta.get("trained_on", 0)))

    def merge_into(self, model: Any, weights_sha256: str) -> None:
        """Add the updates to ``model``'s weights (an ``XLMRobertaModel``, any float dtype), in place; refused
        (``ValueError``) when the model's converted weights are not those the adapter was trained on."""
        import torch

        if weights_sha256 != self.base_sha256:
            raise ValueError(f"the adapter was trained on weights {self.base_sha256[:12]}, not {weights_sha256[:12]}")
        paths = dict((short, path) for path, short in TARGETS)
        with torch.no_grad():
            for name, (a, b) in self.factors.items():
                layer, short = name.split(".")
                owner, attr = owner_of(model.encoder.layer[int(layer[1:])], paths[short])
                weight = getattr(owner, attr).weight
                delta = torch.from_numpy(b @ a * self.scale)
                weight.copy_((weight.float() + delta).to(weight.dtype))


def owner_of(layer: Any, path: str) -> tuple[Any, str]:
    *parents, attr = path.split(".")
    owner = layer
    for name in parents:
        owner = getattr(owner, name)
    return owner, attr
