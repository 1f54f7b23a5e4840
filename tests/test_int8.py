"""The int8 path (``classifiers.engine.int8``): chosen on a CPU without native bfloat16, used on ``auto`` only after
its check against float32 on real items (cached beside the model with the CPU line), pinned with
``model_precision = "int8"``, and its vectors stored apart from float32's.

The auto cases stand on a CPU without native bfloat16 (``capability.detect`` answers for one: the flags this
machine has minus its bfloat16 ones), so they run the int8 choice on any x86 machine; the kernels are real.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from classifiers.engine import capability, int8
from classifiers.engine.capability import Capability, Probe
from classifiers.engine.int8 import QualityCheck, Verdict

pytest.importorskip("torch")


def _verdict(**changes: Any) -> Verdict:
    base = Verdict(True, 10, 1.0, 0.95, 0.97, "cpu", "2026-01-01T00:00:00+00:00")
    return replace(base, **changes)


def test_judge_needs_identical_themes_on_995_per_mille_and_close_vectors() -> None:
    a = np.eye(4, dtype=np.float32)[:, :3][:3]
    themes = [["ai"], [], ["health-data", "personal-data"]]
    assert int8.judge((a, themes), (a, [["ai"], [], ["personal-data", "health-data"]]), "cpu").ok  # order is no matter
    assert not int8.judge((a, themes), (a, [["ai"], ["ai"], themes[2]]), "cpu").ok  # 2/3 identical
    far = np.roll(a, 1, axis=1)  # orthogonal vectors, same themes
    verdict = int8.judge((a, themes), (far, themes), "cpu")
    assert not verdict.ok and verdict.cos_mean == 0.0
    assert not int8.judge((a[:0], []), (a[:0], []), "cpu").ok  # nothing checked is no pass


def test_verdicts_are_kept_beside_the_model_by_key(tmp_path: Path) -> None:
    assert int8.cached(tmp_path, "k1") is None
    int8.store(tmp_path, "k1", _verdict())
    int8.store(tmp_path, "k2", _verdict(ok=False, same_themes=0.9))
    assert int8.cached(tmp_path, "k1") == _verdict() and not int8.cached(tmp_path, "k2").ok  # type: ignore[union-attr]
    (tmp_path / int8.VERDICTS).write_text("{not json", encoding="utf-8")
    assert int8.cached(tmp_path, "k1") is None  # a damaged file: the check runs again
    int8.store(tmp_path / "missing-dir", "k1", _verdict())  # a cache that cannot be written is no error


def _caps(flags: frozenset[str]) -> Capability:
    return Capability("x86_64", "test CPU", "AVX2", flags)


def test_auto_tries_int8_only_without_native_bf16_and_with_a_check() -> None:
    ok = lambda: Probe("int8", True, "agrees")  # noqa: E731
    failing = lambda: Probe("int8", False, "raised RuntimeError: no kernel")  # noqa: E731
    avx2 = _caps(frozenset({"avx2", "fma"}))
    assert capability.choose("auto", avx2, None, int8_probe=ok, int8_checked=True).precision == "int8"
    unchecked = capability.choose("auto", avx2, None, int8_probe=ok, int8_checked=False)
    assert unchecked.precision == "float32" and "no quality check" in unchecked.why
    broken = capability.choose("auto", avx2, None, int8_probe=failing, int8_checked=True)
    assert broken.precision == "float32" and "no kernel" in broken.why
    pinned = capability.choose("int8", avx2, None, int8_probe=failing)
    assert pinned.precision == "float32" and "int8 kernel failed" in pinned.why
    assert capability.choose("int8", avx2, None, int8_probe=ok).tag == "torch-int8"
    with pytest.raises(ValueError, match="int8"):
        capability.choose("int4", avx2, None)


def test_the_int8_kernel_runs_through_onednn_and_agrees() -> None:
    if not int8.available():
        pytest.skip("this torch has no oneDNN quantised engine")
    probe = int8.probe()
    assert probe.ok, probe.detail
    import torch

    assert torch.backends.quantized.engine == "onednn"  # never fbgemm/x86: their kernels ignore the caps


# -- with the real model ------------------------------------------------------------------------------------------
ITEMS = [
    ("ansm", "Phosphalugel, suspension buvable en sachet dose", "Le laboratoire Opella Healthcare France procède, "
     "en accord avec l’ANSM au rappel des lots mentionnés ci-dessous de la spécialité Phosphalugel"),
    ("cnil", "Demandes de crédit : comprendre l’utilisation de vos données et vos droits", "Acheter un logement, "
     "financer un achat… demander un crédit implique de partager de nombreuses données personnelles."),
    ("legal_press", "Appel à candidatures : l’OICV lance un programme sous la forme d’un TechSprint",
     "Actualité Intelligence artificielle Europe & international : prototype d’outil pédagogique"),
    ("cnil", "CNIL (France) - SAN-2023-0076", "The French DPA (CNIL) authorised a request made by l’Institut du "
     "cerveau to undertake automated processing of personal data from national health databases."),
]


@pytest.fixture()
def own_model_dir(model_dir: Path, tmp_path: Path) -> Path:
    """The converted model seen through a directory of this test's own (symlinks), so verdicts land here."""
    mine = tmp_path / model_dir.name
    mine.mkdir()
    for path in model_dir.iterdir():
        if path.name != int8.VERDICTS:
            (mine / path.name).symlink_to(path)
    return mine


