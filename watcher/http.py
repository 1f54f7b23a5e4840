"""The one HTTP client of watcher: polite, bounded, and honest about failures.

``HttpClient.get`` is what sources call. Around one ``httpx.Client`` (sync, no automatic redirects) it adds:

- an honest User-Agent (``Settings.agent()``), conditional GET (ETag / Last-Modified; 304 = ``not_modified``);
- a body size cap (``max_bytes``), checked on Content-Length and while streaming;
- retries with exponential backoff on 5xx, 429 and transport errors, honouring ``Retry-After``;
- one request at a time per host with ``host_delay`` seconds between two of them (and robots.txt Crawl-delay);
- robots.txt, fetched once per host;
- redirects followed by hand, http(s) only, loops detected;
- a verdict on the answer: 4xx, an empty 2xx or a WAF challenge (``BotWallError``), HTML instead of a feed.

``url_map`` rewrites every URL just before it is sent (the replay server uses it); everything the caller sees
(``Response.url``, robots.txt, per-host pacing, redirects) stays in terms of the original URL. ``sleep`` and
``clock`` are injected so that tests never wait.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from types import TracebackType
from urllib.parse import urljoin, urlsplit

if "httpx" not in sys.modules and "pygments" not in sys.modules:
    # httpx imports its command-line client (pygments, rich) whenever they are installed: 0.06 s of CPU in every
    # command. Imported without them, it offers a stub `httpx.main` instead, which watcher never calls.
    sys.modules["pygments"] = None  # type: ignore[assignment]
    try:
        import httpx
    finally:
        del sys.modules["pygments"]
import httpx

from watcher.config.settings import Settings
from watcher.util.errors import BotWallError, FetchError, ParseError
from watcher.util.redact import redact
from watcher.util.robots import RobotsCache

log = logging.getLogger(__name__)

BACKOFF_BASE = 1.0  # seconds before the first retry when the server gives no Retry-After
REDIRECTS = frozenset({301, 302, 303, 307, 308})
EXPECTS = frozenset({"feed", "xml", "html", "listing", "tar", "json"})
_HTML_START = re.compile(rb"^(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])",
                         re.I | re.S)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_ADVICE = {
    400: "the server rejected the request; check the URL",
    401: "the site requires credentials; this source cannot be fetched anonymously",
    403: "the site refuses automated clients; check the URL or contact the site to be allowed",
    404: "the page does not exist (any more); check the source's url",
    405: "the server does not allow GET on this URL; check the URL",
    410: "the site removed this page for good; update or disable the source",
    451: "the page is unavailable for legal reasons",
}

Sleep = Callable[[float], None]
Clock = Callable[[], float]


@dataclass(frozen=True)
class Response:
    """One final answer. ``url`` is the original (un-mapped) URL after redirects."""

    url: str
    status: int
    headers: dict[str, str]
    content: bytes
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    elapsed: float = 0.0
    redirects: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class _Raw:
    status: int
    headers: dict[str, str]
    content: bytes


def host_of(url: str) -> str:
    """``scheme://host[:port]``: the unit of politeness (pacing, robots.txt)."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def retry_after_seconds(value: str | None, *, date: str | None = None) -> float | None:
    """Parse ``Retry-After`` (seconds or an HTTP date, relative to the response's ``Date`` if given)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
        now = parsedate_to_datetime(date) if date else datetime.now(UTC)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds())


def looks_like_html(content: bytes) -> bool:
    """True if the first KB is an HTML document (after a BOM and whitespace)."""
    head = content[:1024]
    for bom in _BOMS:
        if head.startswith(bom):
            head = head[len(bom):]
            break
    return bool(_HTML_START.match(head.lstrip()))


class _HostPacer:
    """At most one request at a time per host, ``delay`` seconds apart (thread-safe)."""

    def __init__(self, delay: float, sleep: Sleep, clock: Clock):
        self.delay, self._sleep, self._clock = delay, sleep, clock
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._last: dict[str, float] = {}
        self._delays: dict[str, float] = {}

    def set_delay(self, host: str, delay: float) -> None:
        self._delays[host] = max(self.delay, delay)

    def slot(self, host: str) -> _Slot:
        with self._guard:
            lock = self._locks.setdefault(host, threading.Lock())
        return _Slot(self, host, lock)

    def wait(self, host: str) -> None:
        last = self._last.get(host)
        if last is not None:
            wait = last + self._delays.get(host, self.delay) - self._clock()
            if wait > 0:
                self._sleep(wait)

    def done(self, host: str) -> None:
        self._last[host] = self._clock()


class _Slot:
    def __init__(self, pacer: _HostPacer, host: str, lock: threading.Lock):
        self.pacer, self.host, self.lock = pacer, host, lock

    def __enter__(self) -> None:
        self.lock.acquire()
        self.pacer.wait(self.host)

    def __exit__(self, *exc: object) -> None:
        self.pacer.done(self.host)
        self.lock.release()


class HttpClient:
    """The shared HTTP client. Build it with ``build_client``; use it as a context manager or close it."""

    def __init__(
        self,
        settings: Settings,
        *,
        url_map: Callable[[str], str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
    ):
        self.settings = settings
        self.user_agent = settings.agent()
        self._map = url_map or (lambda url: url)
        self._sleep, self._clock = sleep, clock
        self._pacer = _HostPacer(settings.host_delay, sleep, clock)
        self._robots = RobotsCache(self.user_agent, clock=clock)
        self._client = httpx.Client(
            timeout=httpx.Timeout(settings.timeout),
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": self.user_agent},
        )

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # -- public ---------------------------------------------------------------------------------------------

    def get(self, url: str, *, source: str, etag: str | None = None, last_modified: str | None = None,
            expect: str | None = None) -> Response:
        """Fetch ``url`` for ``source`` and judge the answer: raises ``FetchError`` / ``BotWallError`` /
        ``ParseError`` unless it is content of the expected kind (or 304, ``not_modified=True``)."""
        if expect is not None and expect not in EXPECTS:
            raise ValueError(f"expect must be one of {sorted(EXPECTS)}, not {expect!r}")
        response = self.fetch(url, source=source, etag=etag, last_modified=last_modified)
        _judge(response, source)
        if not response.not_modified:
            _check_expected(response, source, expect)
        return response

    def fetch(self, url: str, *, source: str, etag: str | None = None,
              last_modified: str | None = None) -> Response:
        """Fetch without judging the final status (used by ``get`` and by ``watcher record``): robots.txt,
        pacing, retries, size cap and redirects apply; a 4xx or an empty body is returned as it is."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        start = self._clock()
        seen: list[str] = []
        _check_scheme(url, source)
        while True:
            if self.settings.respect_robots:
                self._check_robots(url, source)
            raw = self._fetch_with_retries(url, source, headers)
            location = raw.headers.get("location")
            if raw.status not in REDIRECTS or not location:
                return _response(url, raw, self._clock() - start, tuple(seen))
            seen.append(url)
            url = self._next_hop(url, location, seen, source)

    # -- steps ----------------------------------------------------------------------------------------------

    def _next_hop(self, url: str, location: str, seen: list[str], source: str) -> str:
        target = urljoin(url, location.strip())
        if urlsplit(target).scheme.lower() not in ("http", "https"):
            raise FetchError(source, f"redirect to a non-HTTP URL refused: {redact(target)}", url=url)
        if target in seen:
            raise FetchError(source, f"redirect loop: {redact(url)} leads back to {redact(target)}", url=url)
        if len(seen) > self.settings.max_redirects:
            raise FetchError(source, f"too many redirects (more than {self.settings.max_redirects})", url=url)
        return target

    def _check_robots(self, url: str, source: str) -> None:
        host = host_of(url)
        with self._robots.lock_for(host):  # one robots.txt request per host, even with many threads
            if not self._robots.known(host):  # never read, or read more than a day ago
                self._robots.store(host, self._fetch_robots(host))
                delay = self._robots.crawl_delay(host)  # a Crawl-delay dropped since the last read no longer applies
                self._pacer.set_delay(host, min(delay, self.settings.max_retry_after) if delay is not None else 0.0)
        if not self._robots.allowed(host, url):
            raise FetchError(source, f"disallowed by robots.txt of {host}", url=url)

    def _fetch_robots(self, host: str) -> str | None:
        """The robots.txt text, or None when there is none to obey (4xx, 5xx, unreachable, redirected)."""
        url = f"{host}/robots.txt"
        try:
            raw = self._request_once(url, "robots.txt", {})
        except (FetchError, _TransportFailure) as exc:
            log.info("robots.txt of %s not read (%s): everything allowed", host, exc)
            return None
        if raw.status != 200:
            return None
        return raw.content.decode("utf-8", errors="replace")

    def _fetch_with_retries(self, url: str, source: str, headers: Mapping[str, str]) -> _Raw:
        """The last answer after up to ``retries`` retries on 5xx/429 and transport errors."""
        retries = self.settings.retries
        for attempt in range(retries + 1):
            last = attempt == retries
            try:
                raw = self._request_once(url, source, headers)
            except _TransportFailure as exc:
                if last:
                    raise FetchError(source, f"{exc} (after {retries} retries)", url=url) from exc.__cause__
                self._sleep(self._backoff(attempt))
                continue
            if last or (raw.status < 500 and raw.status != 429):
                return raw
            self._sleep(self._retry_wait(raw, attempt, url, source))
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        return min(BACKOFF_BASE * 2**attempt, self.settings.max_retry_after)

    def _retry_wait(self, raw: _Raw, attempt: int, url: str, source: str) -> float:
        wait = retry_after_seconds(raw.headers.get("retry-after"), date=raw.headers.get("date"))
        if wait is None:
            return self._backoff(attempt)
        if wait > self.settings.max_retry_after:
            raise FetchError(
                source,
                f"{_status_text(raw.status)}: the server asks to wait {wait:.0f}s (Retry-After), more than "
                f"max_retry_after={self.settings.max_retry_after:.0f}s; try again later",
                url=url, status=raw.status)
        return wait

    def _request_once(self, url: str, source: str, headers: Mapping[str, str]) -> _Raw:
        """One GET through the host slot, body streamed under the size cap."""
        target = self._map(url)
        with self._pacer.slot(host_of(url)):
            try:
                with self._client.stream("GET", target, headers=dict(headers)) as response:
                    raw = _Raw(response.status_code, dict(response.headers.items()),
                               self._read_capped(response, url, source))
            except httpx.TimeoutException as exc:
                raise _TransportFailure(f"timed out after {self.settings.timeout:g}s") from exc
            except httpx.ConnectError as exc:
                raise _TransportFailure(f"connection refused or host unreachable: {_short(exc)}") from exc
            except httpx.RemoteProtocolError as exc:
                message = f"connection closed mid-response (truncated body): {_short(exc)}"
                raise _TransportFailure(message) from exc
            except httpx.TransportError as exc:
                raise _TransportFailure(f"network error: {_short(exc)}") from exc
        log.debug("GET %s -> %s (%d bytes)", redact(url), raw.status, len(raw.content))
        return raw

    def _read_capped(self, response: httpx.Response, url: str, source: str) -> bytes:
        cap = self.settings.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise FetchError(source, f"response larger than {cap} bytes (Content-Length: {declared})",
                             url=url, status=response.status_code)
        deadline = self._clock() + self.settings.max_transfer_seconds
        chunks, size = [], 0
        for chunk in response.iter_bytes():  # as they arrive (no re-chunking: it only costs CPU)
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                raise FetchError(source, f"response larger than {cap} bytes", url=url,
                                 status=response.status_code)
            if self._clock() > deadline:  # each read is bounded by the timeout, a trickle of them is not
                raise FetchError(source, f"response still arriving after {self.settings.max_transfer_seconds:g}s "
                                 f"({size} bytes so far): too slow, given up", url=url, status=response.status_code)
        return b"".join(chunks)


