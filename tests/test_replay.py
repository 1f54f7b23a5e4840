"""The recording layout, the replay server, ``record`` and the bundled demo recording."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tools.build_demo_recording import DEMO, build_demo_recording, parse_http_envelope
from watcher.http import HttpClient
from watcher.replay import (
    DEMO_RECORDING,
    ReplayServer,
    load_recording,
    record,
    replay_key,
    save_response,
    slug_for,
)
from watcher.util.errors import BotWallError

Make = Callable[..., HttpClient]
NOW = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)
WAF = "eurlex/eurlex_frontend_202_waf_challenge_empty.http.txt"


# -- layout --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "slug"), [
    ("https://www.cnil.fr/fr/rss.xml", "fr_rss.xml"),
    ("https://echanges.dila.gouv.fr/OPENDATA/JORFSIMPLE/", "OPENDATA_JORFSIMPLE"),
    ("https://eur-lex.europa.eu/FR/display-feed.rss?rssId=222", "FR_display-feed.rss_rssId_222"),
    ("https://www.vigier-avocats.com/", "index"),
    ("https://example.test/../../etc/passwd", "etc_passwd"),
])
def test_slug_for(url: str, slug: str) -> None:
    assert slug_for(url) == slug


def test_long_slugs_are_cut_with_a_hash() -> None:
    a = slug_for("https://example.test/" + "a" * 300 + "?page=1")
    b = slug_for("https://example.test/" + "a" * 300 + "?page=2")
    assert len(a) == 80 and a != b and a[:60] == b[:60]


def test_replay_key_ignores_scheme_and_percent_encoding() -> None:
    assert replay_key("https://Example.test/a%20b?q=1") == replay_key("http://example.test/a b?q=1")
    assert replay_key("https://example.test") == "example.test/"


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    body = b"\x00\xffraw bytes"
    path = save_response(tmp_path, "https://example.test/a/b?x=1", 200,
                         {"Content-Type": "application/xml", "Content-Length": "12",
                          "Set-Cookie": "sid=secret", "ETag": '"e"'}, body, NOW)
    assert path == tmp_path / "example.test" / "a_b_x_1.body" and path.read_bytes() == body
    index = json.loads((tmp_path / "index.json").read_text())
    assert index == {"https://example.test/a/b?x=1": "example.test/a_b_x_1.body"}
    rec = load_recording(tmp_path)["https://example.test/a/b?x=1"]
    assert (rec.status, rec.body(), rec.recorded_at) == (200, body, "2026-11-02T08:30:00+00:00")
    # no transfer headers, no cookies
    assert rec.headers == {"content-type": "application/xml", "etag": '"e"'}


def test_colliding_slugs_get_distinct_files(tmp_path: Path) -> None:
    first = save_response(tmp_path, "https://example.test/a?b", 200, {}, b"1", NOW)
    second = save_response(tmp_path, "https://example.test/a/b", 200, {}, b"2", NOW)
    assert first != second
    assert {u: r.body() for u, r in load_recording(tmp_path).items()} == {
        "https://example.test/a?b": b"1", "https://example.test/a/b": b"2"}


def test_parse_http_envelope(fixtures_dir: Path) -> None:
    status, headers, body = parse_http_envelope((fixtures_dir / WAF).read_text("utf-8"))
    assert status == 202 and body == b""
    assert headers["x-amzn-waf-action"] == "challenge" and headers["content-length"] == "0"
    assert headers["server"] == "CloudFront"


# -- the server ----------------------------------------------------------------------------------------------

def test_server_replays_a_recording_byte_for_byte(tmp_path: Path) -> None:
    body = "Index of /OPENDATA — é".encode("iso-8859-1", errors="replace")
    save_response(tmp_path, "https://example.test/list/", 200,
                  {"Content-Type": "text/html;charset=ISO-8859-1", "ETag": '"abc"',
                   "Last-Modified": "Fri, 12 Jun 2026 19:00:00 GMT"}, body, NOW)
    with ReplayServer(tmp_path) as server, httpx.Client() as raw:
        response = raw.get(server.url_map("https://example.test/list/"))
        assert response.status_code == 200 and response.content == body
        assert response.headers["content-type"] == "text/html;charset=ISO-8859-1"
        assert response.headers["content-length"] == str(len(body))
        assert raw.get(server.url_map("https://example.test/list/"),
                       headers={"If-None-Match": 'W/"abc"'}).status_code == 304
        assert raw.get(server.url_map("https://example.test/list/"),
                       headers={"If-Modified-Since": "Sat, 13 Jun 2026 00:00:00 GMT"}).status_code == 304
        assert raw.get(server.url_map("https://example.test/list/"),
                       headers={"If-Modified-Since": "Thu, 11 Jun 2026 00:00:00 GMT"}).status_code == 200
        assert raw.get(server.url_map("https://example.test/robots.txt")).status_code == 404
    assert [r.status for r in server.requests] == [200, 304, 304, 200, 404]
    assert server.count("https://example.test/list/") == 4


def test_url_map() -> None:
    with ReplayServer() as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        mapped = server.url_map("https://Www.Cnil.fr/fr/rss.xml?x=1")
        assert mapped == f"{server.base_url}/www.cnil.fr/fr/rss.xml?x=1"
        assert server.url_map("https://example.test") == f"{server.base_url}/example.test/"


def test_scripted_sequence_then_the_last_answer_repeats(replay_server: ReplayServer) -> None:
    url = "https://example.test/feed"
    replay_server.add(url, status=503, headers={"Retry-After": "1"}).add(url, body=b"ok")
    with httpx.Client() as raw:
        statuses = [raw.get(replay_server.url_map(url)).status_code for _ in range(3)]
    assert statuses == [503, 200, 200]


def test_scripted_answers_win_over_recordings(tmp_path: Path) -> None:
    save_response(tmp_path, "https://example.test/x", 200, {}, b"recorded", NOW)
    with ReplayServer(tmp_path) as server, httpx.Client() as raw:
        server.add("https://example.test/x", status=500)
        assert raw.get(server.url_map("https://example.test/x")).status_code == 500


def test_generated_body_streams_without_content_length(replay_server: ReplayServer) -> None:
    replay_server.add("https://example.test/big", size=300_000, content_length=False)
    url = replay_server.url_map("https://example.test/big")
    with httpx.Client() as raw, raw.stream("GET", url) as response:
        assert "content-length" not in response.headers
        assert sum(len(chunk) for chunk in response.iter_bytes()) == 300_000


# -- record --------------------------------------------------------------------------------------------------

def test_record_then_replay_gives_the_same_answers(tmp_path: Path, replay_server: ReplayServer,
                                                   http_client: Make, fixtures_dir: Path) -> None:
    feed = (fixtures_dir / "cnil" / "bmeret_cnil_feed_scraped-actualite_6items_2026-06-16.xml").read_bytes()
    status, headers, body = parse_http_envelope((fixtures_dir / WAF).read_text("utf-8"))
    replay_server.add("https://www.cnil.fr/fr/rss.xml", body=feed,
                      headers={"Content-Type": "application/rss+xml; charset=utf-8", "ETag": '"c1"'})
    replay_server.add("https://eur-lex.europa.eu/FR/display-feed.rss?rssId=222", status=status,
                      headers=headers, body=body)
    replay_server.add("https://slow.test/feed", status=429, headers={"Retry-After": "99999"})
    urls = ["https://www.cnil.fr/fr/rss.xml", "https://eur-lex.europa.eu/FR/display-feed.rss?rssId=222",
            "https://slow.test/feed"]

    results = record(urls, tmp_path / "rec", http_client(), NOW)

    assert [(r.status, r.error is None) for r in results] == [(200, True), (202, True), (None, False)]
    assert "Retry-After" in (results[2].error or "")
    with ReplayServer(tmp_path / "rec") as again:
        client = http_client(server=again)
        response = client.get(urls[0], source="cnil", expect="feed")
        assert response.content == feed and response.etag == '"c1"'
        assert client.get(urls[0], source="cnil", etag='"c1"').not_modified
        with pytest.raises(BotWallError, match="x-amzn-waf-action=challenge"):
            client.get(urls[1], source="eurlex", expect="feed")
    meta = json.loads(next((tmp_path / "rec" / "eur-lex.europa.eu").glob("*.meta.json")).read_text())
    assert meta["recorded_at"] == "2026-11-02T08:30:00+00:00" and meta["headers"]["server"] == "CloudFront"


def test_record_follows_redirects_and_notes_the_final_url(tmp_path: Path, replay_server: ReplayServer,
                                                          http_client: Make) -> None:
    replay_server.add("https://example.test/feed", status=301, headers={"Location": "/feed/"})
    replay_server.add("https://example.test/feed/", body=b"<rss/>")
    [result] = record(["https://example.test/feed"], tmp_path, http_client(), NOW)
    assert result.status == 200 and result.path is not None and result.path.read_bytes() == b"<rss/>"
    meta = json.loads(result.path.with_name(result.path.name.replace(".body", ".meta.json")).read_text())
    assert meta["url"] == "https://example.test/feed" and meta["final_url"] == "https://example.test/feed/"


# -- the bundled demo recording ------------------------------------------------------------------------------

def test_demo_build_copies_fixture_bytes(tmp_path: Path, fixtures_dir: Path) -> None:
    written = build_demo_recording(fixtures_dir, tmp_path / "demo")
    recordings = load_recording(tmp_path / "demo")
    assert set(written) == set(recordings) and len(written) >= 4
    for entry in DEMO:
        if entry.url not in recordings:
            assert entry.optional
            continue
        rec = recordings[entry.url]
        if entry.fixture.endswith(".http.txt"):
            assert (rec.status, rec.body(), rec.headers["x-amzn-waf-action"]) == (202, b"", "challenge")
        else:
            assert rec.body() == (fixtures_dir / entry.fixture).read_bytes()
            assert rec.status == 200 and rec.headers["content-type"] == entry.content_type
            assert rec.headers["etag"].startswith('"')


def test_demo_build_refuses_to_wipe_a_foreign_folder(tmp_path: Path, fixtures_dir: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        build_demo_recording(fixtures_dir, tmp_path)
    assert (tmp_path / "mine.txt").exists()


def test_committed_demo_recording_matches_a_fresh_build(tmp_path: Path, fixtures_dir: Path) -> None:
    build_demo_recording(fixtures_dir, tmp_path / "demo")
    fresh = sorted(p.relative_to(tmp_path / "demo") for p in (tmp_path / "demo").rglob("*") if p.is_file())
    committed = sorted(p.relative_to(DEMO_RECORDING) for p in DEMO_RECORDING.rglob("*") if p.is_file())
    assert fresh == committed, "run: python -m tools.build_demo_recording"
    for rel in fresh:
        assert (DEMO_RECORDING / rel).read_bytes() == (tmp_path / "demo" / rel).read_bytes(), rel


def test_demo_recording_through_the_client(demo_server: ReplayServer, http_client: Make,
                                           fixtures_dir: Path) -> None:
    client = http_client(server=demo_server)
    folder = "https://echanges.dila.gouv.fr/OPENDATA/JORFSIMPLE/"
    listing = client.get(folder, source="jorf", expect="listing")
    text = listing.content.decode(listing.headers["content-type"].split("charset=")[1])
    assert re.findall(r'href="(JORFSIMPLE_\d{8}-\d{6}\.tar\.gz)"', text) == [
        "JORFSIMPLE_20260612-002012.tar.gz", "JORFSIMPLE_20260612-205512.tar.gz",
        "JORFSIMPLE_20260611-001512.tar.gz"]
    for name in ("JORFSIMPLE_20260612-002012.tar.gz", "JORFSIMPLE_20260612-205512.tar.gz"):
        tarball = client.get(folder + name, source="jorf", expect="tar")
        assert tarball.content == (fixtures_dir / "reconstructed" / f"reconstructed_{name}").read_bytes()
    feed = client.get("https://www.cnil.fr/fr/rss.xml", source="cnil", expect="feed")
    assert feed.content.count(b"<item>") == 500
    assert client.get("https://www.cnil.fr/fr/rss.xml", source="cnil", etag=feed.etag).not_modified
    with pytest.raises(BotWallError) as info:
        client.get("https://eur-lex.europa.eu/FR/display-feed.rss?rssId=222", source="eurlex", expect="feed")
    assert str(info.value) == "[eurlex] empty 202 response (bot wall: x-amzn-waf-action=challenge)"
