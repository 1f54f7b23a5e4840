"""HttpClient against the real local replay server (real sockets, real httpx); time is faked."""

from __future__ import annotations

import gzip
import itertools
import socket
import threading
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from conftest import FIXTURES, TEST_SETTINGS, FakeClock

from tools.build_demo_recording import parse_http_envelope
from watcher.config.settings import Settings
from watcher.http import HttpClient, Response, build_client, looks_like_html, retry_after_seconds
from watcher.replay import ReplayServer
from watcher.util.errors import BotWallError, FetchError, ParseError, SourceError

Make = Callable[..., HttpClient]
FEED = "https://example.test/feed.xml"
RSS = b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>t</title></channel></rss>'


def get_error(client: HttpClient, url: str = FEED, **kw: object) -> SourceError:
    with pytest.raises((FetchError, ParseError)) as info:
        client.get(url, source="src", **kw)  # type: ignore[arg-type]
    assert info.value.source == "src"
    assert str(info.value).startswith("[src] ")
    return info.value


# -- success and conditional GET -----------------------------------------------------------------------------

def test_200_with_etag_then_304(replay_server: ReplayServer, http_client: Make) -> None:
    replay_server.add(FEED, headers={"ETag": '"v1"', "Last-Modified": "Tue, 01 Sep 2026 10:00:00 GMT",
                                     "Content-Type": "application/rss+xml; charset=utf-8"}, body=RSS)
    client = http_client()
    first = client.get(FEED, source="src", expect="feed")
    assert (first.status, first.content, first.not_modified) == (200, RSS, False)
    assert first.url == FEED  # the original URL, not the mapped one
    assert first.etag == '"v1"' and first.last_modified == "Tue, 01 Sep 2026 10:00:00 GMT"
    assert first.headers["content-type"] == "application/rss+xml; charset=utf-8"

    second = client.get(FEED, source="src", etag=first.etag, last_modified=first.last_modified, expect="feed")
    assert second.not_modified and second.status == 304 and second.content == b""
    sent = replay_server.requests[-1].headers
    assert sent["if-none-match"] == '"v1"'
    assert sent["if-modified-since"] == "Tue, 01 Sep 2026 10:00:00 GMT"


def test_changed_etag_gets_the_new_body(replay_server: ReplayServer, http_client: Make) -> None:
    replay_server.add(FEED, headers={"ETag": '"v2"'}, body=RSS)
    response = http_client().get(FEED, source="src", etag='"v1"')
    assert response.status == 200 and response.content == RSS and response.etag == '"v2"'


def test_user_agent_is_honest(replay_server: ReplayServer, http_client: Make) -> None:
    replay_server.add(FEED, body=RSS)
    http_client().get(FEED, source="src")
    agent = replay_server.requests[-1].headers["user-agent"]
    assert agent.startswith("watcher/") and "tests@example.org" in agent


# -- statuses ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "words"), [
    (403, "403 Forbidden: the site refuses automated clients; check the URL or contact"),
    (404, "404 Not Found: the page does not exist"),
    (410, "410 Gone: the site removed this page"),
    (401, "401 Unauthorized: the site requires credentials"),
    (418, "418 I'm a Teapot: the server refused the request"),
])
def test_4xx_is_an_actionable_fetch_error(replay_server: ReplayServer, http_client: Make, status: int,
                                         words: str, fake_clock: FakeClock) -> None:
    replay_server.add(FEED, status=status, body=b"<html>no</html>")
    error = get_error(http_client())
    assert type(error) is FetchError
    assert error.status == status and words in str(error)
    assert replay_server.count(FEED) == 1 and fake_clock.sleeps == []  # 4xx is not retried


def test_unknown_url_on_the_server_is_404(http_client: Make) -> None:
    assert get_error(http_client(), "https://example.test/nothing").status == 404


def test_500_is_retried_with_backoff_then_fails(replay_server: ReplayServer, http_client: Make,
                                               fake_clock: FakeClock) -> None:
    replay_server.add(FEED, status=500)
    error = get_error(http_client(retries=2))
    assert error.status == 500 and "500 Internal Server Error" in str(error)
    assert replay_server.count(FEED) == 3
    assert fake_clock.sleeps == [1.0, 2.0]


