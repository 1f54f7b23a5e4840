"""Theme classifiers: taxonomy, keyword baseline, rules (table-driven, no model), the hybrid with a fake embedder,
laziness of the model, the store's safety net and corrections, and one test with the real embedder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from classifiers.decide import rules as rules_module
from classifiers.decide.base import Classifier
from classifiers.decide.head import DEFAULT_HEAD, Head
from classifiers.decide.hybrid import HybridClassifier, _align, head_path
from classifiers.decide.keyword import KeywordClassifier, find_keywords
from classifiers.decide.rules import SourceProfile
from classifiers.decide.themes import load_themes
from classifiers.lab.evaluation import GOLD_SOURCES
from store import Store
from tests.model_support import untuned_head
from watcher.models import Item
from watcher.pipeline import classify_pending
from watcher.records import item_to_row
from watcher.util.errors import ConfigError

THEMES = ("health-data", "ai", "dmuu-reprocessing", "personal-data", "health-products")


def item(title: str, summary: str = "", source: str = "other", url: str = "https://example.org/x", **kw) -> Item:
    return Item(id=kw.pop("id", title[:40]), source=source, url=url, title=title, summary=summary, **kw)


def themes_of(classifier: Classifier, it: Item) -> set[str]:
    return set(classifier.classify([it])[0].themes)


def rules() -> HybridClassifier:
    """The rules alone, knowing the sources the way the gold format names them (the test items do too)."""
    return HybridClassifier(profiles=GOLD_SOURCES)


# -- taxonomy ------------------------------------------------------------------------------------------------------
def test_default_taxonomy_has_the_five_themes_with_french_and_english_descriptions():
    taxonomy = load_themes()
    assert taxonomy.ids == THEMES
    for theme in taxonomy:
        assert theme.description_fr and theme.description_en and theme.label_fr and theme.keywords
    assert "2025-895" in taxonomy.get("dmuu-reprocessing").description_fr


@pytest.mark.parametrize("body, message", [
    ('[[theme]]\nid = "x"\nlabel_fr = "X"\nlabel_en = "X"\ndescription_fr = "d"\n', "description_en"),
    ('[[theme]]\nid = "x"\nlabel_fr = "X"\nlabel_en = "X"\ndescription_fr = "d"\ndescription_en = "d"\ncolour = 1\n',
     "colour"),
    ('title = "no themes"\n', "no [[theme]]"),
])
def test_a_bad_themes_file_is_an_error_naming_the_file_and_the_key(tmp_path: Path, body: str, message: str):
    path = tmp_path / "themes.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_themes(path)
    assert message in str(err.value) and "themes.toml" in str(err.value)


# -- keyword baseline ----------------------------------------------------------------------------------------------
def test_keyword_baseline_matches_whole_words_ignoring_accents_and_acronyms_in_capitals():
    assert find_keywords(["IA", "données de santé"], "J'ai lu : l'IA et les DONNEES DE SANTE") == [
        "IA", "données de santé"]
    assert find_keywords(["IA"], "j'ai vu la via ferrata") == []
    baseline = KeywordClassifier()
    tags = baseline.classify([item("La CNIL publie un guide RGPD")])[0].tags
    assert [t.theme for t in tags] == ["personal-data"] and tags[0].reason.startswith("matched: ")
    assert [r.tags for r in baseline.classify([item("Appel à candidatures")])] == [[]]


# -- rules, table-driven -------------------------------------------------------------------------------------------
CASES = [
    # DMUU: from its words, its identifiers (décret n° 2025-895, MDR article 17) and in English
    ("Retraitement des dispositifs médicaux à usage unique : appel à candidatures des établissements de santé", "",
     "other", {"dmuu-reprocessing", "health-products"}),
    ("Reprocessing of single-use medical devices: Commission report", "", "other",
     {"dmuu-reprocessing", "health-products"}),
    ("Arrêté du 4 février 2026 fixant la liste des établissements retenus",
     "Vu le décret n° 2025-895 du 4 septembre 2025 relatif à l'expérimentation", "jorf",
     {"dmuu-reprocessing", "health-products"}),
    ("Lignes directrices de la Commission sur l'article 17 du règlement (UE) 2017/745", "", "other",
     {"dmuu-reprocessing", "health-products"}),
    ("Retraitement des eaux usées : nouvelles normes", "", "jorf", set()),
    # legal identifiers without a topical word
    ("Lignes directrices sur l'application du règlement (UE) 2024/1689", "", "other", {"ai"}),
    ("Arrêt de la Cour sur l'article 82 du règlement 2016/679", "", "legal_press", {"personal-data"}),
    ("Décision du 12 juin 2026 modifiant la décision fixant les prix de spécialités pharmaceutiques remboursables",
     "", "jorf", {"health-products"}),
    # themes from words
    ("Health Data Hub : un algorithme de jointure des tables du SNDS", "", "other", {"health-data"}),
    ("La CNIL sanctionne un hébergeur de données de santé", "", "cnil", {"health-data", "personal-data"}),
    ("IA et santé : la HAS publie un guide sur l'intelligence artificielle en contexte de soins", "", "other",
     {"ai"}),
    ("Rupture de stock : tensions d'approvisionnement en amoxicilline", "", "other", {"health-products"}),
    ("Depakote 500 mg, comprimé gastro-résistant", "", "ansm", {"health-products"}),
    ("Cookies : la CNIL met en demeure des éditeurs de sites", "", "other", {"personal-data"}),
    ("Logiciels d'analyse vidéo dans les communes : la CNIL prononce des rappels à l'ordre", "", "cnil",
     {"ai", "personal-data"}),
    ("Agentic AI: opportunities and risks for data protection officers", "", "other", {"ai", "personal-data"}),
    ("Cyberattaque chez un prestataire : des données clients volées et publiées", "", "other", {"personal-data"}),
    # health in a data-protection item: named health data counts, a passing mention of health does not
    ("Applications mobiles : la CNIL publie ses recommandations",
     "Pour nous orienter, faire nos achats ou suivre notre santé, les applications accèdent à nos données "
     "personnelles.", "cnil", {"personal-data"}),
    ("Entrepôts : la CNIL précise les règles", "Les informations relatives à la santé des patients hébergées…",
     "cnil", {"health-data", "personal-data"}),
    ("Recherches cliniques : la CNIL et l'ANSM simplifient les formalités des promoteurs", "", "other",
     {"health-data", "personal-data", "health-products"}),
    ("Cloud : l'Arcep encadre les frais de transfert de données entre fournisseurs", "", "other", set()),
    ("Transferts de données vers les États-Unis : nouvelle décision d'adéquation", "", "other", {"personal-data"}),
    # off-topic by the guideline
    ("Vincent VILLETTE est nommé secrétaire général de la CNIL", "", "cnil", set()),
    ("Arrêté du 11 juin 2026 portant nomination au conseil d'administration de l'Agence du numérique en santé", "",
     "jorf", set()),
    ("L'AMF et l'ACPR publient leur rapport sur la lutte contre le blanchiment", "", "other", set()),
    ("Nvidia's new AI chip doubles inference speed", "", "other", set()),
]


@pytest.mark.parametrize("title, summary, source, expected", CASES)
def test_rules(title: str, summary: str, source: str, expected: set[str]):
    assert themes_of(rules(), item(title, summary, source)) == expected


def test_rules_use_the_identifiers_the_normaliser_stored():
    it = item("Texte n° 12", identifiers={"celex": "32024R1689"})
    assert themes_of(rules(), it) == {"ai"}


def test_reasons_say_what_matched_and_which_act_is_cited():
    tags = rules().classify([item("Arrêté relatif à l'expérimentation",
                                  "pris en application du décret n° 2025-895")])[0].tags
    dmuu = next(t for t in tags if t.theme == "dmuu-reprocessing")
    assert "2025-895" in dmuu.reason and 0.5 < dmuu.score <= 1.0 and dmuu.origin == "rule"
    tag = rules().classify([item("Retraitement des dispositifs médicaux à usage unique")])[0].tags[0]
    assert "matched: " in tag.reason and "retraitement" in tag.reason


def test_scope_comes_back_with_the_tags_of_each_untagged_item():
    hybrid = rules()
    results = hybrid.classify([
        item("Vincent VILLETTE est nommé secrétaire général de la CNIL", source="cnil"),
        item("Arrêté du 3 juin 2026", source="jorf", authority="Ministère de la santé et de l'accès aux soins"),
        item("Arrêté portant nomination", url="https://ansm.sante.fr/informations-de-securite/x"),
        item("Flash conjoncture", url="https://www.tresor.economie.gouv.fr/x"),
        item("La CNIL publie un guide RGPD", source="cnil"),
    ])
    assert [r.scope for r in results] == ["source: CNIL", "authority: ministère de la santé", "site: ansm.sante.fr",
                                          None, None]  # the last one is tagged: no scope needed
    assert results[4].themes == ["personal-data"] and results[0].model == "not consulted: rules only"


def test_authority_and_cnil_deliberation_nature_are_rules_too():
    jo = item("Délibération n° 2026-047 du 2 avril 2026", source="jorf",
              authority="Commission nationale de l'informatique et des libertés")
    assert "personal-data" in themes_of(rules(), jo)
    research = item("Délibération n° 2026-101", source="dila-cnil", extra={"nature_delib": "Autorisation de recherche"})
    assert "health-data" in themes_of(rules(), research)


# -- the hybrid with a fake embedder -------------------------------------------------------------------------------
class FakeEmbedder:
    """Deterministic unit vectors from a hash of the text (no model)."""

    name, version, dim = "fake", "1", 384

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: Sequence[str], *, kind: str = "query", batch_size: int = 32) -> np.ndarray:
        self.calls += 1
        rows = [np.random.default_rng(abs(hash((kind, t))) % 2**32).normal(size=self.dim) for t in texts]
        out = np.array(rows, dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_the_model_is_loaded_lazily_once_and_not_at_all_without_items():
    built: list[FakeEmbedder] = []

    def factory() -> FakeEmbedder:
        built.append(FakeEmbedder())
        return built[-1]

    hybrid = HybridClassifier(embedder_factory=factory, head=untuned_head(), model_name="fake", consult_all=True)
    assert built == [] and hybrid.classify([]) == [] and built == []
    tags = hybrid.classify([item("Rappel de lots de Doliprane 500 mg, comprimé", source="ansm")])[0].tags
    hybrid.classify([item("Cookies : la CNIL sanctionne", source="cnil")])
    assert len(built) == 1
    tag = next(t for t in tags if t.theme == "health-products")
    assert tag.origin == "model" and "model: " in tag.reason and "similar to: «" in tag.reason
    assert tag.model == "hybrid/fake" and untuned_head().version in tag.model_version


def test_classify_pending_with_the_hybrid_flags_in_scope_items_and_keeps_corrections(tmp_path: Path):
    store = Store(tmp_path / "w.db")
    items = [item("Vincent VILLETTE est nommé secrétaire général de la CNIL", source="cnil", id="a"),
             item("La CNIL publie un guide RGPD pour les développeurs", source="cnil", id="b")]
    store.upsert_items([item_to_row(i) for i in items], now="2026-06-01T00:00:00+00:00")
    from datetime import UTC, datetime

    now = datetime(2026, 6, 1, tzinfo=UTC)
    report = classify_pending(store, rules, now)
    assert (report.classified, report.tagged, report.in_scope_untagged) == (2, 1, 1)
    assert [r["id"] for r in store.untagged_in_scope()] == ["a"]
    assert store.untagged_in_scope()[0]["scope_reason"] == "source: CNIL"
    store.add_label("b", "personal-data", "remove", now="2026-06-02")
    store.add_label("b", "ai", "add", now="2026-06-02")
    store.save_themes("b", "changed", [{"theme": "personal-data", "score": 0.9, "reason": "x", "origin": "rule",
                                        "model": "m", "model_version": "v"}], now="2026-06-03", model="m",
                      model_version="v")
    assert [t["theme"] for t in store.themes_of("b")] == ["ai"]


def test_head_round_trips_and_aligns_to_another_taxonomy(tmp_path: Path):
    head = Head.load(DEFAULT_HEAD)
    assert head.theme_ids == THEMES and head.weights.shape == (5, 384)
    assert not head.has_head[THEMES.index("dmuu-reprocessing")]
    head.save(tmp_path / "h.npz")
    again = Head.load(tmp_path / "h.npz")
    assert again.version == head.version
    sub = _align(head, ("ai", "new-theme"))
    assert sub.theme_ids == ("ai", "new-theme") and list(sub.has_head) == [True, False]
    assert set(sub.exemplar_theme.tolist()) <= {0}


def test_a_retrained_head_next_to_the_database_is_preferred(tmp_path: Path):
    assert head_path(tmp_path / "w.db") == DEFAULT_HEAD == head_path(None) == head_path(":memory:")
    Head.load().save(tmp_path / "head.npz")
    assert head_path(tmp_path / "w.db") == tmp_path / "head.npz"


# -- the real model ------------------------------------------------------------------------------------------------
@pytest.mark.cpu_path
@pytest.mark.model
def test_real_embedder_on_real_items(fixtures_dir: Path):
    from classifiers.engine.e5 import load_embedder
    from classifiers.lab.evaluation import load_gold

    examples = {e.item.id: e for e in load_gold(fixtures_dir / "gold" / "dev.jsonl")}
    chosen = ["g0230", "g0600", "r0263", "g0642", "g0444", "g0080", "g0591"]
    hybrid = HybridClassifier(embedder_factory=lambda: load_embedder("e5-small", adapter=Head.load().adapter), head=Head.load(),
                              model_name="e5-small", profiles=GOLD_SOURCES, consult_all=True)
    results = hybrid.classify([examples[i].item for i in chosen])
    for item_id, result in zip(chosen, results, strict=True):
        assert set(result.themes) == set(examples[item_id].themes), item_id
    assert all("model: " in t.reason for result in results for t in result.tags)
    dmuu = hybrid.classify([item("Expérimentation du retraitement des dispositifs médicaux à usage unique")])[0]
    assert "dmuu-reprocessing" in dmuu.themes and not hybrid.degraded


# -- source profiles: production (sources.toml) and evaluation (gold names) judge alike -----------------------------
GOLD_TO_CONFIGURED = {"cnil": "cnil", "edpb": "edpb", "ansm": "ansm-actualites", "health_data_hub": "health-data-hub",
                      "jorf": "jorf", "dila-jorf": "jorf", "dila-cnil": "cnil-deliberations",
                      "legal_press": "vigier-avocats"}


def test_gold_source_names_get_the_profile_of_the_matching_configured_source():
    from watcher.app import source_profiles
    from watcher.config import load_config

    configured = source_profiles(load_config(Path(__file__).resolve().parents[1] / "sources.toml"))
    for gold_name, name in GOLD_TO_CONFIGURED.items():
        gold, prod = GOLD_SOURCES[gold_name], configured[name]
        assert (gold.default_theme, gold.legal) == (prod.default_theme, prod.legal), gold_name
        if gold.default_theme:
            assert gold.label == prod.label, gold_name  # the same "source: ..." reason
    assert {p.default_theme for p in configured.values()} <= set(THEMES) | {""}


def test_rules_read_the_source_keys_not_the_source_name():
    text = dict(title="Nvidia's new AI chip doubles inference speed", url="https://example.org/a")
    unknown, legal = Item(id="a", source="blog", **text), Item(id="a", source="my-law-firm", **text)
    profiles = {"my-law-firm": SourceProfile("Cabinet", legal=True)}
    assert themes_of(HybridClassifier(profiles=profiles), unknown) == set()  # AI without a legal angle
    assert themes_of(HybridClassifier(profiles=profiles), legal) == {"ai"}
    guide = Item(id="g", source="dpa", url="https://dpa.example/x", title="Nomination du secrétaire général")
    (result,) = HybridClassifier(profiles={"dpa": SourceProfile("DPA", "personal-data", True)}).classify([guide])
    assert result.tags == [] and result.scope == "source: DPA"


# -- the model can fail; classification cannot -----------------------------------------------------------------------
class BrokenEmbedder(FakeEmbedder):
    """Loads, then fails the way a kernel that cannot run on this CPU does."""

    def embed(self, texts: Sequence[str], *, kind: str = "query", batch_size: int = 32) -> np.ndarray:
        raise RuntimeError("could not create a primitive descriptor for the inner product forward propagation "
                           "primitive. Run workload with environment variable ONEDNN_VERBOSE=all")


def _cannot_load() -> FakeEmbedder:
    raise MemoryError("cannot allocate 465 MB")


@pytest.mark.parametrize("factory, failure", [(BrokenEmbedder, "RuntimeError: could not create a primitive"),
                                              (_cannot_load, "MemoryError: cannot allocate")])
def test_a_failing_model_leaves_rules_and_identifiers_running(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                              factory, failure: str):
    items = [item("La CNIL publie un guide RGPD", source="cnil", id="a"),
             item("Texte n° 12", identifiers={"celex": "32024R1689"}, id="b"),
             item("Vincent VILLETTE est nommé secrétaire général de la CNIL", source="cnil", id="c")]
    store = Store(tmp_path / "w.db")
    store.upsert_items([item_to_row(i) for i in items], now="2026-06-01T00:00:00+00:00")
    hybrid = HybridClassifier(embedder_factory=factory, head=untuned_head(), model_name="e5-small",
                              profiles=GOLD_SOURCES, consult_all=True)
    from datetime import UTC, datetime

    with caplog.at_level("ERROR"):
        report = classify_pending(store, lambda: hybrid, datetime(2026, 6, 1, tzinfo=UTC))
        hybrid.classify(items)  # later batches go straight to the rules
    assert (report.classified, report.tagged, report.in_scope_untagged, report.model_consulted) == (3, 2, 1, 0)
    assert report.degraded.startswith(failure) and "rules-only (model failed: " + failure in report.model
    [line] = [r.getMessage() for r in caplog.records]  # one line, once
    assert failure in line and "rules and identifiers only" in line and 'model_precision = "float32"' in line
    assert [t["theme"] for t in store.themes_of("b")] == ["ai"]
    assert store.themes_of("b")[0]["model_version"].startswith(f"rules-{rules_module.VERSION} rules-only (model failed: ")
    store.close()
    from click.testing import CliRunner

    from watcher.cli import main

    (tmp_path / "sources.toml").write_text('[settings]\ndatabase = "w.db"\n', encoding="utf-8")
    shown = CliRunner().invoke(main, ["--config", str(tmp_path / "sources.toml"), "sources"])
    assert shown.exit_code == 0 and "theme model: DEGRADED" in shown.output and failure in shown.output


def test_an_unreadable_head_degrades_too(tmp_path: Path):
    from classifiers.decide.hybrid import ModelSettings, build_classifier

    (tmp_path / "head.npz").write_bytes(b"not a zip")
    hybrid = build_classifier(ModelSettings(), tmp_path / "head.npz", GOLD_SOURCES)
    assert hybrid.degraded and "cannot read the head" in hybrid.version
    assert hybrid.classify([item("La CNIL publie un guide RGPD", source="cnil")])[0].themes == ["personal-data"]
    assert not build_classifier(ModelSettings(model="none"), tmp_path / "head.npz").uses_model


# -- the model only where the rules leave a decision open -----------------------------------------------------------
def test_gating_embeds_only_undecided_items_and_gives_exactly_the_themes_of_the_full_hybrid(fixtures_dir: Path):
    from classifiers.lab.evaluation import load_gold

    items = [e.item for e in load_gold(fixtures_dir / "gold" / "dev.jsonl")][:160]
    seen: list[str] = []

    class Counting(FakeEmbedder):
        def embed(self, texts: Sequence[str], *, kind: str = "query", batch_size: int = 32) -> np.ndarray:
            seen.extend(texts if kind == "query" else [])
            return super().embed(texts, kind=kind, batch_size=batch_size)

    head = replace(untuned_head(), rule_weight=np.full(5, 3.0, np.float32))  # rules beyond ±3 decide
    gated = HybridClassifier(embedder_factory=Counting, head=head, model_name="fake", profiles=GOLD_SOURCES)
    full = HybridClassifier(embedder_factory=FakeEmbedder, head=head, model_name="fake",
                            profiles=GOLD_SOURCES, consult_all=True)
    results, reference = gated.classify(items), full.classify(items)
    assert [r.themes for r in results] == [r.themes for r in reference]
    consulted = [r for r in results if r.model.startswith("consulted: rules leave ")]
    decided = [r for r in results if r.model == "not consulted: rules decisive"]
    assert len(consulted) + len(decided) == len(items) and decided and consulted
    assert len(seen) == len(consulted) < len(items)
    assert all(t.origin == "rule" for r in decided for t in r.tags)


# -- reference acts and the summary of a reference-only title --------------------------------------------------------
def test_a_reference_act_decides_and_reads_as_a_lawyer_would_cite_it():
    found = rules().classify([item("Appel à candidatures", "pris en application du décret n° 2025-895")])[0]
    dmuu = next(t for t in found.tags if t.theme == "dmuu-reprocessing")
    assert dmuu.reason.startswith("cite le décret n° 2025-895 (") and dmuu.reason.endswith("decided by: identifier")
    ehds = rules().classify([item("Texte n° 3", "vu le règlement (UE) 2025/327 du Parlement européen")])[0]
    assert ehds.themes == ["health-data"] and "cite le règlement (UE) 2025/327" in ehds.tags[0].reason
    # an act known by its date gives its theme only with words of its title after the date
    order = "Vu l'arrêté du 4 février 2026 relatif à l'expérimentation du retraitement des dispositifs médicaux"
    assert "dmuu-reprocessing" in themes_of(rules(), item("Décision n° 12", order))
    assert themes_of(rules(), item("Décision n° 12", "Vu l'arrêté du 4 février 2026 relatif aux concours")) == set()


def test_a_reference_act_named_by_a_date_alone_is_refused_naming_the_file_and_theme(tmp_path: Path):
    from classifiers.decide.themes import DEFAULT_THEMES

    path = tmp_path / "themes.toml"
    path.write_text(DEFAULT_THEMES.read_text(encoding="utf-8").replace(
        'title_words = ["expérimentation", "dispositifs médicaux", "retraitement", "usage unique"]\n', ""),
        encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_themes(path)
    assert str(path) in str(err.value) and "dmuu-reprocessing" in str(err.value) and "only a date" in str(err.value)


def test_where_the_title_is_only_an_authority_and_a_number_the_summary_decides():
    summary = "The DPA found that the bank's automated decision on credit breached the law."
    assert themes_of(rules(), item("AEPD (Spain) - PS/00001/2020", summary, "court_eu")) == {"ai", "personal-data"}
    # under a title that says something, a medium word of the summary alone does not give the theme
    assert themes_of(rules(), item("A bank's credit scoring before the court", summary, "court_eu")) == {
        "personal-data"}
