"""The researchers' archive at scale: full-text search and a faceted theme page, over HTTP, against the real
server (``watcher serve``) on a generated archive of 1,000,000 items built from real items.

    python -m benchmarks.bench_archive [--items 1000000] [--requests 60] [--keep DIR] [--quick]

How the archive is made: the bundled recordings of the real sources are fetched, stored and classified the way
``watcher demo`` does (keyword classifier: ~550 real items with their sources, kinds of act, authorities and
themes), plus the 400 real items of the labelled gold set (tests/fixtures/gold/dev.jsonl, with the annotators'
themes). Generated item ``i`` takes the metadata and themes of real item ``i mod n``, its title, the summary of
another real item (a fixed pseudo-random pairing) and a publication date spread over 2016-2026 (its legal date the
same day): every word is a real
word of the sources, the vocabulary and the theme mix are theirs, and no two items are the same text. Rows are
written with plain SQL in batches and the full-text index is rebuilt once (what is measured is reading).

What is measured, each request over HTTP with httpx from this process, ``--requests`` per kind, every request a
different one (no answer could come from a cache), after a warm-up of other requests of the same kind:
- full-text search, JSON API (``/watcher/items.json?_search=...&_nofacet=1``): the search itself, ranked;
- full-text search page as a visitor sees it (HTML, ranked, with its facets);
- faceted theme page (``/watcher/items?_theme=<theme>``, HTML, with every facet of the page): the first page of
  each theme, then pages further down (``_next`` at a real item of the theme);
- a theme's Atom feed (``/-/atom/theme/<theme>.atom``, 50 entries; five themes, so these do repeat).
The search texts are the curated queries below, then words of the real items' titles (most frequent first),
each used once. Goals: search p95 <= 100 ms, faceted theme page p95 <= 300 ms, search page p95 <= 300 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

import httpx
from datasette.utils import tilde_encode

from benchmarks._util import REPO, child_env, cpu_line, machine, print_table, verdict
from classifiers.decide.keyword import KeywordClassifier
from store import METADATA_PATH, Store, counts
from watcher.app import App
from watcher.demo import recorded_sources
from watcher.pipeline import classify_pending, ingest
from watcher.replay import DEMO_RECORDING, ReplayServer, load_recording

GOLD = REPO / "tests/fixtures/gold/dev.jsonl"
BUILT_AT = datetime(2026, 8, 20, 8, 0, tzinfo=UTC)
QUERIES = ["données de santé", "intelligence artificielle", "sanction", "cookies", "rappel de lots",
           "entrepôt de données", "délibération", "traceurs", "dispositif médical", "vidéosurveillance",
           "hébergement de données de santé", "RGPD", "consentement", "algorithme", "médicament",
           "transfert de données", "CNIL recommandation", "pharmacovigilance", "cybersécurité", "décret"]
THEMES = ["personal-data", "health-products", "ai", "health-data", "dmuu-reprocessing"]
COLUMNS = ("id", "source", "url", "title", "summary", "text", "published", "lang", "nature", "authority", "rubric",
           "identifiers", "tags", "extra", "content_hash", "version", "first_seen", "last_seen", "updated_at", "themes",
           "legal_date", "nature_raw")


def real_items(folder: Path) -> list[dict[str, Any]]:
    """The real items the archive is generated from: the demo recordings as stored, plus the gold set."""
    config = folder / "sources.toml"
    config.write_text((REPO / "sources.toml").read_text(encoding="utf-8").replace(
        'database = "var/watcher.db"', f'database = "{folder / "base.db"}"', 1), encoding="utf-8")
    with ReplayServer(DEMO_RECORDING) as server:
        app = App(config, url_map=server.url_map, host_delay=0.0)
        try:
            sources, _ = recorded_sources(app.config.sources, load_recording(DEMO_RECORDING))
            ingest(app.config, app.store, app.http, BUILT_AT, sources)
            classify_pending(app.store, KeywordClassifier, BUILT_AT)
            rows = [dict(r) for r in app.store.db.query("select * from items")]
            themes = {}
            for item_id, theme, score, reason, origin in app.store.db.execute(
                    "select item_id, theme, score, reason, origin from item_themes"):
                themes.setdefault(item_id, []).append((theme, score, reason, origin))
        finally:
            app.close()
    for row in rows:
        row["_themes"] = themes.get(row["id"], [])
        row["text"] = (row["text"] or "")[:4000]
    for line in GOLD.read_text(encoding="utf-8").splitlines():
        gold = json.loads(line)
        rows.append({"id": f"gold:{gold['id']}", "source": gold["source"], "url": gold["url"], "title": gold["title"],
                     "summary": gold["summary"], "text": "", "lang": gold["lang"], "nature": "", "authority": "",
                     "rubric": "", "identifiers": "{}", "tags": "[]", "extra": "{}",
                     "_themes": [(t, 1.0, "annotated in the gold set", "human") for t in gold["themes"]]})
    return rows


def generated(base: Sequence[dict[str, Any]], count: int, seed: int = 13) -> Iterator[tuple[tuple[Any, ...],
                                                                                             list[tuple[Any, ...]]]]:
    rng = random.Random(seed)
    start, span = datetime(2016, 1, 1, tzinfo=UTC), 3900 * 86400
    stamp = BUILT_AT.isoformat().replace("+00:00", "Z")
    for i in range(count):
        item, other = base[i % len(base)], base[rng.randrange(len(base))]
        published = (start + timedelta(seconds=rng.randrange(span))).replace(microsecond=0)
        item_id = f"{item['id']}~{i}"
        themes = item["_themes"]
        row = {**item, "id": item_id, "summary": other["summary"] or item["summary"],
               "published": published.isoformat().replace("+00:00", "Z"), "content_hash": f"g{i}", "version": 1,
               "first_seen": stamp, "last_seen": stamp, "updated_at": stamp,
               "themes": json.dumps(sorted(t[0] for t in themes)), "legal_date": published.date().isoformat(),
               "nature_raw": item.get("nature_raw") or item.get("nature") or ""}
        yield tuple(row.get(c) for c in COLUMNS), [(item_id, *t, "keyword", "1", stamp) for t in themes]


def build(database: Path, base: Sequence[dict[str, Any]], count: int) -> float:
    start = time.perf_counter()
    store = Store(database)
    conn = store.db.conn
    conn.execute("PRAGMA synchronous=OFF")
    insert_item = f"insert into items ({', '.join(COLUMNS)}) values ({', '.join('?' * len(COLUMNS))})"
    insert_theme = ("insert into item_themes (item_id, theme, score, reason, origin, model, model_version, "
                    "classified_at) values (?, ?, ?, ?, ?, ?, ?, ?)")
    batch: list[tuple[Any, ...]] = []
    themes: list[tuple[Any, ...]] = []
    for row, tags in generated(base, count):
        batch.append(row)
        themes.extend(tags)
        if len(batch) == 20_000:
            _flush(conn, insert_item, insert_theme, batch, themes)
    _flush(conn, insert_item, insert_theme, batch, themes)
    conn.execute("delete from alert_queue")
    conn.execute("insert into items_fts (items_fts) values ('rebuild')")
    with conn:
        counts.install(conn)  # rows written with plain SQL: the kept counts are counted once, as a migration does
    conn.execute("ANALYZE")
    conn.commit()
    store.close()
    return time.perf_counter() - start


def _flush(conn: Any, insert_item: str, insert_theme: str, batch: list[tuple[Any, ...]],
           themes: list[tuple[Any, ...]]) -> None:
    with conn:
        conn.executemany(insert_item, batch)
        conn.executemany(insert_theme, themes)
    batch.clear()
    themes.clear()


class Server:
    """``watcher serve`` on the generated archive, in a child process."""

    def __init__(self, folder: Path, database: Path, code: Path = REPO):
        self.config = folder / "serve.toml"
        self.config.write_text((REPO / "sources.toml").read_text(encoding="utf-8").replace(
            'database = "var/watcher.db"', f'database = "{database}"', 1), encoding="utf-8")
        # the embedding model (for `watcher search --similar`) is not what is measured: not loaded, where the
        # served checkout has the option
        no_model = ["--no-model"] if "--no-model" in (code / "watcher/cli/archive.py").read_text("utf-8") else []
        self.process = subprocess.Popen([sys.executable, "-m", "watcher", "--config", str(self.config), "serve",
                                         "--port", "0", *no_model], cwd=code, stderr=subprocess.PIPE, text=True,
                                        env=child_env({"PYTHONPATH": str(code)}))
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if "listening on " in line:
                self.url = line.split("listening on ", 1)[1].split()[0].rstrip("/")
                self.errors: list[str] = []  # its later stderr, read so that a full pipe never blocks it
                threading.Thread(target=lambda: self.errors.extend(self.process.stderr or ()), daemon=True).start()
                return
        raise RuntimeError("watcher serve did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def timed(client: httpx.Client, paths: Sequence[str], warm: Sequence[str]) -> tuple[list[float], int]:
    """Response times (ms) of a GET of each of ``paths`` after GETs of ``warm`` (not timed); and how many answered
    an error (e.g. Datasette's time limit), counted apart."""
    for path in warm:
        client.get(path)
    times, errors = [], 0
    for path in paths:
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        errors += response.status_code != 200
    return times, errors


def p95(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) >= 2 else values[0]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--keep", type=Path, default=None, help="build (or reuse) the archive in this folder")
    parser.add_argument("--quick", action="store_true", help="100,000 items, 40 requests")
    parser.add_argument("--code", type=Path, default=REPO,
                        help="serve with the watcher of this checkout (e.g. the main branch, for a before/after)")
    args = parser.parse_args(argv)
    if args.quick:
        args.items, args.requests = 100_000, 40
    folder = args.keep or Path(tempfile.mkdtemp(prefix="watcher-bench-archive-"))
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / f"archive-{args.items}.db"
    print(f"bench_archive: {args.items:,} items, {args.requests} requests per page kind; {machine()}; "
          f"served by {args.code.resolve()}\n{cpu_line()}")
    if not database.exists():
        base = real_items(folder)
        seconds = build(database, base, args.items)
        print(f"built {database} from {len(base)} real items in {seconds:.0f} s "
              f"({database.stat().st_size / 2**20:,.0f} MB)")
    server = Server(folder, database, args.code.resolve())
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            rows = measure(client, database, args.requests)
    finally:
        server.stop()
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    print_table(f"HTTP response times over {args.requests} different requests (ms)",
                ["page", "p50", "p95", "max", "errors", "facets timed out"], rows)
    search, page, theme = rows[0], rows[1], rows[2]
    print(cpu_line())
    verdict("full-text search p95 <= 100 ms", f"{search[2]:.0f} ms on {args.items:,} items", search[2] <= 100)
    verdict("search page with facets p95 <= 300 ms", f"{page[2]:.0f} ms on {args.items:,} items", page[2] <= 300)
    verdict("faceted theme page p95 <= 300 ms", f"{theme[2]:.0f} ms on {args.items:,} items", theme[2] <= 300)


def search_texts(database: Path, count: int) -> list[str]:
    """``count`` different search texts: the curated queries, then words of the archive's real titles (the
    generated items repeat them), most frequent first."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        titles = [row[0] for row in conn.execute("select title from items limit 5000")]
    finally:
        conn.close()
    words = Counter(w for title in titles for w in re.findall(r"[^\W\d_]{6,}", title.lower()))
    texts = list(dict.fromkeys([*QUERIES, *(w for w, _ in words.most_common())]))
    if len(texts) < count:
        raise SystemExit(f"only {len(texts)} different search texts for {count} requests")
    return texts[:count]


def theme_pages(database: Path, count: int) -> list[str]:
    """``count`` different theme pages: each theme's first page, then pages that start at real items of the theme
    (Datasette's ``_next`` cursor: legal date, id), spread over the archive."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    rng = random.Random(7)
    try:
        themes = [t for t in THEMES if conn.execute("select 1 from item_themes where theme = ? limit 1", [t]).fetchone()]
        pages = [f"/watcher/items?_theme={t}" for t in themes]
        top = conn.execute("select max(rowid) from items").fetchone()[0]
        while len(pages) < count:
            theme = themes[len(pages) % len(themes)]
            row = conn.execute("select i.legal_date, i.id from items i where i.rowid >= ? and exists (select 1 "
                               "from item_themes t where t.item_id = i.id and t.theme = ?) order by i.rowid limit 1",
                               [rng.randrange(top), theme]).fetchone()
            if row:
                cursor = f"{tilde_encode(row[0])},{tilde_encode(row[1])}"
                pages.append(f"/watcher/items?{urlencode({'_theme': theme, '_next': cursor})}")
    finally:
        conn.close()
    return list(dict.fromkeys(pages))[:count]


def measure(client: httpx.Client, database: Path, requests: int) -> list[list[Any]]:
    warm = 5
    texts = [quote(t) for t in search_texts(database, 2 * (requests + warm))]
    searches = [f"/watcher/items.json?_search={q}&_nofacet=1&_size=50" for q in texts[: requests + warm]]
    pages = [f"/watcher/items?_search={q}" for q in texts[requests + warm:]]
    themes = theme_pages(database, requests + warm)
    feeds = [f"/-/atom/theme/{THEMES[n % len(THEMES)]}.atom" for n in range(requests + warm)]
    rows = []
    for label, paths in (("search (JSON API, 50 rows)", searches), ("search page (HTML, with facets)", pages),
                         ("theme page (HTML, with facets)", themes), ("theme Atom feed (50 entries)", feeds)):
        times, errors = timed(client, paths[warm:], paths[:warm])
        rows.append([label, statistics.median(times), p95(times), max(times), errors])
        rows[-1].append(facets_missing(client, paths[warm:]) if "with facets" in label else "-")
        slowest = sorted(zip(times, paths[warm:], strict=True), reverse=True)[:3]
        print(f"  {label}: p50 {rows[-1][1]:.0f} ms, p95 {rows[-1][2]:.0f} ms, {errors} error(s); slowest: "
              + ", ".join(f"{unquote(path.split('?', 1)[-1])[:60]} {ms:.0f} ms" for ms, path in slowest), flush=True)
    return rows


def facets_missing(client: httpx.Client, paths: Sequence[str]) -> str:
    """How many of the page's facets (six, in metadata.json) Datasette left out because their count passed its
    time limit, over 10 of the pages measured (asked again as JSON, not timed; the JSON lists the facets it shows):
    a fast page must not be a page without facets."""
    configured = len(json.loads(METADATA_PATH.read_text(encoding="utf-8"))["databases"]["watcher"]["tables"]
                     ["items"]["facets"])
    pages = paths[:10]
    shown = sum(len(client.get(path.replace("/watcher/items?", "/watcher/items.json?", 1)).json()
                    .get("facet_results") or {}) for path in pages)
    return f"{configured * len(pages) - shown} of {configured * len(pages)}"


if __name__ == "__main__":
    main()