def test_503_then_200_succeeds(replay_server: ReplayServer, http_client: Make, fake_clock: FakeClock) -> None:
    replay_server.add(FEED, status=503).add(FEED, body=RSS)
    response = http_client().get(FEED, source="src", expect="feed")
    assert response.content == RSS
    assert replay_server.count(FEED) == 2 and fake_clock.sleeps == [1.0]


def test_429_honours_retry_after_seconds(replay_server: ReplayServer, http_client: Make,
                                         fake_clock: FakeClock) -> None:
    replay_server.add(FEED, status=429, headers={"Retry-After": "2"}).add(FEED, body=RSS)
    assert http_client().get(FEED, source="src").content == RSS
    assert fake_clock.sleeps == [2.0]


def test_retry_after_as_an_http_date(replay_server: ReplayServer, http_client: Make,
                                     fake_clock: FakeClock) -> None:
    now = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
    replay_server.add(FEED, status=503, headers={"Date": format_datetime(now, usegmt=True),
                                                 "Retry-After": format_datetime(now + timedelta(seconds=7),
                                                                                usegmt=True)})
    replay_server.add(FEED, body=RSS)
    http_client().get(FEED, source="src")
    assert fake_clock.sleeps == [7.0]


def test_retry_after_too_long_fails_naming_the_wait(replay_server: ReplayServer, http_client: Make,
                                                    fake_clock: FakeClock) -> None:
    replay_server.add(FEED, status=429, headers={"Retry-After": "3600"})
    error = get_error(http_client(max_retry_after=120.0))
    assert "wait 3600s (Retry-After)" in str(error) and "max_retry_after=120s" in str(error)
    assert replay_server.count(FEED) == 1 and fake_clock.sleeps == []


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("Tue, 01 Sep 2026 10:00:00 GMT", date="Tue, 01 Sep 2026 10:01:00 GMT") == 0.0


# -- network failures ----------------------------------------------------------------------------------------

def test_timeout_is_retried_then_reported(replay_server: ReplayServer, http_client: Make,
                                          fake_clock: FakeClock) -> None:
    replay_server.add(FEED, delay=1.0, body=RSS)
    error = get_error(http_client(timeout=0.2, retries=1, respect_robots=False))
    assert "timed out after 0.2s" in str(error) and "after 1 retries" in str(error)
    assert fake_clock.sleeps == [1.0]


def test_connection_refused(http_client: Make, fake_clock: FakeClock) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = http_client(retries=1, url_map=lambda url: f"http://127.0.0.1:{port}/x")
    error = get_error(client)
    assert "connection refused" in str(error) and type(error) is FetchError
    assert fake_clock.sleeps == [1.0]  # robots.txt unreachable = allowed; the GET itself was retried once


def test_connection_error_then_success_with_mock_transport(fake_clock: FakeClock) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.ConnectError("boom", request=request)
        return httpx.Response(200, content=RSS)

    client = build_client(Settings(respect_robots=False, contact="x@example.org"),
                          transport=httpx.MockTransport(handler), sleep=fake_clock.sleep, clock=fake_clock)
    with client:
        assert client.get(FEED, source="src").content == RSS
    assert calls == ["/feed.xml", "/feed.xml"] and fake_clock.sleeps == [1.0]


def test_truncated_body_is_a_fetch_error(replay_server: ReplayServer, http_client: Make) -> None:
    replay_server.add(FEED, body=RSS, truncate_at=20)
    error = get_error(http_client(retries=0))
    assert "truncated body" in str(error)


def test_non_http_url_is_refused(http_client: Make) -> None:
    assert "only http and https" in str(get_error(http_client(), "ftp://example.test/file"))


# -- bot walls and wrong content -----------------------------------------------------------------------------

def test_empty_202_waf_challenge_is_a_bot_wall(replay_server: ReplayServer, http_client: Make,
                                               ) -> None:
    status, headers, body = parse_http_envelope(
        (FIXTURES / "eurlex" / "eurlex_frontend_202_waf_challenge_empty.http.txt").read_text("utf-8"))
    url = "https://eur-lex.europa.eu/FR/display-feed.rss?rssId=222"
    replay_server.add(url, status=status, headers=headers, body=body)
    with pytest.raises(BotWallError) as info:
        http_client().get(url, source="eurlex", expect="feed")
    assert str(info.value) == "[eurlex] empty 202 response (bot wall: x-amzn-waf-action=challenge)"
    assert info.value.status == 202 and info.value.url == url


