"""Messages a partner would forward: a checker of the product's own wording in every message, and its run over
every message the real archive gives (each subscription's digest and alerts, French and English, e-mail text,
HTML and Slack) — the end-to-end tests (test_arrival_e2e) run it on every message that arrives too.

What the checker reads: the message minus what is not the product's wording — each item's own title and summary
(they stay as published), the words quoted from an item after "mots :" / "words:" (checked to be the item's own),
addresses, links, names of sources and people, the subscription's introduction. What must not be left:

- an internal id: a theme id (``health-data``), a kind-of-act code (``actualite``, ``deliberation-recommandation``),
  a rule's name (``health-data acronym``), a classifier's key (``matched:``, ``decided by``, ``similar to``);
- a date written the ISO way (``2026-06-12``): dates are legal dates, written in words;
- a word of the other language among the product's words (``model``, ``words``, ``digest`` in a French message;
  ``mots``, ``modèle``, ``juin`` in an English one);
- a score below the subscription's threshold.
"""

from __future__ import annotations

import html as html_lib
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from watcher.legal import natures
from watcher.notify.render import short_summary
from watcher.util.text import fold

THEME_IDS = ("health-data", "dmuu-reprocessing", "personal-data", "health-products")
INTERNAL = re.compile(
    r"\b(?:" + "|".join(map(re.escape, THEME_IDS)) + r")\b|(?<![\w-])ai(?![\w-])|acronym|\bmatched\b|decided by|"
    r"similar to|\bidentifier\b|rules-only|\bcites_\w+|\bnor_base\b|\bjorftext\b|"
    r"\b(?:" + "|".join(re.escape(n.code) for n in natures.VOCABULARY  # a code that is no word of either language
                         if n.code not in (*n.fr.split(), *n.en.split())
                         and n.code not in ("decision", "avis", "rappel", "algorithme"))
    + r")\b")


def _lexicon(words: str) -> frozenset[str]:
    return frozenset(words.split())


ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
ENGLISH = _lexicon("""new text texts digest daily weekly since words cites cited model score scores matched read
record unsubscribe why also themes theme published by the of and with from acronym identifier news decree order
kind similar decided rules watch health data personal products reprocessing artificial january february march april may june july august september october november december
more receive your legal this reply stop""")
FRENCH = _lexicon("""nouveau nouveaux texte textes récapitulatif quotidien hebdomadaire depuis mots cite modèle
pourquoi aussi lire fiche désabonner publié publiée le la les du des au aux janvier février mars avril mai juin
juillet août septembre octobre novembre décembre actualité veille thèmes thème données santé personnelles produits
retraitement intelligence artificielle vous recevez ce message au titre de votre juridique pour ne plus recevoir
ces messages répondez-y en demandant autres dans archive confirmé par un juriste publié selon évalué""")
FRENCH_ALSO_ENGLISH = frozenset({"message", "messages", "intelligence", "archive", "source", "date", "article"})
SCORE = re.compile(r"(\d{1,3}) ?%|\b0[,.](\d\d)\b|\b1[,.]00\b")
MOTS = re.compile(r"(?:\bmots ?:|\bwords:)\s*([^;|\n·]+)")


@dataclass
class Problem:
    kind: str  # internal | date | language | score | quote
    found: str
    where: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.found!r} in «{self.where}»"


@dataclass
class Own:
    """What is not the product's wording: each item's own texts, and the names (sources, people, introductions)."""

    texts: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def folded(self) -> str:
        return fold("\n".join(self.texts))


@lru_cache(maxsize=8)
def archive_own(database: str) -> Own:
    """The titles and summaries (whole and as a message cuts them) of every item of an archive, longest first."""
    with sqlite3.connect(database) as db:
        rows = db.execute("select title, summary from items").fetchall()
    texts: set[str] = set()
    for title, summary in rows:
        for text in (title, summary, short_summary(summary or "")):
            flat = " ".join(str(text or "").split())
            if len(flat) >= 3:
                texts.add(flat)
    return Own(sorted(texts, key=len, reverse=True))


