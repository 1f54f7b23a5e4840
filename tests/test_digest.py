"""The digest a firm sends, on real items (a JORF arrêté, the CNIL recommandation, ANSM safety notices, décrets of a
legifrss feed): through a real SMTP server (aiosmtpd) and a real webhook endpoint, in French and in English, and
rendered by a real headless Chromium (the screenshot is kept as docs/digest.png)."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from test_notify_support import (
    HookServer,
    SmtpSink,
    email_channel,
    html_part,
    subscription,
    text_part,
    write_config,
)

from store import Store
from watcher.config import SourceConfig, load_config
from watcher.notify.service import deliver
from watcher.records import item_from_row, item_to_row
from watcher.search.similar import same_event_of
from watcher.sources import build, dila_cnil, dila_jorf

FIXTURES = Path(__file__).parent / "fixtures"
MORNING = datetime(2026, 6, 15, 6, 5, tzinfo=UTC)  # Monday 08:05 in Paris
STORED = "2026-06-14T20:00:00Z"
# the CNIL recommandation was published on 8 May: a two-year horizon keeps these real items news, not baseline
HORIZON = '[alerts]\nbaseline_horizon = "730d"\n'
SOURCES = """
[[source]]
name = "cnil-deliberations"
kind = "dila-cnil"
url = "https://echanges.dila.gouv.fr/OPENDATA/CNIL/"
label = "CNIL – délibérations"

