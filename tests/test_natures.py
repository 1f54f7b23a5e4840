"""The kinds-of-act vocabulary: raw values read, labels, parents, and docs/natures.md kept in step."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.schema import _CNIL_NATURES_2026, _NATURES_2026
from watcher.legal import natures
from watcher.legal.natures import label, normalise, resolve


@pytest.mark.parametrize(("raw", "item_id", "code"), [
    ("DECRET", "jorf:JORFTEXT000054245373", "decret"), ("ARRETE", "jorf:x", "arrete"), ("LOI", "jorf:x", "loi"),
    ("ORDONNANCE", "jorf:x", "ordonnance"), ("DELIBERATION", "jorf:x", "deliberation"),
    ("Recommandation/Lignes directrices", "cnil:CNILTEXT000054047151", "deliberation-recommandation"),
    ("Sanction", "cnil:CNILTEXT000000000001", "deliberation-sanction"),
    ("Avis", "cnil:CNILTEXT000000000001", "deliberation-avis"), ("AVIS", "jorf:x", "avis"),
    ("DELIBERATION", "cnil:CNILTEXT000000000001", "deliberation"),
    ("Something new", "cnil:CNILTEXT000000000001", "deliberation"),
    ("actualite", "cnil:https://cnil.fr/fr/x", "actualite"),  # the CNIL's news feed is not a délibération
    ("information de securite", "ansm-securite:x", "information-securite"), ("article", "vigier:1", "article"),
    ("algorithme", "hdh:x", "algorithme"), ("pétition", "x:1", "autre"), ("", "x:1", ""),
])
def test_raw_values_become_codes(raw: str, item_id: str, code: str) -> None:
    assert normalise(raw, item_id) == code


def test_what_people_write_resolves_and_labels_read_well() -> None:
    assert resolve("décret") == resolve("DECRET") == resolve("decret") == "decret"
    assert resolve("Délibération") == "deliberation" and resolve("deliberation-sanction") == "deliberation-sanction"
    assert resolve("sanction") == "deliberation-sanction" and resolve("nope") is None
    assert label("deliberation-recommandation", "fr") == "délibération CNIL – recommandation"
    assert label("decret", "en") == "decree (décret)" and label("information-securite") == "information de sécurité"
    assert label("autre", "fr", raw="pétition") == "pétition"


def test_every_code_is_unique_and_every_parent_exists() -> None:
    codes = [n.code for n in natures.VOCABULARY]
    assert len(codes) == len(set(codes))
    assert all(n.parent in codes for n in natures.VOCABULARY if n.parent)


def test_the_migration_snapshot_agrees_with_the_vocabulary() -> None:
    """m008's backfill is a frozen copy of the vocabulary of its day: every raw value it knows reads the same."""
    for raw, code in _NATURES_2026:
        assert normalise(raw, "jorf:x") == code, raw
    for raw, code in _CNIL_NATURES_2026:
        assert normalise(raw, "cnil:CNILTEXT000000000001") == code, raw


def test_docs_natures_md_is_up_to_date() -> None:
    doc = Path(__file__).parents[1] / "docs" / "natures.md"
    assert doc.read_text(encoding="utf-8") == natures.markdown(), "regenerate it: python -c 'from watcher.legal.natures import markdown; print(markdown(), end="")' > docs/natures.md"
