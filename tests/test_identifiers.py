"""watcher.legal.identifiers on real strings: titles of the gold set (tests/fixtures/gold/dev.jsonl, quoted here with
their gold id) and sentences of the recorded fixtures (file named in the case)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from watcher.legal import identifiers as ids
from watcher.util.text import is_rectificatif_nor

GOLD = Path(__file__).resolve().parent / "fixtures" / "gold" / "dev.jsonl"
ELI_INTE = "https://www.legifrance.gouv.fr/eli/arrete/2026/6/12/INTE2615534A/jo/texte"

CASES = [
    # (where the string comes from, text, expected {scheme: [values]})
    ("gold g0250", "Arrêté du 23 mars 2026 modifiant l'arrêté du 27 février 2020 pris en application du "
     "décret n° 2020-173 du 27 février 2020 relatif aux modalités de rémunération des membres des autorités "
     "administrative",
     {"arrete": ["2026-03-23", "2020-02-27"], "decret": ["2020-173"]}),
    ("gold g0350", "Décret n° 2021-217 du 25 février 2021 modifiant les décrets n° 2020-1262 du 16 octobre "
     "2020 et n° 2020-1310 du 29 octobre 2020 prescrivant les mesures générales nécessaires pour faire face "
     "à l'épidémi",
     {"decret": ["2021-217", "2020-1262", "2020-1310"]}),
    ("gold g0653", "LOI n° 2020-1576 du 14 décembre 2020 de financement de la sécurité sociale pour 2021 (1)",
     {"loi": ["2020-1576"]}),
    ("gold r0052", "Décret du 11 juin 2026 portant nomination (magistrature) - Mme LE GUENNEC (Elise)",
     {"decret_date": ["2026-06-11"]}),
    ("gold g0136", "Décret n° 2026-501 du 12 juin 2026 fixant la durée maximale de service des indemnités "
     "journalières", {"decret": ["2026-501"]}),
    ("gold g0573", "Arrêté du 11 juin 2026 modifiant l'arrêté du 14 janvier 2020 relatif à la prime de "
     "transition énergétique", {"arrete": ["2026-06-11", "2020-01-14"]}),
    ("gold g0634", "Arrêté du 3 décembre 2020 modifiant l'arrêté du 1er août 2019 relatif au concours commun",
     {"arrete": ["2020-12-03", "2019-08-01"]}),
    ("gold r0265", "CNIL (France) - SAN-2023-0076", {"deliberation": ["SAN-2023-0076"]}),
    ("gold g0376", "CNIL (France) - SAN-2023-006", {"deliberation": ["SAN-2023-006"]}),
    ("gold g0080", "Délibération n° 2026-020 du 5 mars 2026 portant avis sur un projet de décret portant "
     "application de l'article L. 37 du code électoral", {"deliberation": ["2026-020"]}),
    ("cnil/dila_CNILTEXT000054047151 TITRE", "Délibération 2026-047 du 2 avril 2026",
     {"deliberation": ["2026-047"]}),
    ("cnil/dila_CNILTEXT000054047151 visas",
     "Vu le règlement (UE) 2016/679 du Parlement européen et du Conseil du 27 avril 2016 relatif à la "
     "protection des personnes physiques à l’égard du traitement des données à caractère personnel et à la "
     "libre circulation de ces données, et abrogeant la directive 95/46/CE (règlement général sur la "
     "protection des données ou RGPD) ;",
     {"eu_regulation": ["2016/679"], "eu_directive": ["95/46"]}),
    ("cnil/dila_CNILTEXT000054047151 visas", "Vu la loi n° 78-17 du 6 janvier 1978 modifiée relative à "
     "l’informatique, aux fichiers et aux libertés, notamment son article 8-I-2°.b) ;", {"loi": ["78-17"]}),
    ("cnil/dila_CNILTEXT000054047151 article 1", "Article 1er : La délibération n°2008-198 du 9 juillet 2008 "
     "modifiant l’autorisation unique n°AU-005 relative à certains traitements",
     {"deliberation": ["2008-198"]}),
    ("jorf/…054245373 annex", "détaillés par la circulaire n°IOME2322937C du 29.04.2024.",
     {"nor": ["IOME2322937C"]}),
    ("jorf/…054245373 ID_ELI", ELI_INTE, {"eli": [ELI_INTE], "nor": ["INTE2615534A"]}),
    ("jorf/…054245240 sommaire", "<ID>JORFCONT000054245240</ID> <LIEN_TXT idtxt=\"JORFTEXT000054245243\"",
     {"jorfcont": ["JORFCONT000054245240"], "jorftext": ["JORFTEXT000054245243"]}),
    ("jorf/legifrss_atom_deliberation_cnil", "conformément à l'article 82 de la loi du 6 janvier 1978 "
     "modifiée.", {"loi_date": ["1978-01-06"]}),
    ("jorf/legifrss_atom_decret_sante", "l'article 10 bis de l'ordonnance n° 2020-346 du 27 mars 2020 "
     "portant mesures d'urgence", {"ordonnance": ["2020-346"]}),
    ("other/sofianebzz (EDPS)", "Under the AI Act (Regulation (EU) 2024/1689), the European Data Protection "
     "Supervisor", {"eu_regulation": ["2024/1689"]}),
    ("other/mariaearly", "Textes de référence Règlement (UE) 2023/1114 du 31 mai 2023 sur les marchés de "
     "crypto-actifs", {"eu_regulation": ["2023/1114"]}),
    ("gdprhub SAN-2020-014", "Decision of restricted formation no SAN-2020-014 of December 7, 2020",
     {"deliberation": ["SAN-2020-014"]}),
    ("SOURCES.md EUR-Lex item", "CELEX:32026L1472: Directive (EU) 2026/1472 of the European Parliament",
     {"celex": ["32026L1472"], "eu_directive": ["2026/1472"]}),
    ("SOURCES.md JORF", "rectificatif : MICA2518811A → MICA2518811Z",
     {"nor": ["MICA2518811A", "MICA2518811Z"]}),
    # spellings of the number sign
    ("variants", "Décret no 2025-895, décret n°2025-896, Décret n° 2025-897, décret nº 2025-898",
     {"decret": ["2025-895", "2025-896", "2025-897", "2025-898"]}),
    ("variants", "règlement (CE) n° 1907/2006 et Commission Implementing Regulation (EU) 2023/2854",
     {"eu_regulation": ["1907/2006", "2023/2854"]}),
    ("variants", "la LOI organique n° 2021-335 et l'ordonnance du 4 février 2026",
     {"loi": ["2021-335"], "ordonnance_date": ["2026-02-04"]}),
    ("variants", "http://legifrance.gouv.fr/eli/jo/2026/6/13/0137.",
     {"eli": ["https://www.legifrance.gouv.fr/eli/jo/2026/6/13/0137"]}),
    ("ECLI format", "CE, 19 juin 2019, ECLI:FR:CECHR:2019:425998.20190619.",
     {"ecli": ["ECLI:FR:CECHR:2019:425998.20190619"]}),
    ("older CNIL numbering", "délibération n° 04-017 du 8 avril 2004", {"deliberation": ["04-017"]}),
    # nothing to find
    ("no number", "le décret du 4 février 2026 n'est pas un numéro", {"decret_date": ["2026-02-04"]}),
    ("not identifiers", "non 2025-12, article 8-I-2°, 29.04.2024, l'AU-005, 3 404 communes", {}),
]


@pytest.mark.parametrize(("where", "text", "expected"), CASES,
                         ids=[f"{i}-{case[0]}" for i, case in enumerate(CASES)])
def test_by_scheme(where, text, expected):
    assert ids.by_scheme(text) == expected


def test_find_all_spans_and_order():
    text = "Vu la loi n° 78-17 et le règlement (UE) 2016/679 ; NOR : CNIS2611643X"
    found = ids.find_all(text)
    assert [(i.scheme, i.value) for i in found] == [("loi", "78-17"), ("eu_regulation", "2016/679"),
                                                    ("nor", "CNIS2611643X")]
    assert all(text[i.span[0]:i.span[1]] == i.value for i in found)


def test_duplicates_kept_once():
    assert ids.by_scheme("décret n° 2020-173 ... décret n°2020-173") == {"decret": ["2020-173"]}


def test_first_by_scheme_and_as_mapping():
    text = ("Décret n° 2021-217 du 25 février 2021 modifiant les décrets n° 2020-1262 du 16 octobre 2020 et "
            "n° 2020-1310 du 29 octobre 2020")
    assert ids.first_by_scheme(text) == {"decret": "2021-217"}
    assert ids.as_mapping(ids.by_scheme(text), prefix="cites_", exclude={"decret": "2021-217"}) == {
        "cites_decret": "2020-1262,2020-1310"}
    assert ids.as_mapping({"decret": ["2021-217"]}, prefix="cites_", exclude={"decret": "2021-217"}) == {}


@pytest.mark.parametrize(("nor", "valid", "rectificatif", "base"), [
    ("MICA2518811A", True, False, "MICA2518811"),
    ("MICA2518811Z", True, True, "MICA2518811"),
    ("CNIS2611643X", True, False, "CNIS2611643"),
    ("INTE261553A", False, False, ""),
    ("", False, False, ""),
])
def test_nor_helpers(nor, valid, rectificatif, base):
    assert ids.is_nor(nor) is valid
    assert is_rectificatif_nor(nor) is rectificatif
    assert ids.nor_base(nor) == base


def test_every_scheme_is_documented():
    found = {ident.scheme for _, text, _ in CASES for ident in ids.find_all(text)}
    assert found <= set(ids.SCHEMES)
    assert set(ids.SCHEMES) - found <= {"cnil"}
    assert ids.by_scheme("CNILTEXT000054047151") == {"cnil": ["CNILTEXT000054047151"]}


def test_gold_jorf_titles_yield_their_own_number():
    """Every gold title that starts with 'Décret n°' / 'LOI n°' / 'Arrêté du' yields that act's identifier as
    the first of its scheme."""
    heads = {"decret": re.compile(r"^Décret n° (\d+-\d+)"), "loi": re.compile(r"^LOI n° (\d+-\d+)")}
    checked = 0
    for line in GOLD.read_text(encoding="utf-8").splitlines():
        title = json.loads(line)["title"]
        for scheme, head in heads.items():
            if match := head.match(title):
                assert ids.first_by_scheme(title)[scheme] == match.group(1), title
                checked += 1
        if title.startswith("Arrêté du "):
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", ids.first_by_scheme(title)["arrete"]), title
            checked += 1
    assert checked >= 20
