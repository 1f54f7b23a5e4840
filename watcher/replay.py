"""Recorded HTTP responses: save them (``record``), replay them from a local server (``ReplayServer``).

A recording folder holds one subfolder per host with ``<slug>.body`` (the raw bytes) and ``<slug>.meta.json``
(``{"url", "status", "headers", "recorded_at", ...}``), plus ``index.json`` mapping each original URL to its
body file. ``ReplayServer`` serves such a folder on 127.0.0.1 and, for fault tests, scripted answers added
with ``add()`` (any status, headers, delay, generated huge bodies, truncated bodies, sequences such as 503
then 200). Point an ``HttpClient`` at it with ``url_map=server.url_map``: ``https://host/path?q`` becomes
``http://127.0.0.1:PORT/host/path?q``.

``build_demo_recording`` rebuilds the bundled ``watcher/replay_data`` from ``tests/fixtures`` (``DEMO`` below
is the table of what goes where; extend it there). Run ``python -m watcher.replay build-demo``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from watcher.errors import SourceError

if TYPE_CHECKING:
    from watcher.http import HttpClient

DEMO_RECORDING = Path(__file__).parent / "replay_data"
INDEX = "index.json"
CHUNK = 64 * 1024
DRIP_PIECE = 512
MAX_SLUG = 80
# headers that describe the transfer, not the content: never recorded nor replayed as such
_TRANSFER_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive",
                               "content-encoding", "set-cookie"})


# -- layout --------------------------------------------------------------------------------------------------

def slug_for(url: str) -> str:
    """A file-system-safe name for the path and query of ``url`` (sha1 suffix when long)."""
    parts = urlsplit(url)
    text = parts.path.strip("/") + (f"?{parts.query}" if parts.query else "")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "index"
    if len(slug) > MAX_SLUG:
        digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
        slug = f"{slug[:MAX_SLUG - 13]}-{digest}"
    return slug


def host_folder(url: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", _host(url))


def replay_key(url: str) -> str:
    """``host/path?query`` (scheme and credentials dropped, percent-decoding undone): how the server finds an
    answer."""
    parts = urlsplit(url)
    return unquote(_host(url) + (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))


def _host(url: str) -> str:
    """``host[:port]``, lower-case, without user:password."""
    parts = urlsplit(url)
    return (parts.hostname or "") + (f":{parts.port}" if parts.port else "")


@dataclass(frozen=True)
class Recording:
    """One recorded response, as stored on disk."""

    url: str
    status: int
    headers: dict[str, str]
    body_path: Path
    recorded_at: str
    note: str = ""

    def body(self) -> bytes:
        return self.body_path.read_bytes()


def save_response(folder: Path, url: str, status: int, headers: Mapping[str, str], content: bytes,
                  recorded_at: datetime | str, **extra: str) -> Path:
    """Write one response (body + meta) into ``folder`` and index it; returns the body path."""
    rel = f"{host_folder(url)}/{slug_for(url)}"
    index = _read_index(folder)
    if any(other != url and path == f"{rel}.body" for other, path in index.items()):
        rel += "-" + hashlib.sha1(url.encode("utf-8")).hexdigest()[:8]
    body_path = folder / f"{rel}.body"
    body_path.parent.mkdir(parents=True, exist_ok=True)
    body_path.write_bytes(content)
    when = recorded_at.isoformat() if isinstance(recorded_at, datetime) else recorded_at
    meta = {"url": url, "status": status, "recorded_at": when,
            "headers": {k.lower(): v for k, v in headers.items() if k.lower() not in _TRANSFER_HEADERS},
            **extra}
    (folder / f"{rel}.meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", "utf-8")
    index[url] = f"{rel}.body"
    (folder / INDEX).write_text(json.dumps(dict(sorted(index.items())), indent=2) + "\n", "utf-8")
    return body_path


def load_recording(folder: Path) -> dict[str, Recording]:
    """Every recording of ``folder``, by original URL."""
    recordings = {}
    for url, rel in _read_index(folder).items():
        body_path = folder / rel
        meta = json.loads(body_path.with_name(body_path.name.removesuffix(".body") + ".meta.json")
                          .read_text("utf-8"))
        recordings[url] = Recording(url=url, status=int(meta["status"]), headers=dict(meta["headers"]),
                                    body_path=body_path, recorded_at=meta["recorded_at"],
                                    note=meta.get("note", ""))
    return recordings


def _read_index(folder: Path) -> dict[str, str]:
    path = folder / INDEX
    return json.loads(path.read_text("utf-8")) if path.exists() else {}


# -- recording live responses --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recorded:
    """What ``record`` did for one URL: the body path and status, or the error."""

    url: str
    path: Path | None = None
    status: int | None = None
    error: str | None = None


def record(urls: Iterable[str], folder: Path, client: HttpClient, now: datetime) -> list[Recorded]:
    """Fetch each URL (robots, pacing, size cap and redirects apply; any final status is kept) and save it."""
    results = []
    folder.mkdir(parents=True, exist_ok=True)
    for url in urls:
        try:
            response = client.fetch(url, source="record")
        except SourceError as exc:
            results.append(Recorded(url, error=exc.reason))
            continue
        extra = {"final_url": response.url} if response.url != url else {}
        path = save_response(folder, url, response.status, response.headers, response.content, now, **extra)
        results.append(Recorded(url, path=path, status=response.status))
    return results


# -- the server ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scripted:
    """An answer the server gives, recorded or scripted."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0  # seconds before answering (real time, in the server thread)
    size: int | None = None  # stream this many generated bytes instead of ``body``
    content_length: bool = True  # False: no Content-Length, the body ends when the connection closes
    truncate_at: int | None = None  # announce the full length, then close after this many bytes
    drip: float = 0.0  # seconds between two pieces of DRIP_PIECE bytes (a server that trickles the body)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    def length(self) -> int:
        return self.size if self.size is not None else len(self.body)

    def chunks(self) -> Iterator[bytes]:
        limit = self.length() if self.truncate_at is None else min(self.truncate_at, self.length())
        if self.drip:
            body = self.body if self.size is None else b"x" * self.size
            yield from (body[start : min(start + DRIP_PIECE, limit)] for start in range(0, limit, DRIP_PIECE))
            return
        if self.size is None:
            yield self.body[:limit]
            return
        block = b"x" * CHUNK
        for start in range(0, limit, CHUNK):
            yield block[: min(CHUNK, limit - start)]