@pytest.mark.parametrize("body", [b"", b"  \n"])
def test_empty_200_is_not_no_news(replay_server: ReplayServer, http_client: Make, body: bytes) -> None:
    replay_server.add(FEED, body=body)
    error = get_error(http_client())
    assert isinstance(error, BotWallError) and "empty 200 response" in str(error)


@pytest.mark.parametrize("body", [
    b"<!DOCTYPE html><html><body>Just a moment...</body></html>",
    b"\xef\xbb\xbf\n  <html lang='fr'><head><title>Accueil</title></head></html>",
    b"<!-- cache -->\n<!doctype HTML>\n<html>",
    b'<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN">\n<html xmlns="x">',
])
def test_html_on_a_feed_url_is_a_parse_error(replay_server: ReplayServer, http_client: Make,
                                             body: bytes) -> None:
    replay_server.add(FEED, headers={"Content-Type": "text/html; charset=utf-8"}, body=body)
    client = http_client()
    error = get_error(client, expect="feed")
    assert type(error) is ParseError
    assert "HTML served where a feed was expected (text/html; charset=utf-8)" in str(error)
    assert "HTML served where XML was expected" in str(get_error(client, expect="xml"))
    assert client.get(FEED, source="src", expect="html").content == body  # fine where HTML is expected


def test_html_inside_a_feed_is_not_an_html_page() -> None:
    assert not looks_like_html(b'<?xml version="1.0"?><rss><channel><description><![CDATA[<html><body>x'
                               b"</body></html>]]></description></channel></rss>")


def test_waf_challenge_with_a_body_is_still_a_bot_wall(replay_server: ReplayServer,
                                                       http_client: Make) -> None:
    replay_server.add(FEED, status=202, headers={"x-amzn-waf-action": "challenge"}, body=b"<html>js</html>")
    error = get_error(http_client())
    assert isinstance(error, BotWallError)
    assert "202 response (bot wall: x-amzn-waf-action=challenge)" in str(error)


def test_a_real_feed_is_not_taken_for_html() -> None:
    feed = FIXTURES / "cnil" / "bmeret_cnil_feed_scraped-actualite_500items_2026-08-19.xml"
    assert not looks_like_html(feed.read_bytes())
    assert looks_like_html((FIXTURES / "jorf" / "dila_opendata_JORFSIMPLE_index_listing_reformatted.html")
                           .read_bytes())


def test_tar_must_be_gzip(replay_server: ReplayServer, http_client: Make) -> None:
    url = "https://echanges.dila.gouv.fr/OPENDATA/JORFSIMPLE/JORFSIMPLE_20260612-205512.tar.gz"
    replay_server.add(url, body=b"<html>maintenance</html>").add(url, body=gzip.compress(b"data"))
    client = http_client()
    assert "not a gzip archive" in str(get_error(client, url, expect="tar"))
    assert client.get(url, source="src", expect="tar").content[:2] == b"\x1f\x8b"


def test_unknown_expect_is_a_programming_error(http_client: Make) -> None:
    with pytest.raises(ValueError, match="expect must be one of"):
        http_client().get(FEED, source="src", expect="rss")


# -- size cap ------------------------------------------------------------------------------------------------

def test_50mb_streamed_body_is_cut_at_max_bytes_without_eating_memory(replay_server: ReplayServer,
                                                                      http_client: Make) -> None:
    replay_server.add(FEED, size=50_000_000, content_length=False)  # no Content-Length: must stream and stop
    client = http_client(max_bytes=1_000_000, retries=0)
    tracemalloc.start()
    try:
        error = get_error(client)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "response larger than 1000000 bytes" in str(error)
    assert peak < 10_000_000


def test_declared_content_length_over_the_cap_is_rejected_early(replay_server: ReplayServer,
                                                                http_client: Make) -> None:
    replay_server.add(FEED, size=50_000_000)
    error = get_error(http_client(max_bytes=1_000_000, retries=0))
    assert str(error) == "[src] response larger than 1000000 bytes (Content-Length: 50000000)"