@pytest.fixture()
def no_native_bf16(monkeypatch: pytest.MonkeyPatch) -> Capability:
    real = capability.detect()
    without = replace(real, flags=frozenset(real.flags - set(capability.NATIVE_BF16_FLAGS)))
    monkeypatch.setattr(capability, "detect", lambda: without)
    return without


def _check(runs: list[str], *, drift: bool = False) -> QualityCheck:
    from classifiers.decide.head import Head
    from classifiers.decide.quality import int8_check
    from classifiers.decide.themes import load_themes
    from watcher.models import Item

    items = [Item(id=f"c{n}", source=s, url="", title=t, summary=x) for n, (s, t, x) in enumerate(ITEMS)]
    real = int8_check(Head.load(), load_themes(), items)

    def run(embedder: Any) -> tuple[Any, list[list[str]]]:
        runs.append(embedder.version)
        vectors, themes = real.run(embedder)
        if drift and len(runs) > 1:  # the int8 run: pretend it gave another theme on every item
            themes = [[*t, "dmuu-reprocessing"] for t in themes]
        return vectors, themes

    return QualityCheck(real.key, run)


@pytest.mark.model
def test_auto_uses_int8_once_checked_and_caches_the_verdict(own_model_dir: Path, no_native_bf16: Capability) -> None:
    from classifiers.decide.head import Head
    from classifiers.engine.e5 import E5_NAME, FastE5Embedder, TransformersEmbedder
    from watcher.search.similar import vector_model

    if not int8.available():
        pytest.skip("this torch has no oneDNN quantised engine")
    adapter = Head.load().adapter
    runs: list[str] = []
    embedder = FastE5Embedder(own_model_dir, adapter=adapter, int8_check=_check(runs))
    assert embedder.path.precision == "int8" and "check passed" in embedder.path.why, embedder.path.why
    assert len(runs) == 2 and "-torch-fp32" in runs[0] and embedder.version.endswith("-torch-int8-max256")
    stored = json.loads((own_model_dir / int8.VERDICTS).read_text(encoding="utf-8"))
    (verdict,) = stored.values()
    assert verdict["ok"] and verdict["items"] == len(ITEMS) and no_native_bf16.line() in verdict["made_on"]
    texts = [f"{t}\n{x}" for _s, t, x in ITEMS]
    plain = TransformersEmbedder(own_model_dir, adapter=adapter)
    cosines = np.einsum("ij,ij->i", embedder.embed(texts), plain.embed(texts))
    assert cosines.min() >= 0.9, cosines
    # int8 vectors are stored and searched apart from float32's
    assert vector_model(embedder) == f"{E5_NAME}+{adapter.version}+int8"  # type: ignore[union-attr]
    assert vector_model(FastE5Embedder(own_model_dir, adapter=adapter, precision="float32")) == \
        f"{E5_NAME}+{adapter.version}"  # type: ignore[union-attr]
    again = FastE5Embedder(own_model_dir, adapter=adapter, int8_check=_check(runs))
    assert len(runs) == 2 and again.path.precision == "int8"  # the cached verdict: no second check


@pytest.mark.model
def test_auto_keeps_float32_when_int8_changes_the_themes(own_model_dir: Path, no_native_bf16: Capability) -> None:
    from classifiers.decide.head import Head
    from classifiers.engine.e5 import FastE5Embedder

    if not int8.available():
        pytest.skip("this torch has no oneDNN quantised engine")
    runs: list[str] = []
    embedder = FastE5Embedder(own_model_dir, adapter=Head.load().adapter, int8_check=_check(runs, drift=True))
    assert embedder.path.precision == "float32" and "check FAILED" in embedder.path.why and "float32 kept" in \
        embedder.path.why
    assert "-torch-fp32" in embedder.version and "+int8" not in embedder.name
    assert embedder.embed(["Décret relatif aux données de santé"]).shape == (1, 384)


@pytest.mark.model
def test_int8_can_be_pinned_from_the_environment(model_dir: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from watcher.cli import main

    if not int8.available():
        pytest.skip("this torch has no oneDNN quantised engine")
    config = tmp_path / "sources.toml"
    config.write_text(f'[settings]\nmodel_cache = "{model_dir.parent}"\n', encoding="utf-8")
    result = CliRunner(env={"WATCHER_MODEL_PRECISION": "int8"}).invoke(
        main, ["--config", str(config), "model", "--json", "--items", "8"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["precision"] == "int8" and report["why"].startswith("pinned by model_precision = 'int8'")
    assert "-torch-int8" in report["version"] and not report["error"]