class _TransportFailure(Exception):
    """A network-level failure worth retrying; becomes a FetchError when retries run out."""


def build_client(settings: Settings, *, url_map: Callable[[str], str] | None = None,
                 transport: httpx.BaseTransport | None = None, sleep: Sleep = time.sleep,
                 clock: Clock = time.monotonic) -> HttpClient:
    """The one place that builds the client; ``url_map`` sends every request elsewhere (the replay server)."""
    return HttpClient(settings, url_map=url_map, transport=transport, sleep=sleep, clock=clock)


# -- verdicts ------------------------------------------------------------------------------------------------

def _response(url: str, raw: _Raw, elapsed: float, redirects: tuple[str, ...]) -> Response:
    return Response(url=url, status=raw.status, headers=raw.headers, content=raw.content,
                    not_modified=raw.status == 304, etag=raw.headers.get("etag"),
                    last_modified=raw.headers.get("last-modified"), elapsed=elapsed, redirects=redirects)


def _judge(response: Response, source: str) -> None:
    status, url = response.status, response.url
    if status == 304:
        return
    waf = response.headers.get("x-amzn-waf-action")
    if 200 <= status < 300:
        if waf:
            empty = "empty " if not response.content else ""
            raise BotWallError(source, f"{empty}{status} response (bot wall: x-amzn-waf-action={waf})",
                               url=url, status=status)
        if not response.content.strip():
            raise BotWallError(source, f"empty {status} response (the site sent no content; not 'no news')",
                               url=url, status=status)
        return
    if status == 429 or status >= 500:
        raise FetchError(source, f"{_status_text(status)}: the server kept failing after retries; try again "
                                 "later", url=url, status=status)
    advice = _ADVICE.get(status, "the server refused the request")
    raise FetchError(source, f"{_status_text(status)}: {advice}", url=url, status=status)


def _check_expected(response: Response, source: str, expect: str | None) -> None:
    content, url = response.content, response.url
    ctype = response.headers.get("content-type", "no content-type")
    if expect in ("feed", "xml") and looks_like_html(content):
        what = "a feed" if expect == "feed" else "XML"
        raise ParseError(source, f"HTML served where {what} was expected ({ctype})", url=url,
                         status=response.status)
    if expect == "tar" and not content.startswith(b"\x1f\x8b"):
        raise ParseError(source, f"not a gzip archive ({ctype}, starts with {content[:8]!r})", url=url,
                         status=response.status)


def _check_scheme(url: str, source: str) -> None:
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise FetchError(source, f"only http and https URLs can be fetched, not {redact(url)}", url=url)


def _status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