def test_a_body_that_trickles_in_is_given_up_after_max_transfer_seconds(replay_server: ReplayServer) -> None:
    """Each read arrives well within the timeout, so only a limit on the whole transfer stops a trickle."""
    body = RSS * 200  # ~22 KB, sent by the server in 512-byte pieces 5 ms apart
    replay_server.add(FEED, body=body, drip=0.005)
    seconds = itertools.count()  # the client's clock: every look at it is one second later
    settings = replace(TEST_SETTINGS, max_transfer_seconds=10.0, respect_robots=False)
    client = build_client(settings, url_map=replay_server.url_map, sleep=lambda s: None,
                          clock=lambda: float(next(seconds)))
    try:
        error = get_error(client)
    finally:
        client.close()
    assert "response still arriving after 10s" in str(error) and "too slow" in str(error)
    assert replay_server.count(FEED) == 1, "a server that slow is not asked again in the same run"
    with build_client(settings, url_map=replay_server.url_map) as patient:  # real time: 0.2 s is well within 10 s
        assert patient.get(FEED, source="src").content == body


# -- redirects -----------------------------------------------------------------------------------------------

def test_redirect_is_followed_and_reported_in_original_form(replay_server: ReplayServer,
                                                            http_client: Make) -> None:
    replay_server.add("http://example.test/old", status=301, headers={"Location": "/feed.xml"})
    replay_server.add("http://example.test/feed.xml", body=RSS)
    response = http_client().get("http://example.test/old", source="src")
    assert response.content == RSS
    assert response.url == "http://example.test/feed.xml" and response.redirects == ("http://example.test/old",)


def test_redirect_loop(replay_server: ReplayServer, http_client: Make) -> None:
    replay_server.add("https://example.test/a", status=302, headers={"Location": "https://example.test/b"})
    replay_server.add("https://example.test/b", status=302, headers={"Location": "/a"})
    error = get_error(http_client(), "https://example.test/a")
    assert "redirect loop" in str(error)


def test_redirect_to_ftp_is_refused(replay_server: ReplayServer, http_client: Make) -> None:
    replay_server.add(FEED, status=302, headers={"Location": "ftp://files.example.test/feed.xml"})
    error = get_error(http_client())
    assert "redirect to a non-HTTP URL refused: ftp://files.example.test/feed.xml" in str(error)


def test_too_many_redirects(replay_server: ReplayServer, http_client: Make) -> None:
    for i in range(10):
        replay_server.add(f"https://example.test/{i}", status=307, headers={"Location": f"/{i + 1}"})
    error = get_error(http_client(max_redirects=3), "https://example.test/0")
    assert "too many redirects (more than 3)" in str(error)
    assert replay_server.count("https://example.test/3") == 1
    assert replay_server.count("https://example.test/4") == 0


# -- robots.txt ----------------------------------------------------------------------------------------------

def test_robots_disallow_is_honoured_and_fetched_once(replay_server: ReplayServer, http_client: Make) -> None:
    replay_server.add("https://example.test/robots.txt", body=b"User-agent: *\nDisallow: /private/\n")
    replay_server.add("https://example.test/public", body=RSS)
    client = http_client()
    error = get_error(client, "https://example.test/private/feed")
    assert "disallowed by robots.txt of https://example.test" in str(error)
    assert replay_server.count("https://example.test/private/feed") == 0
    assert client.get("https://example.test/public", source="src").content == RSS
    assert client.get("https://example.test/public", source="src").content == RSS
    assert replay_server.count("https://example.test/robots.txt") == 1


def test_robots_is_read_again_after_a_day_and_its_new_rules_apply(
        replay_server: ReplayServer, http_client: Make, fake_clock: FakeClock) -> None:
    robots = "https://example.test/robots.txt"
    replay_server.add(robots, body=b"User-agent: *\nCrawl-delay: 5\n")
    replay_server.add(robots, body=b"User-agent: *\nDisallow: /\n")  # what the host says the next day
    replay_server.add(FEED, body=RSS)
    client = http_client(host_delay=1.0)
    client.get(FEED, source="src")
    fake_clock.now += 23 * 3600
    client.get(FEED, source="src")
    assert replay_server.count(robots) == 1, "a copy younger than a day is used"
    assert fake_clock.sleeps == [5.0], "the host's Crawl-delay paced the first request only: 23 h passed"
    fake_clock.now += 2 * 3600
    assert "disallowed by robots.txt" in str(get_error(client))
    assert replay_server.count(robots) == 2 and replay_server.count(FEED) == 2


