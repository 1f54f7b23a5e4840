"""Acts a text names and their official links: the extractor measured on the hand-checked table of real texts
(tests/fixtures/acts), and ``watcher acts`` as a person runs it (output lines, JSON, exit status)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from watcher.legal import acts
from watcher.legal.identifiers import find_all

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "tests" / "fixtures" / "acts" / "acts_table.jsonl"


def _table() -> list[dict]:
    return [json.loads(line) for line in TABLE.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_extractor_on_the_hand_checked_table_of_real_texts() -> None:
    """Precision >= 0.98 and recall >= 0.95 over the 261 real titles and summaries, labelled by reading."""
    rows = _table()
    assert len(rows) >= 200
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    errors = []
    for row in rows:
        expected = {(a["scheme"], a["value"]) for a in row["acts"]}
        found = {(i.scheme, i.value) for i in find_all(row["text"])}
        for scheme, _ in expected & found:
            tp[scheme] += 1
        for scheme, value in found - expected:
            fp[scheme] += 1
            errors.append(f"FP {row['id']} {scheme} {value}")
        for scheme, value in expected - found:
            fn[scheme] += 1
            errors.append(f"FN {row['id']} {scheme} {value}")
    print(f"\n{'scheme':<16}{'TP':>5}{'FP':>5}{'FN':>5}{'P':>8}{'R':>8}")
    for scheme in sorted(set(tp) | set(fp) | set(fn)):
        t, p, n = tp[scheme], fp[scheme], fn[scheme]
        print(f"{scheme:<16}{t:>5}{p:>5}{n:>5}{t / (t + p) if t + p else float('nan'):>8.3f}"
              f"{t / (t + n) if t + n else float('nan'):>8.3f}")
    total_tp, total_fp, total_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    precision, recall = total_tp / (total_tp + total_fp), total_tp / (total_tp + total_fn)
    print(f"{'all':<16}{total_tp:>5}{total_fp:>5}{total_fn:>5}{precision:>8.3f}{recall:>8.3f}")
    print("\n".join(errors))
    assert precision >= 0.98, errors
    assert recall >= 0.95, errors


@pytest.mark.parametrize(("text", "expected"), [
    # an act named again by its date after its number is the same act
    ("décrets n° 2020-1262 du 16 octobre 2020 et n° 2020-1310 du 29 octobre 2020. Le décret du 16 octobre 2020 "
     "susvisé est modifié", {("decret", "2020-1262"), ("decret", "2020-1310")}),
    # but a décret of another date is another act
    ("décret n° 2020-1262 du 16 octobre 2020 ; décret du 3 mars 2021 portant nomination",
     {("decret", "2020-1262"), ("decret_date", "2021-03-03")}),
    # another regulator's sanction numbers are not CNIL délibérations
    ("AMF, Commission des sanctions, SAN-2025-09 ; CNIL SAN-2023-006",
     {("deliberation", "SAN-2023-006")}),
    ("les arrêtés du 15 mai 2017, du 19 mars 2021 et du 29 mars 2021",
     {("arrete", "2017-05-15"), ("arrete", "2021-03-19"), ("arrete", "2021-03-29")}),
    ("Par arrêté du ministre de la santé du 24 septembre 2025, M. X est nommé", {("arrete", "2025-09-24")}),
    ("the Act of 6 January 1978 and law no. 2018-493 of 20 June 2018", {("loi_date", "1978-01-06"),
                                                                       ("loi", "2018-493")}),
    ("la loi 78-17 et le décret 2025-895", {("loi", "78-17"), ("decret", "2025-895")}),
])
def test_look_alikes_repeats_and_lists(text: str, expected: set[tuple[str, str]]) -> None:
    assert {(i.scheme, i.value) for i in find_all(text)} == expected


@pytest.mark.parametrize(("scheme", "value", "url"), [
    ("jorftext", "JORFTEXT000053457744", "https://www.legifrance.gouv.fr/jorf/id/JORFTEXT000053457744"),
    ("cnil", "CNILTEXT000054047151", "https://www.legifrance.gouv.fr/cnil/id/CNILTEXT000054047151"),
    ("eli", "https://www.legifrance.gouv.fr/eli/arrete/2026/6/12/INTE2615534A/jo/texte",
     "https://www.legifrance.gouv.fr/eli/arrete/2026/6/12/INTE2615534A/jo/texte"),
    ("celex", "32016R0679", "https://eur-lex.europa.eu/legal-content/FR/TXT/?uri=CELEX:32016R0679"),
    ("eu_regulation", "2016/679", "https://eur-lex.europa.eu/legal-content/FR/TXT/?uri=CELEX:32016R0679"),
    ("eu_regulation", "2024/1689", "https://eur-lex.europa.eu/legal-content/FR/TXT/?uri=CELEX:32024R1689"),
    ("eu_regulation", "1907/2006", "https://eur-lex.europa.eu/legal-content/FR/TXT/?uri=CELEX:32006R1907"),
    ("eu_directive", "95/46", "https://eur-lex.europa.eu/legal-content/FR/TXT/?uri=CELEX:31995L0046"),
    ("eu_directive", "2019/790", "https://eur-lex.europa.eu/legal-content/FR/TXT/?uri=CELEX:32019L0790"),
])
def test_direct_official_links(scheme: str, value: str, url: str) -> None:
    assert acts.official_url(scheme, value) == (url, False)


def test_numbers_resolve_through_the_archive_else_the_official_search() -> None:
    archive = {("decret", "2025-895"): "https://www.legifrance.gouv.fr/jorf/id/JORFTEXT000051860009"}
    url, search = acts.official_url("decret", "2025-895", lambda s, v: archive.get((s, v)))
    assert (url, search) == ("https://www.legifrance.gouv.fr/jorf/id/JORFTEXT000051860009", False)
    url, search = acts.official_url("decret", "2026-153", lambda s, v: archive.get((s, v)))
    assert search and url is not None and url.startswith("https://www.legifrance.gouv.fr/search/jorf?")
    assert "2026-153" in url
    url, search = acts.official_url("deliberation", "2025-132")
    assert search and url is not None and "/search/cnil?" in url
    # a date alone never resolves to one text, even with an archive
    url, search = acts.official_url("arrete", "2026-02-04", lambda s, v: "https://www.legifrance.gouv.fr/x")
    assert search


@pytest.mark.parametrize(("written", "pairs"), [
    ("décret 2025-895", [("decret", "2025-895")]),
    ("2024/1689", [("eu_regulation", "2024/1689"), ("eu_directive", "2024/1689")]),
    ("JORFTEXT000053457744", [("jorftext", "JORFTEXT000053457744")]),
    ("loi n° 78-17", [("loi", "78-17")]),
    ("arrêté du 4 février 2026", [("arrete", "2026-02-04")]),
    ("règlement (UE) 2016/679", [("eu_regulation", "2016/679")]),
    ("le RGPD", []),
    ("décret", []),
])
def test_acts_as_people_write_them_in_a_subscription(written: str, pairs: list[tuple[str, str]]) -> None:
    assert acts.parse_act(written) == pairs


def _watcher(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "watcher", *args], capture_output=True, text=True, cwd=cwd,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)


def test_watcher_acts_prints_each_act_with_its_official_url(tmp_path: Path) -> None:
    text = ("Le Journal officiel du 5 février 2026 publie l'arrêté du 4 février 2026 relatif à l'appel à "
            "candidatures prévu à l'article 4 du décret n° 2025-895 ; voir aussi le règlement (UE) 2016/679.")
    result = _watcher("acts", text, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert [(s, v) for s, v, _ in lines] == [("arrete", "2026-02-04"), ("decret", "2025-895"),
                                             ("eu_regulation", "2016/679")]
    assert lines[2][2] == "https://eur-lex.europa.eu/legal-content/FR/TXT/?uri=CELEX:32016R0679"
    assert lines[1][2].startswith("https://www.legifrance.gouv.fr/search/jorf?") and lines[1][2].endswith(
        "(search)")


def test_watcher_acts_json_and_exit_status(tmp_path: Path) -> None:
    result = _watcher("acts", "--json", "Vu la loi n° 78-17 et le CNILTEXT000054047151", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(o["scheme"], o["value"]) for o in objects] == [("loi", "78-17"), ("cnil", "CNILTEXT000054047151")]
    assert all({"scheme", "value", "url"} <= set(o) for o in objects)
    assert objects[1]["url"] == "https://www.legifrance.gouv.fr/cnil/id/CNILTEXT000054047151"
    assert objects[1]["search"] is False and objects[0]["search"] is True
    none = _watcher("acts", "Le RGPD et la loi SREN", cwd=tmp_path)
    assert none.returncode == 1
    assert none.stdout == "" and none.stderr.strip() == "no act named in this text"


def _ansm_titles() -> list[str]:
    data = json.loads((ROOT / "tests/fixtures/ansm/jarvis-app_infos-jour_items_excerpt_2026-07-25_and_2026-10-09.json")
                      .read_text(encoding="utf-8"))
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("titre"), str):
                found.append(node["titre"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(data)
    return found


def test_ansm_injonctions_and_police_decisions_reach_a_decision_subscription() -> None:
    """Real ANSM titles, filed by the feed as news: a `natures = ["decision"]` subscription gets the acts."""
    from watcher.legal import natures

    titles = _ansm_titles()
    injonction = next(t for t in titles if t.startswith("Injonction n°"))
    assert natures.normalise("actualite", "ansm:x", injonction) == "injonction"
    assert natures.accepts({"decision"}, natures.normalise("actualite", "ansm:x", injonction))
    police = "Décision de police sanitaire du 16/07/2026 - Retrait des produits présentés comme contenant des " \
             "agonistes du GLP-1 - Société AZRL LTD*"
    assert natures.normalise("actualite", "ansm:y", police) == "decision-police-sanitaire"
    # news about such decisions, and a firm's post on a décret, keep their kind
    assert natures.normalise("actualite", "ansm:z", "L’ANSM prend des mesures de police sanitaire à l’encontre "
                             "des sites internet vendant des aGLP-1") == "actualite"
    assert natures.normalise("article", "firm:1", "Décret n° 2025-895 : ce qui change") == "article"
    assert natures.normalise("DECISION", "jorf:x", "Décision n° 2026-1203 QPC du 5 juin 2026") == \
        "decision-conseil-constitutionnel"