@dataclass(frozen=True)
class ReplayRequest:
    """One request the server saw."""

    key: str  # host/path?query
    headers: dict[str, str]  # lower-case names
    status: int


class ReplayServer:
    """A local HTTP server answering with recordings and scripted responses (unknown URLs: 404)."""

    def __init__(self, folder: Path | None = None):
        self.requests: list[ReplayRequest] = []
        recordings = load_recording(folder) if folder else {}
        self._recorded = {replay_key(url): rec for url, rec in recordings.items()}
        self._scripted: dict[str, list[Scripted]] = {}
        self._lock = threading.Lock()
        self.stopping = threading.Event()  # set on shutdown: delayed or trickling answers stop waiting
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.replay = self
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url_map(self, url: str) -> str:
        parts = urlsplit(url)
        query = f"?{parts.query}" if parts.query else ""
        return f"{self.base_url}/{_host(url)}{parts.path or '/'}{query}"

    def add(self, url: str, *, status: int = 200, headers: Mapping[str, str] | None = None, body: bytes = b"",
            delay: float = 0.0, size: int | None = None, content_length: bool = True,
            truncate_at: int | None = None, drip: float = 0.0) -> ReplayServer:
        """Queue an answer for ``url``; several calls make a sequence, the last answer then repeats."""
        answer = Scripted(status, dict(headers or {}), body, delay, size, content_length, truncate_at, drip)
        with self._lock:
            self._scripted.setdefault(replay_key(url), []).append(answer)
        return self

    def count(self, url: str) -> int:
        """How many requests reached ``url``."""
        key = replay_key(url)
        return sum(1 for r in self.requests if r.key == key)

    def start(self) -> ReplayServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="replay-server", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def answer_for(self, key: str) -> Scripted | None:
        with self._lock:
            queue = self._scripted.get(key)
            if queue:
                return queue.pop(0) if len(queue) > 1 else queue[0]
        rec = self._recorded.get(key)
        return Scripted(rec.status, rec.headers, rec.body()) if rec else None

    def handle(self, handler: _Handler) -> None:
        key = unquote(handler.path.lstrip("/"))
        request = {k.lower(): v for k, v in handler.headers.items()}
        answer = self.answer_for(key) or Scripted(404, {"Content-Type": "text/plain"}, b"not recorded\n")
        if answer.delay:
            self.stopping.wait(answer.delay)
        if _not_modified(answer, request):
            answer = Scripted(304, {k: v for k in ("ETag", "Last-Modified") if (v := answer.header(k))})
        with self._lock:
            self.requests.append(ReplayRequest(key, request, answer.status))
        _send(handler, answer)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    replay: ReplayServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up is a normal fault test
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.replay.handle(self)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # silence stderr; requests are in ReplayServer.requests


