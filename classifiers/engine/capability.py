"""What this CPU can do for the model, found out at load time, never assumed.

Three facts decide how :class:`classifiers.engine.e5.FastE5Embedder` runs the encoder:

- :func:`detect` reads the CPU's instruction-set flags (``/proc/cpuinfo`` on Linux) and ATen's dispatch level
  (``torch.backends.cpu.get_cpu_capability()``: ``DEFAULT``, ``AVX2``, ``AVX512``...);
- :func:`probe_linear` runs each optimised kernel once, on a tiny fixed input, and compares it with the plain
  float32 computation: a kernel that raises (oneDNN's "could not create a primitive descriptor" on a CPU without
  the instructions it was built for) or disagrees is not used;
- :func:`choose` turns the ``model_precision`` setting (``auto``, ``float32``, ``bfloat16`` or ``int8``) into a
  :class:`ModelPath`: bfloat16 only where the CPU does it natively (AVX512-BF16 or AMX on x86, BF16 on Arm) **and**
  oneDNN builds a bfloat16 kernel on it; elsewhere int8 (``classifiers.engine.int8``) where oneDNN's int8 kernel
  runs and agrees and a quality check against float32 is at hand (the embedder runs it, once per machine, and falls
  back to float32 if it fails); float32 everywhere else. ``ONEDNN_MAX_CPU_ISA=AVX2`` (read by oneDNN itself) makes
  an AVX-512 machine refuse the bfloat16 kernels as an AVX2 CPU does, so the probes see it.

Everything here is pure torch and cheap (a few milliseconds): it runs once per loaded model.
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Precision = Literal["auto", "float32", "bfloat16", "int8"]
PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16", "int8")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX512-BF16, x86 AMX, Arm BF16
SHOWN_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8",
               "avx_vnni", "asimd", "sve", "bf16", "i8mm")
AGREEMENT = 0.999  # cosine to the plain float32 result a kernel must reach on the probe input


@dataclass(frozen=True)
class Capability:
    """The CPU as the model sees it."""

    machine: str
    cpu: str
    aten: str  # ATen's dispatch level (honours ATEN_CPU_CAPABILITY)
    flags: frozenset[str]

    @property
    def native_bf16(self) -> bool:
        """The CPU has bfloat16 arithmetic instructions (not only conversions)."""
        return any(flag in self.flags for flag in NATIVE_BF16_FLAGS)

    def line(self) -> str:
        shown = " ".join(f for f in SHOWN_FLAGS if f in self.flags) or "none of note"
        return f"{self.cpu or self.machine} ({self.machine}); ATen {self.aten}; flags: {shown}"


@dataclass(frozen=True)
class Probe:
    kernel: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class ModelPath:
    """How the encoder runs, and why."""

    backend: str  # "torch" (or "onnx-int8" / "rules-only" for other embedders)
    precision: str  # "float32" | "bfloat16" | "int8"
    fused_gelu: bool
    why: str
    capability: Capability | None = None
    probes: tuple[Probe, ...] = field(default_factory=tuple)

    @property
    def tag(self) -> str:
        """The short form stored in the tags' model version: ``torch-bf16+fused``, ``torch-fp32``..."""
        short = {"float32": "fp32", "bfloat16": "bf16"}.get(self.precision, self.precision)
        return f"{self.backend}-{short}" + ("+fused" if self.fused_gelu else "")


def detect() -> Capability:
    """This CPU's flags and ATen's dispatch level."""
    import torch

    flags, name = _cpuinfo(Path("/proc/cpuinfo"))
    return Capability(machine=platform.machine(), cpu=name, aten=str(torch.backends.cpu.get_cpu_capability()),
                      flags=flags)


@functools.cache
def _cpuinfo(path: Path) -> tuple[frozenset[str], str]:
    """(flags, model name) of the first processor in ``/proc/cpuinfo``; empty where there is none."""
    flags: set[str] = set()
    name = ""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset(), platform.processor()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features") and not flags:  # x86 "flags", Arm "Features"
            flags = set(value.split())
        elif key == "model name" and not name:
            name = value.strip()
    return frozenset(flags), name


def onednn_linear() -> Callable[..., Any] | None:
    """torch's oneDNN fused linear (+ pointwise) op, the one Inductor emits; ``None`` when torch lacks it."""
    import torch

    op = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
    return op if op is not None and torch.backends.mkldnn.is_available() else None


