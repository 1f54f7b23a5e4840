"""Recorded HTTP responses: save them (``record``), replay them from a local server (``ReplayServer``).

A recording folder holds one subfolder per host with ``<slug>.body`` (the raw bytes) and ``<slug>.meta.json``
(``{"url", "status", "headers", "recorded_at", ...}``), plus ``index.json`` mapping each original URL to its
body file. ``ReplayServer`` serves such a folder on 127.0.0.1 and, for fault tests, scripted answers added
with ``add()`` (any status, headers, delay, generated huge bodies, truncated bodies, sequences such as 503
then 200). Point an ``HttpClient`` at it with ``url_map=server.url_map``: ``https://host/path?q`` becomes
``http://127.0.0.1:PORT/host/path?q``.

``DEMO_RECORDING`` is the bundled recording the demo replays (package data); it is rebuilt from
``tests/fixtures`` by ``python -m tools.build_demo_recording`` (tooling, not part of the product).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from watcher.util.errors import SourceError

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