def test_robots_rules_for_our_agent(replay_server: ReplayServer, http_client: Make) -> None:
    replay_server.add("https://example.test/robots.txt",
                      body=b"User-agent: watcher\nDisallow: /\n\nUser-agent: *\nAllow: /\n")
    assert "disallowed by robots.txt" in str(get_error(http_client()))


def test_robots_crawl_delay_slows_the_host(replay_server: ReplayServer, http_client: Make,
                                           fake_clock: FakeClock) -> None:
    replay_server.add("https://example.test/robots.txt", body=b"User-agent: *\nCrawl-delay: 5\n")
    replay_server.add(FEED, body=RSS)
    http_client(host_delay=1.0).get(FEED, source="src")
    assert fake_clock.sleeps == [5.0]


@pytest.mark.parametrize("status", [404, 500, 403])
def test_missing_or_broken_robots_means_allowed(replay_server: ReplayServer, http_client: Make,
                                                status: int, fake_clock: FakeClock) -> None:
    replay_server.add("https://example.test/robots.txt", status=status, body=b"User-agent: *\nDisallow: /\n")
    replay_server.add(FEED, body=RSS)
    assert http_client().get(FEED, source="src").content == RSS
    assert replay_server.count("https://example.test/robots.txt") == 1 and fake_clock.sleeps == []


def test_robots_can_be_switched_off(replay_server: ReplayServer, http_client: Make) -> None:
    replay_server.add(FEED, body=RSS)
    http_client(respect_robots=False).get(FEED, source="src")
    assert [r.key for r in replay_server.requests] == ["example.test/feed.xml"]


# -- pacing --------------------------------------------------------------------------------------------------

def test_host_delay_between_two_requests_to_the_same_host(replay_server: ReplayServer, http_client: Make,
                                                          fake_clock: FakeClock) -> None:
    replay_server.add(FEED, body=RSS).add("https://other.test/feed", body=RSS)
    client = http_client(host_delay=1.5, respect_robots=False)
    client.get(FEED, source="src")
    assert fake_clock.sleeps == []
    fake_clock.now += 0.5  # 0.5 s spent elsewhere
    client.get(FEED, source="src")
    assert fake_clock.sleeps == [1.0]
    client.get("https://other.test/feed", source="src")  # another host: no wait
    assert fake_clock.sleeps == [1.0]
    fake_clock.now += 10
    client.get(FEED, source="src")  # long after: no wait
    assert fake_clock.sleeps == [1.0]


def test_one_request_at_a_time_and_one_robots_txt_per_host_across_threads(fake_clock: FakeClock) -> None:
    inflight: dict[str, int] = {}
    peak: dict[str, int] = {}
    lock = threading.Lock()
    pause = threading.Event()

    robots: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if request.url.path == "/robots.txt":
            robots.append(host)
            return httpx.Response(404)
        with lock:
            inflight[host] = inflight.get(host, 0) + 1
            peak[host] = max(peak.get(host, 0), inflight[host])
        pause.wait(0.005)  # give a second thread the chance to overlap, if the client let it
        with lock:
            inflight[host] -= 1
        return httpx.Response(200, content=RSS)

    clock = fake_clock
    settings = Settings(host_delay=0.0)
    transport = httpx.MockTransport(handler)
    with build_client(settings, transport=transport, sleep=clock.sleep, clock=clock) as client:
        urls = [f"https://{host}.test/{i}" for i in range(8) for host in ("a", "b")]
        with ThreadPoolExecutor(max_workers=8) as pool:
            results: list[Response] = list(pool.map(lambda u: client.get(u, source="src"), urls))
    assert all(r.content == RSS for r in results)
    assert peak == {"a.test": 1, "b.test": 1}
    assert sorted(robots) == ["a.test", "b.test"]  # robots.txt fetched once per host despite the threads


def test_a_refused_url_is_named_without_its_credentials_or_secret_query_values(http_client: Make) -> None:
    message = str(get_error(http_client(), "ftp://user:pw@files.example.test/x?token=abc&page=2"))
    assert "only http and https URLs can be fetched, not ftp://****@files.example.test/x?token=****&page=2" in message
