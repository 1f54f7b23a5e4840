"""The int8 path of the encoder: oneDNN dynamic quantisation, checked against float32 before it is used.

For CPUs without native bfloat16 (AVX2 laptops and servers, AVX-512 without BF16), the encoder's linear layers run
as int8 matrix products: weights quantised once per output channel (symmetric, ``qint8``), activations per call
(``quint8``, one scale per tensor), through torch's *oneDNN* quantised engine. oneDNN picks its kernel from the CPU
and honours ``ONEDNN_MAX_CPU_ISA`` (``brg_matmul:avx512_core_vnni`` on AVX512-VNNI, ``gemm:jit`` on AVX2); torch's
other engines (``x86``/``fbgemm``) choose from the CPU's own flags whatever the caps say, so they are never used
here. Which linears are quantised is :data:`PARTS` (chosen on the gold items: docs/semantic.md).

Quantisation moves the vectors (cosine to float32 0.93-0.99 on real items) but, on the gold items, not the themes.
That is checked, not assumed: :func:`quantise_checked` runs a :class:`QualityCheck` (given by the decisions layer:
the themes the hybrid classifier gives) with the float32 model, quantises, runs it again and compares. The verdict
is cached in :data:`VERDICTS` beside the converted model, keyed by everything it depends on (the CPU line, the
oneDNN cap, torch, the weights, the adapter, the quantised parts, the check set), so it runs once per machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from classifiers.engine.capability import Capability, Probe

ENGINE = "onednn"  # the quantised engine whose kernels honour ONEDNN_MAX_CPU_ISA
# the linears of each layer that run in int8: all but the feed-forward output (``fo``), whose int8 rounding moves
# the themes of 30 of the 2,136 gold items (11 without it; docs/semantic.md)
PARTS: tuple[str, ...] = ("q", "k", "v", "ao", "fi")
LINEARS = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
           "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}
VERDICTS = "int8-check.json"  # beside the converted model
PROBE_AGREEMENT = 0.99  # cosine of the int8 linear to float32 on the probe input (8-bit rounding: ~0.9999)
SAME_THEMES = 0.995  # share of the check items whose themes must be identical to float32's
MEAN_COSINE = 0.95  # and the mean cosine of the vectors to float32's (all six linears in int8: ~0.97)


@dataclass(frozen=True)
class Verdict:
    """What the check found on this machine."""

    ok: bool
    items: int
    same_themes: float  # share of items with identical themes
    cos_min: float
    cos_mean: float
    made_on: str  # the CPU line (capability.Capability.line) and the oneDNN cap
    made_at: str

    @property
    def detail(self) -> str:
        return (f"themes identical to float32 on {self.same_themes:.1%} of {self.items} real items, cosine "
                f"min {self.cos_min:.3f} mean {self.cos_mean:.4f} (checked {self.made_at[:10]} on {self.made_on})")


@dataclass(frozen=True)
class QualityCheck:
    """What the int8 model must not change. ``run(embedder)`` returns ``(vectors, themes)`` of the check items
    with that embedder; ``key`` names what the result depends on besides the model (head, rules, items)."""

    key: str
    run: Callable[[Any], tuple[Any, Sequence[Sequence[str]]]]


def available() -> bool:
    """torch has the oneDNN quantised engine (x86 builds do; Arm builds have QNNPACK instead)."""
    import torch

    return ENGINE in torch.backends.quantized.supported_engines


def qconfig() -> Any:
    """Per-channel symmetric int8 weights, dynamic per-tensor uint8 activations."""
    import torch
    from torch.ao.quantization import PerChannelMinMaxObserver, PlaceholderObserver, QConfig

    return QConfig(
        activation=PlaceholderObserver.with_args(dtype=torch.quint8, quant_min=0, quant_max=255, is_dynamic=True),
        weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric))


def probe() -> Probe:
    """One int8 linear on a tiny fixed input through the oneDNN engine, compared with float32."""
    import torch
    import torch.nn.functional as F

    kernel = "oneDNN int8 linear (dynamic, per-channel)"
    if not available():
        return Probe(kernel, False, f"this torch has no {ENGINE} quantised engine "
                                    f"({', '.join(torch.backends.quantized.supported_engines)})")
    generator = torch.Generator().manual_seed(8)
    linear = torch.nn.Linear(384, 96)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(96, 384, generator=generator) * 0.05)
        linear.bias.copy_(torch.randn(96, generator=generator) * 0.05)
    x = torch.randn(24, 384, generator=generator)
    try:
        with torch.inference_mode():
            expected = F.linear(x, linear.weight, linear.bias)
            got = _quantised_linear(linear)(x)
    except Exception as exc:  # a kernel the CPU cannot run, or an engine torch cannot set: any failure counts
        return Probe(kernel, False, f"raised {type(exc).__name__}: {str(exc).strip().splitlines()[0][:160]}")
    cosine = float(F.cosine_similarity(got.flatten(), expected.flatten(), dim=0))
    if not cosine >= PROBE_AGREEMENT:
        return Probe(kernel, False, f"disagrees with plain float32 (cosine {cosine:.5f})")
    return Probe(kernel, True, f"agrees with plain float32 (cosine {cosine:.5f})")


def _quantised_linear(linear: Any) -> Any:
    import torch

    torch.backends.quantized.engine = ENGINE  # before packing: the packed weights belong to the engine
    linear.qconfig = qconfig()
    with warnings.catch_warnings():  # torch >= 2.9 flags its quantised tensors as deprecated (docs/semantic.md)
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        return torch.ao.nn.quantized.dynamic.Linear.from_float(linear)


def quantise(model: Any, parts: Sequence[str] = PARTS) -> None:
    """Replace ``parts`` (:data:`LINEARS` keys) of every layer of ``model`` (an ``XLMRobertaModel`` in float32, not
    fused: see ``e5._fuse_intermediate_gelu``) by oneDNN int8 dynamic linears, in place."""
    for layer in model.encoder.layer:
        for part in parts:
            parent_name, _, child = LINEARS[part].rpartition(".")
            parent = layer.get_submodule(parent_name)
            setattr(parent, child, _quantised_linear(getattr(parent, child)))


def verdict_key(capability: Capability, model_key: str, parts: Sequence[str], check: QualityCheck) -> str:
    """Everything a verdict depends on, hashed: CPU line and caps, torch, model (weights, adapter, max length)..."""
    import torch

    caps = " ".join(f"{v}={os.environ.get(v, '')}" for v in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY"))
    text = "|".join([capability.line(), caps, torch.__version__, model_key, ",".join(parts), check.key])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def made_on(capability: Capability) -> str:
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return capability.line() + (f"; ONEDNN_MAX_CPU_ISA={cap}" if cap else "")


def cached(model_dir: Path, key: str) -> Verdict | None:
    """The verdict stored for ``key`` beside the model, or ``None``."""
    try:
        stored = json.loads((model_dir / VERDICTS).read_text(encoding="utf-8"))[key]
        return Verdict(**stored)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(model_dir: Path, key: str, verdict: Verdict) -> None:
    """Keep ``verdict`` beside the model (atomically); a read-only cache only means the check runs again."""
    path = model_dir / VERDICTS
    try:
        try:
            verdicts = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            verdicts = {}
        verdicts[key] = asdict(verdict)
        fd, tmp = tempfile.mkstemp(prefix=f".{VERDICTS}.", dir=model_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(verdicts, handle, indent=1, sort_keys=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError:
        return


def judge(reference: tuple[Any, Sequence[Sequence[str]]], got: tuple[Any, Sequence[Sequence[str]]],
          where: str) -> Verdict:
    """Compare the check's float32 result with the int8 one."""
    import numpy as np

    ref_vectors, ref_themes = reference
    vectors, themes = got
    a, b = np.asarray(ref_vectors, dtype=np.float32), np.asarray(vectors, dtype=np.float32)
    cosines = (a * b).sum(axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    items = len(ref_themes)
    same = sum(sorted(x) == sorted(y) for x, y in zip(ref_themes, themes, strict=True)) / max(items, 1)
    cos_min = float(cosines.min()) if items else 1.0
    cos_mean = float(cosines.mean()) if items else 1.0
    ok = items > 0 and same >= SAME_THEMES and cos_mean >= MEAN_COSINE
    return Verdict(ok, items, round(same, 5), round(cos_min, 5), round(cos_mean, 5), where,
                   datetime.now(UTC).isoformat(timespec="seconds"))