def probe_linear(op: Callable[..., Any] | None, precision: str, activation: str = "gelu") -> Probe:
    """Run ``op`` once on a tiny fixed input in ``precision`` and compare it with plain float32 torch."""
    import torch
    import torch.nn.functional as F

    kernel = f"oneDNN linear+{activation} ({precision})"
    if op is None:
        return Probe(kernel, False, "not available in this torch build")
    generator = torch.Generator().manual_seed(8)
    x = torch.randn(24, 384, generator=generator)
    weight = torch.randn(96, 384, generator=generator) * 0.05
    bias = torch.randn(96, generator=generator) * 0.05
    expected = F.linear(x, weight, bias)
    expected = F.gelu(expected) if activation == "gelu" else expected
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
    try:
        with torch.inference_mode():
            got = op(x.to(dtype), weight.to(dtype), bias.to(dtype), activation, [], "none").float()
    except Exception as exc:  # a kernel oneDNN cannot build on this CPU raises RuntimeError; any failure counts
        return Probe(kernel, False, f"raised {type(exc).__name__}: {_first_line(exc)}")
    if tuple(got.shape) != tuple(expected.shape):
        return Probe(kernel, False, f"wrong shape {tuple(got.shape)}")
    cosine = float(F.cosine_similarity(got.flatten(), expected.flatten(), dim=0))
    if not cosine >= AGREEMENT:  # also catches NaN
        return Probe(kernel, False, f"disagrees with plain float32 (cosine {cosine:.5f})")
    return Probe(kernel, True, f"agrees with plain float32 (cosine {cosine:.6f})")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].split(". Run workload")[0][:160] if lines else "(no message)"


def choose(requested: str, capability: Capability, op: Callable[..., Any] | None, *,
           int8_probe: Callable[[], Probe] | None = None, int8_checked: bool = False) -> ModelPath:
    """The precision and kernels to use for ``requested`` (``auto``, ``float32``, ``bfloat16`` or ``int8``) on this
    CPU. ``int8_probe`` runs oneDNN's int8 kernel once (``classifiers.engine.int8.probe``); ``auto`` considers int8
    only when ``int8_checked`` (a quality check against float32 will run before it is used)."""
    if requested not in PRECISIONS:
        raise ValueError(f"model_precision must be one of {', '.join(PRECISIONS)}, not {requested!r}")
    probes: list[Probe] = []
    if requested == "auto":
        precision, why = _auto_precision(capability, op, probes, int8_probe, int8_checked)
    else:
        precision, why = requested, f"pinned by model_precision = {requested!r}"
        if requested == "bfloat16" and not capability.native_bf16:
            why += " (this CPU has no native bfloat16: expect it to be slower than float32)"
        if requested == "int8":
            int8 = int8_probe() if int8_probe is not None else Probe("oneDNN int8 linear", False, "not available")
            probes.append(int8)
            if not int8.ok:
                precision, why = "float32", f"{why}, but oneDNN's int8 kernel failed ({int8.detail}): float32"
    fused = probe_linear(op, "float32" if precision == "int8" else precision)
    probes.append(fused)
    if not fused.ok:
        why += f"; fused linear+GELU not used ({fused.detail})"
    return ModelPath("torch", precision, fused.ok, why, capability, tuple(probes))


def _auto_precision(capability: Capability, op: Callable[..., Any] | None, probes: list[Probe],
                    int8_probe: Callable[[], Probe] | None, int8_checked: bool) -> tuple[str, str]:
    if not capability.native_bf16:
        why = "auto: no native bfloat16 on this CPU (no AVX512-BF16, AMX or Arm BF16)"
    else:
        plain = probe_linear(op, "bfloat16", activation="none")
        probes.append(plain)
        if plain.ok:
            return "bfloat16", "auto: native bfloat16 (CPU flags and oneDNN's bfloat16 kernel agree)"
        why = f"auto: the CPU reports native bfloat16 but oneDNN's bfloat16 kernel failed ({plain.detail})"
    if int8_probe is None or not int8_checked:
        return "float32", f"{why}; int8 not tried (no quality check against float32 here)"
    int8 = int8_probe()
    probes.append(int8)
    if not int8.ok:
        return "float32", f"{why}; oneDNN's int8 kernel failed ({int8.detail})"
    return "int8", f"{why}; oneDNN int8 (its kernel agrees with float32)"


def onednn_kernels(run: Callable[[], Any]) -> dict[str, int]:
    """Call ``run`` with oneDNN's verbose output on and return how often each kernel ran (``primitive:impl`` from
    its ``exec`` lines: ``inner_product:brg_matmul:avx512_core_bf16``, ``matmul:gemm:jit``...; reorders left
    out). The lines go to file descriptor 1, which is redirected meanwhile. The ISA in a kernel's name is the one
    oneDNN ran, caps included (``ONEDNN_MAX_CPU_ISA``); ``gemm:jit`` names no ISA: ``jit_isa`` says which."""
    import os
    import sys
    import tempfile

    import torch

    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                run()
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode(errors="replace")
    seen: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split(",")
        if line.startswith("onednn_verbose") and "exec" in parts:
            i = parts.index("exec")
            if len(parts) > i + 3 and parts[i + 2] != "reorder":
                name = f"{parts[i + 2]}:{parts[i + 3]}"
                seen[name] = seen.get(name, 0) + 1
        elif line.startswith("onednn_verbose") and ",info,cpu,isa:" in line:
            seen["jit_isa:" + line.split("isa:", 1)[1].strip()] = 0
    return seen