[[source]]
name = "ansm-securite"
kind = "feed"
url = "https://ansm.sante.fr/rss/informations_securite"
label = "ANSM – informations de sécurité"
"""
UNSUBSCRIBE = 'unsubscribe = "https://cabinet.example/desabonnement?email={email}"\n'
INTRO = "Veille du pôle santé – données.\nÀ transmettre aux associés concernés."
CATNAT = "jorf:JORFTEXT000054245373"
CREDIT = "cnil:CNILTEXT000054047151"


def _rows() -> list[dict]:
    rows = [item_to_row(dila_jorf.parse_text((FIXTURES / "jorf" / name).read_bytes())) for name in
            ("jorfsimple_JORFTEXT000054245373_arrete_catnat_large_600KB.xml",)]
    rows.append(item_to_row(dila_cnil.parse_text(
        (FIXTURES / "cnil" / "dila_CNILTEXT000054047151_deliberation_2026-047_recommandation_credit.xml").read_bytes())))
    ansm = SourceConfig(name="ansm-securite", kind="feed", url="https://ansm.sante.fr/rss/informations_securite",
                        options={"nature": "information de securite"})
    feed = (FIXTURES / "reconstructed" / "reconstructed_ansm_rss_informations_securite.xml").read_bytes()
    rows += [item_to_row(i) for i in build(ansm).parse(feed, url=ansm.url)[:2]]
    return rows


def _store(path: Path, rows: list[dict]) -> Store:
    """The items with the themes the rules classifier gives them (real reasons); the CNIL recommandation's theme
    as the hybrid model writes it (the rules' evidence, then the model's probability and nearest example)."""
    from classifiers.decide.hybrid import HybridClassifier

    store = Store(load_config(path).database)
    store.upsert_items(rows, STORED)
    tagged = HybridClassifier().classify([item_from_row(r) for r in rows])
    for row, result in zip(rows, tagged, strict=True):
        themes = [{"theme": t.theme, "score": t.score, "reason": t.reason, "origin": t.origin, "model": "rules",
                   "model_version": "1"} for t in result.tags]
        if row["id"] == CREDIT:
            themes = [{**themes[0], "score": 0.93, "origin": "model", "reason": themes[0]["reason"] + (
                "; model: 0.91; similar to: « Violations de données personnelles : bilan de 5 années de RGPD » (0.88)")},
                {"theme": "ai", "score": 0.62, "reason": "model: 0.62", "origin": "model", "model": "hybrid",
                 "model_version": "1"}]
        store.save_themes(row["id"], row["content_hash"], themes, now=STORED, model="rules", model_version="1")
    return store


@pytest.fixture
def sink() -> SmtpSink:
    with SmtpSink() as server:
        yield server


def _digest(tmp_path: Path, sink: SmtpSink, lang: str) -> tuple[str, str, object]:
    path = write_config(tmp_path, HORIZON + SOURCES + email_channel(sink.port).rstrip("\n") + "\n" + UNSUBSCRIBE + subscription(
        "pole-sante-hebdo", themes=["health-products", "personal-data", "health-data"], cadence="weekly",
        at="08:00", lang=lang, introduction=INTRO, email="claire@cabinet-test.fr"))
    store = _store(path, _rows())
    outcome = deliver(store, load_config(path), datetime(2026, 6, 14, 21, 0, tzinfo=UTC))  # matched on Sunday
    assert outcome.report.sent == []
    outcome = deliver(store, load_config(path), MORNING)
    store.close()
    assert len(outcome.report.sent) == 1, outcome
    (mail,) = sink.messages
    return text_part(mail), html_part(mail), mail


def test_a_french_weekly_digest_reads_like_a_firm_s(tmp_path: Path, sink: SmtpSink) -> None:
    text, html, mail = _digest(tmp_path, sink, "fr")
    assert str(mail["Subject"]) == "[Veille] Récapitulatif hebdomadaire du 15 juin 2026 : 3 textes"  # type: ignore[index]
    head = text.split("==", 1)[0]
    assert "Récapitulatif hebdomadaire du 15 juin 2026" in head and "3 textes" in head
    assert INTRO.splitlines()[1] in head and "À transmettre" in html
    assert text.count("Délibération n° 2026-047") == 1 and html.count(f'data-item="{CREDIT}"') == 1  # once
    # the legal date and the kind of act, in French; the source by its label; the JO's catnat arrêté has no theme
    assert "délibération CNIL – recommandation | CNIL – délibérations | 2 avril 2026" in text
    assert "information de sécurité | ANSM – informations de sécurité | 6 octobre 2026" in text
    assert "catastrophe naturelle" not in text
    # short reasons in French: the item's own words the rules found (a score only where nothing else explains)
    assert "Pourquoi : mots : traitements de données\n" in text.replace("\r\n", "\n")
    assert "Pourquoi : mots : officines\n" in text.replace("\r\n", "\n")
    assert "Pourquoi : publié par : ANSM – informations de sécurité\n" in text.replace("\r\n", "\n")  # its label
    assert "autorité" not in text and "similar" not in text and "matched" not in text and "0,99" not in text
    # each item under its first theme; its other themes as labels
    credit = text.index("Délibération n° 2026-047")
    assert text.rindex("== ", 0, credit) == text.index("== Protection des données personnelles")
    assert "Aussi : Intelligence artificielle" in text[credit:]  # a theme it was not subscribed to: a label
    assert "pole-sante-hebdo" not in text + html and "X-Watcher-Subscription" not in str(mail)  # no internal name


def test_unsubscribe_is_visible_and_one_click(tmp_path: Path, sink: SmtpSink) -> None:
    text, html, mail = _digest(tmp_path, sink, "fr")
    link = "https://cabinet.example/desabonnement?email=claire%40cabinet-test.fr"
    assert f"Se désabonner : {link}" in text and f'<a href="{link}">Se désabonner</a>' in html
    assert str(mail["List-Unsubscribe"]).strip() == f"<{link}>, <mailto:veille@cabinet-test.fr?subject=desabonnement>"  # type: ignore[index]
    assert str(mail["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"  # type: ignore[index]


def test_an_english_digest_is_english_throughout(tmp_path: Path, sink: SmtpSink) -> None:
    text, _, mail = _digest(tmp_path, sink, "en")
    assert str(mail["Subject"]) == "[Watch] Weekly digest of 15 June 2026: 3 texts"  # type: ignore[index]
    assert "CNIL deliberation – recommendation | CNIL – délibérations | 2 April 2026" in text
    assert "Why: words: traitements de données" in text
    assert "Why: published by: ANSM – informations de sécurité" in text
    assert "Pourquoi" not in text and "mots" not in text and "Unsubscribe: https://cabinet.example/" in text


def test_the_slack_digest_has_the_same_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = HookServer()
    monkeypatch.setenv("WATCHER_TEST_SLACK_WEBHOOK", "")
    with hook.running() as url:
        monkeypatch.setenv("WATCHER_TEST_SLACK_WEBHOOK", url)
        path = write_config(tmp_path, HORIZON + SOURCES + '[channel.team]\nkind = "slack"\nwebhook_env = "WATCHER_TEST_SLACK_WEBHOOK"\n'
                            'timeout = 5\n' + subscription("equipe", channel="team", slack="#veille", cadence="daily",
                                                           themes=["personal-data", "health-products"],
                                                           introduction=INTRO))
        store = _store(path, _rows())
        deliver(store, load_config(path), datetime(2026, 6, 14, 21, 0, tzinfo=UTC))
        deliver(store, load_config(path), MORNING)
        store.close()
    (post,) = hook.posts
    texts = [b["text"]["text"] for b in post["blocks"] if "text" in b] + [
        e["text"] for b in post["blocks"] for e in b.get("elements", [])]
    everything = "\n".join(texts)
    assert post["blocks"][0]["text"]["text"] == "[Veille] Récapitulatif quotidien du 15 juin 2026 : 3 textes"
    assert "Veille du pôle santé" in texts[1] and "4" in everything
    assert "mots : traitements de données" in everything
    assert "2 avril 2026" in everything
    assert "equipe" not in everything


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian package chromium not installed")
def test_a_real_browser_renders_the_digest(tmp_path: Path, sink: SmtpSink) -> None:
    """Headless Chromium lays the HTML part out: it must produce a page (the screenshot), and its DOM must hold
    the header, the introduction, every item once and the unsubscribe link."""
    _, html, _ = _digest(tmp_path, sink, "fr")
    page = tmp_path / "digest.html"
    page.write_text(html, encoding="utf-8")
    shot = tmp_path / "digest.png"
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run([*common, "--window-size=900,1000", f"--screenshot={shot}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], check=True, capture_output=True, timeout=120,
                         text=True).stdout
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Récapitulatif hebdomadaire du 15 juin 2026" in dom and "Se désabonner" in dom
    assert dom.count('class="item"') == 3
    folder = os.environ.get("WATCHER_SCREENSHOTS")  # `WATCHER_SCREENSHOTS=docs`: refresh the README's picture
    if folder:
        shutil.copyfile(shot, Path(folder) / "digest.png")


def _axis(*weights: float, dim: int = 384) -> np.ndarray:
    """A hand-made unit vector with ``weights`` on the first axes (no model: the cosines are known in advance)."""
    vector = np.zeros(dim, dtype=np.float32)
    vector[: len(weights)] = weights
    return vector / np.linalg.norm(vector)


def _grouped_digest(tmp_path: Path, sink: SmtpSink, vectors: dict[int, np.ndarray]) -> tuple[str, str, object, list]:
    """The French weekly digest with embeddings ``vectors`` stored for the items of ``_rows()`` (by index) and the
    grouping by event the commands pass to ``deliver``."""
    path = write_config(tmp_path, HORIZON + SOURCES + email_channel(sink.port).rstrip("\n") + "\n" + subscription(
        "pole-sante-hebdo", themes=["health-products", "personal-data"], cadence="weekly", at="08:00",
        email="claire@cabinet-test.fr"))
    rows = _rows()
    store = _store(path, rows)
    store.vectors.save([(rows[i]["id"], v) for i, v in vectors.items()], model="hand-made/unit-axes")
    for now in (datetime(2026, 6, 14, 21, 0, tzinfo=UTC), MORNING):
        outcome = deliver(store, load_config(path), now, same_event=same_event_of(store))
    store.close()
    assert len(outcome.report.sent) == 1, outcome
    (mail,) = sink.messages
    return text_part(mail).replace("\r\n", "\n"), html_part(mail), mail, rows


def test_items_on_the_same_event_are_one_entry_with_the_other_source_under_it(tmp_path: Path,
                                                                                sink: SmtpSink) -> None:
    # the CNIL recommandation (row 1, 2 April) and the first ANSM notice (row 2, October) at cosine 0.98: one event
    # for the digest, under the earlier text (as a firm's post would be under the CNIL release it comments on)
    text, html, mail, rows = _grouped_digest(tmp_path, sink, {1: _axis(1.0), 2: _axis(1.0, 0.2), 3: _axis(0, 1.0)})
    credit, notice = rows[1], rows[2]
    assert str(mail["Subject"]).endswith(": 3 textes")  # type: ignore[index]  # three texts, two entries
    assert html.count('class="item"') == 2 and html.count('class="same-event"') == 1
    assert f'<p class="same-event" data-item="{notice["id"]}">aussi : ANSM – informations de sécurité — ' in html
    entry = text[text.index("* Délibération n° 2026-047"):]
    entry = entry[: entry.find("\n* ")] if "\n* " in entry else entry
    title = " ".join(notice["title"].split())
    assert f"aussi : ANSM – informations de sécurité — {title} | 8 octobre 2026\n    {notice['url']}" in entry
    assert text.count(title) == 1 and f"\n* {title}" not in text  # not a separate entry
    assert text.rindex("== ", 0, text.index(credit["title"][:30])) == text.index("== Protection des données")


def test_a_digest_without_a_same_event_pair_is_unchanged(tmp_path: Path, sink: SmtpSink) -> None:
    orthogonal = {1: _axis(1.0), 2: _axis(0, 1.0), 3: _axis(0, 0, 1.0)}
    text, html, mail, _ = _grouped_digest(tmp_path, sink, orthogonal)
    assert str(mail["Subject"]).endswith(": 3 textes") and "same-event" not in html  # type: ignore[index]
    assert html.count('class="item"') == 3 and "aussi :" not in text
