"""The real items of the captures (never a ``reconstructed_*`` file) as rows of an archive, and the sample of links
among them that measures linking (tests/fixtures/acts/links_sample.jsonl).

    python -m tools.captures_archive --db /tmp/captures.db            # build the archive and link it
    python -m tools.captures_archive --db /tmp/captures.db --sample tests/fixtures/acts/links_sample.jsonl

Items: the gold sets (title + summary as labelled), the Légifrance RSS/Atom captures (every
``tests/fixtures/jorf/legifrss_*.xml``, parsed by the ``feed`` kind), the JO table of contents of 13 June 2026 (each text's title and id) and its two full texts, the CNIL
délibération 2026-047 (``dila-cnil``), the CNIL actualités feed, and the public veille datasets of
tests/fixtures/other. Published dates are the captures' own.

The sample: every link among these items when there are at most 100, else 100 drawn with a fixed seed, each
written with both titles and the words around the mention so that a person can check it by reading; the
``verdict`` ("right" or "wrong") and ``why`` fields are filled by that person (a new sample keeps the verdicts of
links already read, of the same kind).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures"
NOW = "2026-12-01T00:00:00Z"


def _row(item_id: str, source: str, url: str, title: str, summary: str, published: str, **extra: Any) -> dict:
    from watcher.legal.normalize import to_utc
    from watcher.models import Item
    from watcher.records import item_to_row

    item = Item(id=item_id, source=source, url=url, title=title, summary=summary, published=to_utc(published or None),
                **extra)
    return item_to_row(item)


def _feed_rows(path: Path, source: str) -> list[dict]:
    from watcher.config import SourceConfig
    from watcher.records import item_to_row
    from watcher.sources import build

    config = SourceConfig(name=source, kind="feed", url="https://www.legifrance.gouv.fr/")
    return [item_to_row(i) for i in build(config).parse(path.read_bytes(), url=config.url)]


def capture_rows() -> list[dict]:
    """Every real item of the captures, once per id."""
    rows: dict[str, dict] = {}

    def add(row: dict) -> None:
        rows.setdefault(row["id"], row)

    for path in sorted((FIX / "gold").glob("*.jsonl")):
        for line in path.open(encoding="utf-8"):
            r = json.loads(line)
            add(_row(f"{r['source']}:{r['url'] or r['id']}", r["source"], r.get("url") or "", r["title"],
                     r.get("summary") or "", r.get("published") or "", lang=r.get("lang") or "fr"))
    for path in sorted((FIX / "jorf").glob("legifrss_*.xml")):  # one JO text in several feeds is one item
        for row in _feed_rows(path, "legifrance-rss"):
            add(row)
    for row in _feed_rows(FIX / "cnil" / "bmeret_cnil_feed_scraped-actualite_500items_2026-08-19.xml", "cnil"):
        add(row)
    for row in _jorf_rows():
        add(row)
    for row in _other_rows():
        add(row)
    return list(rows.values())


def _jorf_rows() -> Iterator[dict]:
    from xml.etree import ElementTree

    from watcher.records import item_to_row
    from watcher.sources import dila_cnil, dila_jorf
    from watcher.sources.dila_common import parse_xml

    sommaire = FIX / "jorf" / "jorfsimple_JORFCONT000054245240_sommaire_2026-06-13.xml"
    full = {}
    for name in ("jorfsimple_JORFTEXT000054245373_arrete_catnat_large_600KB.xml",
                 "jorfsimple_JORFTEXT000054246001_arrete_nomination_small.xml"):
        item = dila_jorf.text_item(parse_xml((FIX / "jorf" / name).read_bytes(), source="jorf", what="x"))
        full[item.id] = item_to_row(item)
    for node in ElementTree.parse(sommaire).getroot().iter("LIEN_TXT"):
        text_id = node.get("idtxt", "")
        yield full.get(f"jorf:{text_id}") or _row(
            f"legifrance:{text_id}", "jo-sommaire", f"https://www.legifrance.gouv.fr/jorf/id/{text_id}",
            node.get("titretxt", ""), "", "2026-06-13")
    cnil = FIX / "cnil" / "dila_CNILTEXT000054047151_deliberation_2026-047_recommandation_credit.xml"
    yield item_to_row(dila_cnil.text_item(parse_xml(cnil.read_bytes(), source="cnil", what="x")))


def _other_rows() -> Iterator[dict]:
    other = FIX / "other"
    for r in json.loads((other / "mariaearly_veille-reglementaire_archive.json").read_text(encoding="utf-8")):
        yield _row(f"veille-a:{r['url'] or r['hash']}", "veille-a", r.get("url") or "", r.get("title") or "",
                   r.get("summary") or "", str(r.get("published") or "")[:10])
    for path in sorted(other.glob("sofianebzz_veille-juridique_*.json")):
        for r in json.loads(path.read_text(encoding="utf-8")):
            yield _row(f"veille-b:{r['url'] or r['id']}", "veille-b", r.get("url") or "", r.get("title") or "",
                       r.get("desc") or "", str(r.get("date") or "")[:10])
    for r in json.loads((other / "jonathanknaus_veille-juridique_articles.json").read_text(encoding="utf-8"))[
            "articles"]:
        yield _row(f"veille-c:{r['url'] or r['id']}", "veille-c", r.get("url") or "", r.get("titre") or "",
                   r.get("resume") or "", str(r.get("date") or "")[:10])


def build_archive(path: Path) -> Any:
    """A fresh archive at ``path`` with every captured item, linked."""
    from store import Store
    from watcher.legal.links import link_pending

    if path.exists():
        path.unlink()
    store = Store(path)
    store.upsert_items(capture_rows(), NOW)
    link_pending(store, datetime(2026, 12, 1, tzinfo=UTC))
    return store


def sample(store: Any, out: Path, size: int = 100, seed: int = 19) -> list[dict]:
    """``size`` links among the captures (all if fewer), with what a person needs to check each by reading."""
    found = [tuple(r) for r in store.db.execute(
        "select l.from_id, l.to_id, l.kind, l.scheme, l.value, l.reason, f.title as from_title, "
        "t.title as to_title, m.context from links l join items f on f.id = l.from_id join items t on t.id = l.to_id "
        "left join act_mentions m on m.item_id = l.from_id and m.scheme = l.scheme and m.value = l.value "
        "and m.role = 'cites' order by l.from_id, l.to_id").fetchall()]
    cols = ["from_id", "to_id", "kind", "scheme", "value", "reason", "from_title", "to_title", "context"]
    links: list[dict[str, Any]] = [dict(zip(cols, row, strict=True)) for row in found]
    chosen = links if len(links) <= size else random.Random(seed).sample(links, size)
    read = {}
    if out.exists():
        for line in out.read_text(encoding="utf-8").splitlines():
            old = json.loads(line)
            read[(old["from_id"], old["to_id"], old["kind"])] = (old.get("verdict"), old.get("why", ""))
    rows = []
    for link in sorted(chosen, key=lambda r: (r["from_id"], r["to_id"])):
        verdict, why = read.get((link["from_id"], link["to_id"], link["kind"]), (None, ""))
        rows.append({**{k: v for k, v in link.items() if v}, "verdict": verdict, "why": why})
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--sample", type=Path, default=None)
    args = parser.parse_args(argv)
    store = build_archive(args.db)
    total = store.db.execute("select count(*) from links").fetchone()[0]
    kinds = store.db.execute("select kind, count(*) from links group by kind").fetchall()
    print(f"{store.count_items()} items, {total} links: {dict(kinds)}")
    if args.sample:
        rows = sample(store, args.sample)
        print(f"sample of {len(rows)} links written to {args.sample}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