def _send(handler: _Handler, answer: Scripted) -> None:
    handler.send_response_only(answer.status)
    for name, value in answer.headers.items():
        if name.lower() not in _TRANSFER_HEADERS:
            handler.send_header(name, value)
    if answer.header("date") is None:
        handler.send_header("Date", handler.date_time_string())
    if answer.content_length and answer.status != 304:
        handler.send_header("Content-Length", str(answer.length()))
    handler.send_header("Connection", "close")
    handler.end_headers()
    try:
        for n, chunk in enumerate(answer.chunks()):
            if n and answer.drip and handler.server.replay.stopping.wait(answer.drip):
                return  # the server is shutting down
            handler.wfile.write(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (size cap, timeout): expected in fault tests


def _not_modified(answer: Scripted, request: Mapping[str, str]) -> bool:
    """Conditional GET against the answer's ETag / Last-Modified (If-None-Match wins, as in RFC 9110)."""
    if answer.status != 200:
        return False
    etag, inm = answer.header("etag"), request.get("if-none-match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return etag is not None and ("*" in tags or etag.removeprefix("W/") in tags)
    modified, ims = answer.header("last-modified"), request.get("if-modified-since")
    if not (modified and ims):
        return False
    try:
        return parsedate_to_datetime(modified) <= parsedate_to_datetime(ims)
    except (TypeError, ValueError):
        return False


# -- the bundled demo recording ------------------------------------------------------------------------------

@dataclass(frozen=True)
class DemoEntry:
    url: str
    fixture: str  # relative to tests/fixtures; ``*.http.txt`` = a whole HTTP envelope (status line + headers)
    content_type: str
    recorded_at: str  # when the bytes were captured (ISO 8601)
    note: str
    optional: bool = False  # reconstructed files made by others: skipped when absent


DEMO: tuple[DemoEntry, ...] = (
    DemoEntry("https://echanges.dila.gouv.fr/OPENDATA/JORFSIMPLE/",
              "jorf/dila_opendata_JORFSIMPLE_index_listing_reformatted.html", "text/html;charset=ISO-8859-1",
              "2026-06-12T21:00:00+02:00",
              "Apache 'Index of' listing of the DILA JORFSIMPLE deltas (3 tarballs); whitespace reformatted "
              "by the repository it comes from, not raw server bytes"),
    DemoEntry("https://echanges.dila.gouv.fr/OPENDATA/JORFSIMPLE/JORFSIMPLE_20260612-002012.tar.gz",
              "reconstructed/reconstructed_JORFSIMPLE_20260612-002012.tar.gz", "application/x-gzip",
              "2026-06-12T00:20:12+02:00",
              "RECONSTRUCTED: real DILA XML (JORF n°0137 sommaire + 2 texts) in a rebuilt tar.gz envelope, "
              "standing for the morning delta named in the listing "
              "(see tests/fixtures/reconstructed/README.md)",
              optional=True),
    DemoEntry("https://echanges.dila.gouv.fr/OPENDATA/JORFSIMPLE/JORFSIMPLE_20260612-205512.tar.gz",
              "reconstructed/reconstructed_JORFSIMPLE_20260612-205512.tar.gz", "application/x-gzip",
              "2026-06-12T20:55:12+02:00",
              "RECONSTRUCTED: real DILA XML in a rebuilt tar.gz envelope, standing for the evening delta "
              "(a re-delivery of an already published text)", optional=True),
    DemoEntry("https://echanges.dila.gouv.fr/OPENDATA/CNIL/",
              "reconstructed/reconstructed_dila_opendata_CNIL_index_listing.html", "text/html;charset=ISO-8859-1",
              "2026-05-07T21:40:00+02:00",
              "RECONSTRUCTED: an Apache 'Index of' page in the shape of the real JORFSIMPLE one, listing the one "
              "CNIL delta the real CNIL XML came from", optional=True),
    DemoEntry("https://echanges.dila.gouv.fr/OPENDATA/CNIL/CNIL_20260507-213433.tar.gz",
              "reconstructed/reconstructed_CNIL_20260507-213433.tar.gz", "application/x-gzip",
              "2026-05-07T21:34:33+02:00",
              "RECONSTRUCTED: the real DILA CNIL délibération n° 2026-047 (CNILTEXT000054047151) in a rebuilt "
              "tar.gz envelope", optional=True),
    DemoEntry("https://www.cnil.fr/fr/rss.xml",
              "cnil/bmeret_cnil_feed_scraped-actualite_500items_2026-08-19.xml",
              "application/rss+xml; charset=utf-8",
              "2026-08-19T00:00:00+00:00",
              "STAND-IN: RSS 2.0 generated by a third-party scraper of cnil.fr/fr/actualite (500 real "
              "items), not cnil.fr's own rss.xml, which has no capture yet"),
    # RECONSTRUCTED feeds (real items, invented envelope; see tests/fixtures/reconstructed/README.md); no
    # capture date exists: recorded_at = the newest item's date. Left out on purpose:
    # reconstructed_cnil_rss.xml and reconstructed_eurlex_oj_feed.xml, whose URLs already carry real files.
    DemoEntry("https://ansm.sante.fr/rss/actualites",
              "reconstructed/reconstructed_ansm_rss_actualites.xml", "application/rss+xml; charset=utf-8",
              "2026-10-09T08:00:00+00:00",
              "RECONSTRUCTED: 14 real ANSM news items (titles, links, dates) in an invented RSS envelope",
              optional=True),
    DemoEntry("https://ansm.sante.fr/rss/informations_securite",
              "reconstructed/reconstructed_ansm_rss_informations_securite.xml",
              "application/rss+xml; charset=utf-8", "2026-10-08T00:00:00+02:00",
              "RECONSTRUCTED: 2 real ANSM safety items + 12 real recall records in an invented RSS envelope",
              optional=True),
    DemoEntry("https://www.edpb.europa.eu/feed/news_en",
              "reconstructed/reconstructed_edpb_news_feed.xml", "application/rss+xml; charset=utf-8",
              "2026-07-30T10:00:00+00:00",
              "RECONSTRUCTED: 10 real EDPB news items in an invented RSS envelope", optional=True),
    DemoEntry("https://www.vigier-avocats.com/feed/",
              "reconstructed/reconstructed_wordpress_vigier_feed.xml", "application/rss+xml; charset=UTF-8",
              "2026-03-26T09:00:00+00:00",
              "RECONSTRUCTED: the 2 real Vigier Avocats post URLs, everything else invented "
              "(WordPress + Yoast shape)", optional=True),
    DemoEntry("https://www.legalis.net/feed/",
              "reconstructed/reconstructed_wordpress_legalis_feed.xml", "application/rss+xml; charset=UTF-8",
              "2026-07-16T07:00:00+00:00",
              "RECONSTRUCTED: 8 real Legalis items in an invented WordPress RSS envelope", optional=True),
    DemoEntry("https://www.health-data-hub.fr/bibliotheque-ouverte-algorithmes-sante",
              "health_data_hub/hdh_listing_bibliotheque-algorithmes_page0.html", "text/html; charset=UTF-8",
              "2026-07-01T00:00:00+00:00",
              "real Drupal 11 listing page 0 (scraped 2026-07, day unknown)"),
    DemoEntry("https://eur-lex.europa.eu/FR/display-feed.rss?rssId=222",
              "eurlex/eurlex_frontend_202_waf_challenge_empty.http.txt", "",
              "2026-09-11T11:33:27+00:00",
              "real captured EUR-Lex answer to an automated client: empty 202, x-amzn-waf-action: challenge "
              "(status and headers from the envelope; captured on the EUR-Lex front end, replayed on the "
              "feed URL)"),
)


def parse_http_envelope(text: str) -> tuple[int, dict[str, str], bytes]:
    """``HTTP/1.1 202 Accepted`` + header lines + blank line + body -> (status, headers, body)."""
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    status_line, *lines = head.splitlines()
    status = int(status_line.split()[1])
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body.encode("utf-8")


def _demo_response(entry: DemoEntry, path: Path) -> tuple[int, dict[str, str], bytes]:
    if path.name.endswith(".http.txt"):
        return parse_http_envelope(path.read_text("utf-8"))
    content = path.read_bytes()
    when = format_datetime(datetime.fromisoformat(entry.recorded_at).astimezone(UTC), usegmt=True)
    headers = {"content-type": entry.content_type, "etag": f'"{hashlib.sha1(content).hexdigest()[:16]}"',
               "last-modified": when, "date": when}
    return 200, headers, content


def build_demo_recording(fixtures_dir: Path, out: Path, entries: Iterable[DemoEntry] = DEMO) -> list[str]:
    """(Re)build the demo recording in ``out`` from ``fixtures_dir``; returns the URLs written."""
    if out.exists():
        if any(out.iterdir()) and not (out / INDEX).exists():
            raise FileExistsError(f"{out} is not empty and is not a recording; refusing to overwrite it")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    written = []
    for entry in entries:
        path = fixtures_dir / entry.fixture
        if not path.exists():
            if entry.optional:
                continue
            raise FileNotFoundError(path)
        status, headers, content = _demo_response(entry, path)
        save_response(out, entry.url, status, headers, content, entry.recorded_at, note=entry.note,
                      source_file=f"tests/fixtures/{entry.fixture}")
        written.append(entry.url)
    entries = list(entries)
    missing = [e for e in entries if e.url not in written]
    (out / "README.md").write_text(_demo_readme([e for e in entries if e.url in written], missing), "utf-8")
    return written


def _demo_readme(entries: list[DemoEntry], missing: list[DemoEntry]) -> str:
    rows = [f"| {e.url} | `tests/fixtures/{e.fixture}` | {e.recorded_at[:10]} | {e.note} |" for e in entries]
    lines = [_README_HEAD, *rows, "", _README_404]
    if missing:
        lines += ["", "Declared in `DEMO` but skipped because the file is absent:", ""]
        lines += [f"- {e.url} (from `tests/fixtures/{e.fixture}`, not built yet)" for e in missing]
    return "\n".join(lines) + "\n"


_README_HEAD = """# The bundled replay set (demo)

Generated by `python -m watcher.replay build-demo` from the table `DEMO` in `watcher/replay.py`; do not edit
by hand. Every body is copied byte for byte from `tests/fixtures` (see `tests/fixtures/PROVENANCE.md` for
where each file comes from); headers other than those of a captured envelope (content-type, ETag,
Last-Modified, Date) are written by the script. Files named `reconstructed_*` were built by this project
from real items and are labelled as such (RECONSTRUCTED below); they are not captures.

Serve it with `ReplayServer(DEMO_RECORDING)` and build the client with `url_map=server.url_map`.

| original URL | bytes from | captured | what it is |
|---|---|---|---|"""
_README_404 = """Any other URL is answered 404 (so an unrecorded robots.txt means "allowed"). In particular
the tarballs named in the JORFSIMPLE listing are only served if a row above maps them (the third one, of 11
June, is not)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m watcher.replay")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("build-demo", help="rebuild the bundled demo recording from tests/fixtures")
    demo.add_argument("--fixtures", type=Path, default=Path("tests/fixtures"))
    demo.add_argument("--out", type=Path, default=DEMO_RECORDING)
    args = parser.parse_args(argv)
    for url in build_demo_recording(args.fixtures, args.out):
        print(f"recorded {url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