class _Visible(HTMLParser):
    """The text a reader sees in an HTML message (no tags, no attributes, no style)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("style", "script", "title"):
            self._skip += 1
        if tag in ("p", "div", "h1", "h2", "h3", "br", "section", "li"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "title"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return "".join(parser.parts)


def _masked(text: str, own: Own, names: Iterable[str]) -> str:
    flat = "\n".join(" ".join(line.split()) for line in text.splitlines())
    flat = re.sub(r"https?://\S+|mailto:\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", " ", flat)
    for text_of_item in own.texts:  # longest first; before the names, which titles may contain
        if text_of_item in flat:
            flat = flat.replace(text_of_item, " ")
    flat = re.sub(r"[^;—\n·]+…", lambda m: _cut_own(m.group(0), own), flat)
    flat = re.sub(r"«[^»]*»|“[^”]*”|`[^`]*`", " ", flat)  # a quoted error or command is not the product's wording
    for name in sorted({n for n in [*names, *own.names] if n}, key=len, reverse=True):
        flat = flat.replace(name, " ")
    return flat


def _cut_own(segment: str, own: Own) -> str:
    """The segment without the title or summary cut short that ends it ('[Watch] New text: Recherche en santé :
    la CNIL met à jour…' -> '[Watch] New text: ')."""
    starts = [0] + [m.end() for m in re.finditer(r": ", segment)]
    for start in starts:
        head = segment[start:].strip(" …").strip()
        if len(head) >= 8 and any(t.startswith(head) for t in own.texts):
            return segment[:start] + " "
    return segment


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-zÀ-ÿ’'-]+", text)


def problems_in(text: str, lang: str, own: Own, *, threshold: float = 0.5, names: Sequence[str] = ()) -> list[Problem]:
    """The problems of one rendering (plain text) of a message in ``lang``."""
    found: list[Problem] = []
    rest = _masked(text, own, names)
    folded_own = own.folded()
    for line in rest.splitlines():
        for quoted in MOTS.finditer(line):  # words quoted from the item: they must be the item's own
            for word in (w.strip(" «»\"“”.") for w in quoted.group(1).split(",")):
                if word and fold(word) not in folded_own:
                    found.append(Problem("quote", word, line.strip()))
            line = line.replace(quoted.group(1), " ")
        for hit in INTERNAL.finditer(line):
            found.append(Problem("internal", hit.group(0), line.strip()))
        for hit in ISO_DATE.finditer(line):
            found.append(Problem("date", hit.group(0), line.strip()))
        other = ENGLISH if lang == "fr" else FRENCH - FRENCH_ALSO_ENGLISH
        for word in _words(line):
            if word.lower().strip("’'-") in other:
                found.append(Problem("language", word, line.strip()))
        for hit in SCORE.finditer(line):
            value = (int(hit.group(1)) / 100 if hit.group(1) else
                     int(hit.group(2)) / 100 if hit.group(2) else 1.0)
            if value < threshold:
                found.append(Problem("score", hit.group(0), line.strip()))
    return found


def _forms(message: EmailMessage | Any) -> list[str]:
    """The readable forms of a message: an arrived e-mail (text, visible HTML, subject) or a rendered Message
    (text, visible HTML, Slack text and blocks, subject)."""
    if isinstance(message, EmailMessage):
        forms = [str(message["Subject"])]
        for kind in ("plain", "html"):
            part = message.get_body((kind,))
            if part is not None:
                content = str(part.get_content())  # type: ignore[attr-defined]
                forms.append(visible(content) if kind == "html" else content)
        return forms
    forms = [message.subject, message.text, visible(message.html) if message.html else ""]
    if message.slack:
        forms.append(_slack_text(message.slack))
    return [f for f in forms if f]


def _slack_text(payload: dict[str, Any]) -> str:
    parts = [str(payload.get("text") or "")]
    for block in payload.get("blocks", []):
        if "text" in block:
            parts.append(str(block["text"]["text"]))
        parts += [str(e.get("text") or "") for e in block.get("elements", [])]
    text = "\n".join(parts)
    text = re.sub(r"<(https?://[^|>]+)\|([^>]*)>", r"\2", text)  # a link shows its label
    return html_lib.unescape(text).replace("\u2217", "*").replace("\u02cd", "_").replace("\u223c", "~")


def message_problems(message: EmailMessage | Any, lang: str, own: Own, *, threshold: float = 0.5,
                     names: Sequence[str] = ()) -> list[Problem]:
    """Every problem of a message in every readable form."""
    return [p for form in _forms(message) for p in problems_in(form, lang, own, threshold=threshold, names=names)]


def slack_problems(payload: dict[str, Any], lang: str, own: Own, *, threshold: float = 0.5,
                   names: Sequence[str] = ()) -> list[Problem]:
    """The problems of a Slack payload as it arrived at the webhook."""
    return problems_in(_slack_text(payload), lang, own, threshold=threshold, names=names)


# -- the checker on its own: it finds what issue 20 found ---------------------------------------------------------

def test_the_checker_finds_ids_english_iso_dates_low_scores_and_words_not_in_the_item() -> None:
    own = Own(["Données de santé : sanction de 5 millions d’euros à l’encontre de la société IQVIA"])
    text = ("[Veille] Nouveau texte · 1 texte\n* Données de santé : sanction de 5 millions d’euros à l’encontre de "
            "la société IQVIA\n  actualite | cnil | 2026-06-12\n  Pourquoi : mots : health-data acronym ; "
            "modèle : 0,05\n  Aussi : personal-data\n  Read the text")
    kinds = sorted({(p.kind, p.found) for p in problems_in(text, "fr", own)})
    assert ("internal", "actualite") in kinds and ("internal", "personal-data") in kinds
    assert ("date", "2026-06-12") in kinds and ("score", "0,05") in kinds and ("language", "Read") in kinds
    assert ("quote", "health-data acronym") in kinds
    clean = ("[Veille] Nouveau texte : Données de santé : sanction de 5 millions d’euros à l’encontre de la société "
             "IQVIA\n  actualité | CNIL | 28 mai 2026\n  Pourquoi : mots : données de santé, IQVIA")
    assert problems_in(clean, "fr", own) == []
    english = "[Watch] New text: Données de santé : sanction\n  news | CNIL | 28 mai 2026\n  Why: mots : santé"
    assert {p.found for p in problems_in(english, "en", own)} >= {"mai", "mots"}


# -- every message the real archive gives ---------------------------------------------------------------------------

@dataclass
class Tally:
    messages: int = 0
    forms: int = 0
    problems: list[str] = field(default_factory=list)


def check_archive(database: Path, folder: Path) -> Tally:
    """Render, from ``database``, what each subscription (one per theme and language) would get: its digest of
    everything since 1 January 2026 and an instant alert for each of its first 40 items; check every form."""
    from datetime import UTC, date, datetime

    from archive_support import write_config

    from store import Store
    from watcher.config import load_config
    from watcher.notify.plan import since_digests
    from watcher.notify.service import load_alerts, renderer_for
    from watcher.search.similar import same_event_of

    subs = "".join(
        f'[[subscription]]\nname = "{theme}-{lang}"\nperson = "P"\nemail = "p@x.fr"\nthemes = ["{theme}"]\n'
        f'lang = "{lang}"\nchannel = "mail"\nmin_score = 0.5\n' for theme in (*THEME_IDS, "ai") for lang in ("fr", "en"))
    path = write_config(folder, database, public_url="https://archive.example.org",
                        extra='[channel.mail]\nkind = "email"\nhost = "127.0.0.1"\nfrom = "v@x.fr"\n' + subs)
    config, store = load_config(path), Store(database)
    alerts = load_alerts(config)
    renderer = renderer_for(config, alerts, same_event_of(store))
    own, names = archive_own(str(database)), [n for s in config.sources for n in (s.label, s.publisher, s.name)]
    tally = Tally()
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    for sub in alerts.subscriptions:
        found = since_digests(store, alerts, date(2026, 1, 1), now, [sub.name])
        ids = [m["item_id"] for _, matches in found for m in matches]
        items, themes = store.alert_items(ids), store.themes_of_items(ids)
        rendered = [renderer.message(key="k", sub=sub, kind="since", period="2026-01-01", items=items,
                                     themes=themes, now=now, unsubscribe="https://x.fr/desabonnement")]
        rendered += [renderer.message(key=f"i{n}", sub=sub, kind="instant", period="", items=[item],
                                      themes={item["id"]: themes[item["id"]]}, now=now)
                     for n, item in enumerate(items[:40])]
        for message in rendered:
            tally.messages += 1
            tally.forms += len(_forms(message))
            tally.problems += [f"{sub.name}: {p}" for p in message_problems(
                message, sub.lang, own, threshold=sub.min_score, names=names)]
    store.close()
    kinds = Counter(p.split(": ")[1] for p in tally.problems)
    print(f"\nwording checker on {database}: {tally.messages} messages, {tally.forms} forms (subject, text, HTML, "
          f"Slack), {len(tally.problems)} problem(s) {dict(kinds)}")
    return tally


def test_every_message_of_an_archive_tagged_by_the_rules_speaks_the_subscriber_s_language_only(
        tmp_path: Path, archive_built: Path) -> None:
    """The real archive's items tagged by the production rules (the hybrid classifier without its model: rule
    names such as 'health-data acronym', sources and authorities in the reasons)."""
    from archive_support import copy_archive

    from classifiers.decide.hybrid import HybridClassifier
    from store import Store
    from watcher.pipeline import classify_pending

    database = copy_archive(archive_built, tmp_path / "db")
    store = Store(database)
    store.db.execute("delete from item_themes")
    store.db.execute("delete from classifications")
    classify_pending(store, HybridClassifier, datetime_of("2026-08-20T08:00:00Z"))
    store.close()
    tally = check_archive(database, tmp_path)
    assert tally.messages > 100
    assert tally.problems == [], "\n".join(tally.problems[:40])


DEMO = Path(__file__).resolve().parents[1] / "var" / "demo" / "watcher.db"


@pytest.mark.skipif(not DEMO.exists(), reason="no demo archive: `make demo` (or `watcher demo`) makes one")
def test_every_message_of_the_demo_archive_speaks_the_subscriber_s_language_only(tmp_path: Path) -> None:
    """The demo's archive (`make demo`: the hybrid classifier with its model), read from a copy."""
    from archive_support import copy_archive

    tally = check_archive(copy_archive(DEMO, tmp_path / "db"), tmp_path)
    assert tally.messages > 100
    assert tally.problems == [], "\n".join(tally.problems[:40])


def datetime_of(stamp: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
