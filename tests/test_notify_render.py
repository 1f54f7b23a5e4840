"""Rendering: escaping for each medium, grouping, languages, Slack's limits, Datasette links."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from datasette.utils import tilde_encode
from test_notify_support import cnil_items

from watcher.config.alerts import Cadence, Subscription
from watcher.notify.render import Renderer, mrkdwn, slack_link

NOW = datetime(2026, 6, 17, 6, 0, tzinfo=UTC)


def _sub(lang: str = "fr", themes: tuple[str, ...] = ("health-data", "personal-data")) -> Subscription:
    return Subscription(name="s", person="Alice", themes=frozenset(themes), channel="mail", email="a@x.fr",
                        cadence=Cadence(kind="daily"), lang=lang)


def _themes(items: list[dict], *tags: tuple[str, float]) -> dict[str, list[dict]]:
    return {i["id"]: [{"theme": t, "score": s, "reason": f"raison {t} <b>", "origin": "model"} for t, s in tags]
            for i in items}


@pytest.mark.parametrize("text", ["<!channel>", "<!here|here>", "<@U024BE7LH>", "<#C123|general>",
                                  "*gras*", "_penché_", "~barré~", "`code`", "a & b", "@channel", "@here"])
def test_mrkdwn_makes_source_text_inert(text: str) -> None:
    out = mrkdwn(text)
    assert "<" not in out and ">" not in out and not re.search(r"[*_~`]", out)
    assert not re.search(r"(?<!\u200b)@(channel|here)\b", out)


def test_slack_links_only_http_and_never_break_out() -> None:
    assert slack_link("javascript:alert(1)", "x") == "x"
    assert slack_link("https://a.fr/p?x=1&y=2|<!channel>", "t*") == "<https://a.fr/p?x=1&amp;y=2%7C%3C!channel%3E|t\u2217>"


def test_html_is_autoescaped_and_text_is_plain() -> None:
    item = cnil_items(limit=1)[0] | {"title": '<script>alert("x")</script> & <img src=x onerror=y>',
                                     "url": 'https://cnil.fr/a"onmouseover="x'}
    message = Renderer(public_url="https://archive.example.org").message(
        key="k", sub=_sub(), kind="daily", period="2026-06-17", items=[item], themes=_themes([item], ("health-data", .9)),
        now=NOW)
    assert "<script>" not in message.html and "<img" not in message.html and "<b>" not in message.html
    assert "&lt;script&gt;" in message.html and 'href="https://cnil.fr/a&#34;onmouseover=&#34;x"' in message.html
    assert '<script>alert("x")</script>' in message.text  # text/plain shows it as it is: inert
    assert message.subject == "[Veille] Récapitulatif quotidien du 17 juin 2026 : 1 texte"


def test_items_are_grouped_under_their_first_subscribed_theme_in_both_languages() -> None:
    items = cnil_items()
    themes = _themes(items[:3], ("health-data", 0.9), ("personal-data", 0.6)) | _themes(items[3:5], ("personal-data", 0.8)) | _themes(
        items[5:], ("ai", 0.99), ("personal-data", 0.55))
    renderer = Renderer(themes=[("health-data", "Données de santé", "Health data"),
                                ("personal-data", "Données personnelles", "Personal data")])
    groups = renderer.groups(_sub(), items, themes)
    assert [(g.theme, len(g.items)) for g in groups] == [("health-data", 3), ("personal-data", 3)]
    english = renderer.message(key="k", sub=_sub("en"), kind="weekly", period="2026-06-15", items=items,
                               themes=themes, now=NOW)
    assert english.subject == "[Watch] Weekly digest of 15 June 2026: 6 texts"
    # the other themes of an item are labels; a reason in no known form is shown as it is
    assert "Also: ai" in english.text and "99" not in english.text  # ai is not the group's theme
    assert "Why: raison health-data <b>" in english.text
    assert "== Health data (3) ==" in english.text and "== Personal data (3) ==" in english.text
    assert "Archive record" not in english.text  # no public_url: no archive link


def test_archive_links_use_datasette_tilde_encoding() -> None:
    assert tilde_encode("cnil:https://cnil.fr/a b.html") == "cnil~3Ahttps~3A~2F~2Fcnil~2Efr~2Fa+b~2Ehtml"
    item = cnil_items(limit=1)[0]
    view = Renderer(public_url="https://archive.example.org/").item_view(item, [])
    assert view.archive_url == f"https://archive.example.org/watcher/items/{tilde_encode(item['id'])}"


def test_a_huge_slack_digest_respects_block_kit_limits() -> None:
    from test_notify_support import CNIL_BIG_FEED

    items = cnil_items(CNIL_BIG_FEED)
    themes = {i["id"]: [{"theme": f"theme-{n % 7}", "score": 0.9, "reason": "r" * 200, "origin": "model"}]
              for n, i in enumerate(items)}
    sub = _sub(themes=tuple(f"theme-{n}" for n in range(7)))
    payload = Renderer(public_url="https://a.fr").message(key="k", sub=sub, kind="daily", period="2026-08-19",
                                                           items=items, themes=themes, now=NOW).slack
    blocks = payload["blocks"]
    assert len(items) >= 400 and len(blocks) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    assert re.match(r"\+\d+ autres textes dans l'archive", blocks[-1]["elements"][0]["text"])


TEXT = ("Retraitement des dispositifs médicaux à usage unique : l'arrêté du 4 février 2026 et le SNDS ; "
        "health data")


@pytest.mark.parametrize(("reason", "origin", "lang", "expected"), [
    # the words quoted are the item's own (from the rule's phrases, then the theme's keywords); a score only
    # where neither words nor a cited act explain the tag
    ("identifier: décret n° 2025-895; matched: retraitement, usage unique; model: 0.91", "model", "fr",
     "cite le décret n° 2025-895 ; mots : Retraitement, usage unique, SNDS"),
    ("identifier: arrêté du 4 février 2026 (expérimentation DMUU)", "rule", "fr",
     "cite l’arrêté du 4 février 2026 (expérimentation DMUU)"),
    ("identifier: règlement (UE) 2024/1689 (AI Act); source: CNIL; model: 0.91", "rule", "fr",
     "cite le règlement (UE) 2024/1689 (AI Act)"),
    ("matched: health-data acronym, SNDS / Health Data Hub; model: 1.00; decided by: rules and model", "model", "fr",
     "mots : SNDS, health data"),  # a rule's name is not a word of the item: its words are
    ("matched: a, b, c, d; autorité : ANSM; model: 0.50", "model", "en", "words: SNDS, health data"),
    ("autorité : ANSM; model: 0.50", "model", "en", "published by: ANSM; assessed by the model: 72%"),
    ("délibération CNIL : recommandation; autorité : CNIL", "rule", "fr", "publié par : CNIL"),
    ("site: ansm.sante.fr", "rule", "en", "published by: ANSM"),  # the source's label, not its site
    ("model: 0.72; similar to: « Un autre texte » (0.70); decided by: model", "model", "fr",
     "évalué par le modèle : 72\u202f%"),
    ("confirmed by alice", "human", "fr", "confirmé par un juriste"),
    ("raison libre", "model", "fr", "raison libre"),
])
def test_short_reasons_in_the_message_language(reason: str, origin: str, lang: str, expected: str) -> None:
    from watcher.notify.render import short_reason

    keywords = ("SNDS", "health data", "données de santé")
    assert short_reason(reason, origin, lang, text=TEXT, keywords=keywords, score=0.72,
                        publisher="ANSM") == expected


def test_an_item_on_the_same_event_is_listed_under_the_earlier_one_in_every_medium() -> None:
    first, second, third = cnil_items(limit=3)
    second = second | {"title": "<!channel> *relais* <b>", "legal_date": "2099-01-01"}  # later: the relay
    pair = {first["id"], second["id"]}

    def same_event(items: list[dict]) -> list[list[dict]]:  # the grouping the caller binds to the archive
        together = [i for i in items if i["id"] in pair]
        return [together, *([i] for i in items if i["id"] not in pair)]

    items = [second, first, third]
    message = Renderer(same_event=same_event).message(
        key="k", sub=_sub(), kind="daily", period="2026-06-17", items=items,
        themes=_themes(items, ("personal-data", 0.9)), now=NOW)
    assert message.html.count('class="item"') == 2 and message.html.count('class="same-event"') == 1
    assert f'<div class="item" data-item="{first["id"]}">' in message.html and "&lt;!channel&gt;" in message.html
    assert message.subject.endswith(": 3 textes") and "aussi : " in message.text
    slack = "\n".join(b["text"]["text"] for b in message.slack["blocks"] if "text" in b)
    assert "aussi : " in slack and "<!channel>" not in slack and "&lt;!channel&gt; \u2217relais\u2217" in slack
