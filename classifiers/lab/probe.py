"""What ``watcher model`` reports: the CPU, the path the model takes on it and why, and how fast it runs there.

:func:`model_report` loads the model as the pipeline would (same settings), times the load, then runs a short
throughput probe on the real items bundled in ``classifiers/data/probe_items.jsonl``: the embedder alone and the
whole classifier (rules + model where the rules leave a theme open). A failure anywhere is part of the report (what
failed and how to pin a path), never an exception.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from classifiers.decide.head import DEFAULT_HEAD, Head
from classifiers.decide.hybrid import PIN_HINT, RULES_ONLY, HybridClassifier, ModelSettings, model_embedder
from classifiers.decide.rules import SourceProfile
from classifiers.decide.themes import load_themes
from classifiers.lab.evaluation import GOLD_SOURCES
from watcher.models import Item

PROBE_ITEMS = Path(__file__).parents[1] / "data" / "probe_items.jsonl"


@dataclass
class ModelReport:
    model: str
    capability: str = ""
    native_bf16: bool = False
    backend: str = ""
    precision: str = ""
    why: str = ""
    probes: list[dict[str, Any]] = field(default_factory=list)
    model_dir: str = ""
    version: str = ""
    load_seconds: float = 0.0
    items: int = 0
    embed_items_per_second: float = 0.0
    classify_items_per_second: float = 0.0
    classify_items_per_cpu_second: float = 0.0  # process CPU time: what the work costs whatever the load
    naive_items_per_cpu_second: float = 0.0  # plain fp32 transformers, one item at a time, every item embedded
    kernels: dict[str, int] = field(default_factory=dict)  # oneDNN kernels that ran (``capability.onednn_kernels``)
    model_consulted: int = 0
    peak_rss_mb: float = 0.0
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [f"model            {self.model}"]
        if self.capability:
            out += [f"CPU              {self.capability}", f"native bfloat16  {'yes' if self.native_bf16 else 'no'}"]
        if self.backend:
            out.append(f"path             {self.backend}, {self.precision}")
        if self.why:
            out.append(f"why              {self.why}")
            out += [f"  probe          {'ok  ' if p['ok'] else 'FAIL'} {p['kernel']}: {p['detail']}" for p in self.probes]
        if self.model_dir:
            out.append(f"model directory  {self.model_dir}")
        if self.version:
            out += [f"version          {self.version}", f"load time        {self.load_seconds:.1f} s"]
        if self.items:
            out += [f"throughput       {self.embed_items_per_second:.1f} items/s embedding alone, "
                    f"{self.classify_items_per_second:.1f} items/s whole classifier "
                    f"(model consulted on {self.model_consulted} of {self.items} real items)"]
            if self.naive_items_per_cpu_second:
                out.append(f"per CPU-second   {self.classify_items_per_cpu_second:.1f} items whole classifier, "
                           f"{self.naive_items_per_cpu_second:.1f} naive fp32 batch-of-one: "
                           f"{self.classify_items_per_cpu_second / self.naive_items_per_cpu_second:.2f}x")
        if self.kernels:
            out.append(f"oneDNN kernels   {' '.join(sorted(self.kernels))}")
        out.append(f"peak memory      {self.peak_rss_mb:.0f} MB")
        if self.error:
            out.append(f"FAILED           {self.error}; {PIN_HINT}")
        return out


def probe_items(path: Path = PROBE_ITEMS) -> list[Item]:
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [Item(id=r["id"], source=r["source"], url=r.get("url") or "", title=r["title"], summary=r.get("summary") or "",
                 lang=r.get("lang") or "fr") for r in rows]


def model_report(settings: ModelSettings, *, head: Path = DEFAULT_HEAD, items: int = 64,
                 profiles: Mapping[str, SourceProfile] = GOLD_SOURCES, naive: int = 16) -> ModelReport:
    """Load the model with ``settings``, describe the path taken and time it on ``items`` bundled real items (in
    the gold format, hence the gold source profiles)."""
    report = ModelReport(model=settings.model or "e5-small")
    if report.model == RULES_ONLY:
        report.why = "the model is off (model = \"none\" or --rules-only): rules and identifiers only"
        report.peak_rss_mb = _peak_rss_mb()
        return report
    try:
        _describe_cpu(report)
        embedder = _load(settings, head, report)
        _throughput(embedder, settings, head, probe_items()[:items], profiles, report)
        report.peak_rss_mb = _peak_rss_mb()  # the model path's own, before the naive baseline loads its model
        if naive and getattr(embedder, "model_dir", None):
            _naive(embedder, head, probe_items()[:items], naive, report)
    except Exception as exc:  # the report shows any failure; it is what the command is for
        report.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
    report.peak_rss_mb = report.peak_rss_mb or _peak_rss_mb()
    return report


def _describe_cpu(report: ModelReport) -> None:
    from classifiers.engine import capability

    found = capability.detect()
    report.capability, report.native_bf16 = found.line(), found.native_bf16


def _load(settings: ModelSettings, head: Path, report: ModelReport) -> Any:
    start = time.perf_counter()
    embedder = model_embedder(settings, head)  # fine-tuned by the head's adapter, as the classifier runs it
    report.load_seconds = round(time.perf_counter() - start, 2)
    report.version = embedder.version
    report.model_dir = str(getattr(embedder, "model_dir", "") or "")
    path = getattr(embedder, "path", None)
    if path is not None:
        report.backend, report.precision, report.why = path.backend, path.precision, path.why
        report.probes = [asdict(p) for p in path.probes]
    else:
        report.backend, report.why = type(embedder).__name__, "not a tuned backend: runs as loaded"
    return embedder


def _throughput(embedder: Any, settings: ModelSettings, head: Path, items: Sequence[Item],
                profiles: Mapping[str, SourceProfile], report: ModelReport) -> None:
    from classifiers.engine import capability

    texts = [item.classification_text() for item in items]
    report.kernels = {k: v for k, v in capability.onednn_kernels(lambda: embedder.embed(texts[:4])).items()
                      if not k.startswith(("eltwise", "softmax", "layer"))}  # also the warm-up
    start = time.perf_counter()
    embedder.embed(texts)
    report.embed_items_per_second = round(len(texts) / (time.perf_counter() - start), 1)
    classifier = HybridClassifier(load_themes(settings.themes or None), embedder_factory=lambda: embedder,
                                  head=Head.load(head), model_name=report.model, profiles=profiles)
    classifier.prototypes()
    start, cpu = time.perf_counter(), time.process_time()
    results = classifier.classify(items)
    report.classify_items_per_second = round(len(items) / (time.perf_counter() - start), 1)
    report.classify_items_per_cpu_second = round(len(items) / max(time.process_time() - cpu, 1e-9), 1)
    report.items = len(items)
    report.model_consulted = sum(r.model.startswith("consulted") for r in results)
    if classifier.degraded:
        report.error = classifier.degraded


def _naive(embedder: Any, head: Path, items: Sequence[Item], n: int, report: ModelReport) -> None:
    """The naive baseline on this CPU: plain fp32 transformers, one item at a time (every k-th of ``items``)."""
    from classifiers.engine.e5 import TransformersEmbedder

    sample = list(items[:: max(1, len(items) // n)])[:n]
    plain = TransformersEmbedder(embedder.model_dir, dtype="float32", sort=False, adapter=Head.load(head).adapter)
    plain.embed(["warm-up"])
    cpu = time.process_time()
    for item in sample:
        plain.embed([item.classification_text()])
    report.naive_items_per_cpu_second = round(len(sample) / max(time.process_time() - cpu, 1e-9), 1)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
