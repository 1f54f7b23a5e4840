"""The editors' door and clean exports (issue 22), on a real archive through the real ASGI app: login throttling
per account and per address, the same work for an unknown account, sessions that expire and that logout revokes,
cookie flags, security headers on every answer, no editor name in the published metadata, the Host header never
trusted, odd paths answered without a 500 or a traceback, the archive's files private, and the newsletter's
Markdown, HTML and e-mail carrying no link, image or HTML that was not in the item, whatever renders them."""

from __future__ import annotations

import asyncio
import os
import re
import stat
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import markdown
import pytest
from archive_support import EDITOR_PASSWORD, busiest_week, copy_archive, write_config
from datasette.app import Datasette
from datasette_auth_passwords.utils import hash_password
from markdown_it import MarkdownIt

from store import Store
from watcher.config import load_config
from watcher.newsletter.service import Newsletter
from watcher.web import build_datasette, door, password_variable

HOSTILE_URL = "https://example.org/x)[cliquez ici](javascript:alert(document.cookie))"
HOSTILE_TITLE = 'Arrêté <img src="https://tracker.example/p.gif"> ![pixel](https://tracker.example/q.gif) www.evil.example'
EDITOR_SCRIPT = '<script>alert(1)</script> <img src=x onerror="alert(2)"> [lien](javascript:alert(3))'


class Clock:
    """The door's clock (``watcher.web.door.time``), moved by the test instead of waiting."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(door, "time", fake)
    return fake


@pytest.fixture
def archive(tmp_path: Path, archive_built: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Datasette, Path]:
    database = copy_archive(archive_built, tmp_path / "db")
    config = load_config(write_config(tmp_path, database))
    monkeypatch.setenv(password_variable("alice"), hash_password(EDITOR_PASSWORD))
    return build_datasette(config, editors=("alice",)), database


class Browser:
    """One client of the app (its own cookies, CSRF token and address), as a browser would be."""

    def __init__(self, ds: Datasette, address: str = "192.0.2.10", scheme: str = "http"):
        transport = httpx.ASGITransport(app=ds.app(), client=(address, 40000))
        self.client = httpx.AsyncClient(transport=transport, base_url=f"{scheme}://archive.test")
        self.token = ""

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = asyncio.run(self.client.get(path, **kwargs))
        found = re.search(r'name="csrftoken" value="([^"]+)"', response.text)
        self.token = found.group(1) if found else self.token
        return response

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        if not self.token:
            self.get("/-/login")
        return asyncio.run(self.client.post(path, data={**data, "csrftoken": self.token}))

    def login(self, user: str = "alice", password: str = EDITOR_PASSWORD) -> httpx.Response:
        self.get("/-/login")
        return self.post("/-/login", {"username": user, "password": password})


def test_wrong_passwords_are_throttled_per_account_with_a_growing_delay(archive: Any, clock: Clock) -> None:
    ds, _ = archive
    answers = [Browser(ds, address=f"192.0.2.{n}").login(password="wrong").status_code for n in range(1, 6)]
    assert answers == [401] * 5
    right = Browser(ds, address="192.0.2.99").login()  # the right password, from a new address, is refused too
    assert right.status_code == 429 and "Too many failed logins" in right.text and "wait 1 s" in right.text
    assert right.headers["retry-after"] == "1" and "ds_actor" not in right.cookies
    waits = []
    for _ in range(4):
        clock.now += float(right.headers["retry-after"])
        assert Browser(ds, address="192.0.2.98").login(password="wrong").status_code == 401
        right = Browser(ds, address="192.0.2.99").login()
        waits.append(int(right.headers["retry-after"]))
    assert waits == [2, 4, 8, 16]  # the wait doubles with each failure
    clock.now += 16
    assert Browser(ds, address="192.0.2.99").login().status_code == 302  # and a success clears the count
    assert Browser(ds, address="192.0.2.99").login(password="wrong").status_code == 401


def test_wrong_passwords_are_throttled_per_address_whatever_the_account(archive: Any, clock: Clock) -> None:
    ds, _ = archive
    attacker = Browser(ds, address="198.51.100.7")
    assert [attacker.login(user=f"user{n}", password="x").status_code for n in range(5)] == [401] * 5
    assert attacker.login().status_code == 429
    assert Browser(ds, address="198.51.100.8").login().status_code == 302  # alice, elsewhere, is not locked out


def test_an_unknown_account_costs_the_same_password_hash_as_a_known_one(archive: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ds, _ = archive
    checked: list[str] = []
    real = door.verify_password

    def counting(password: str, stored: str) -> bool:
        checked.append(stored.split("$")[1])  # the PBKDF2 rounds of the hash checked
        return bool(real(password, stored))

    monkeypatch.setattr(door, "verify_password", counting)
    unknown, wrong = Browser(ds, "203.0.113.1").login(user="mallory"), Browser(ds, "203.0.113.2").login(password="x")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.text.count("Invalid username or password") == wrong.text.count("Invalid username or password") == 1
    assert checked == ["480000", "480000"]  # one hash of the same cost each


def test_session_cookie_flags_and_secure_behind_https(archive: Any, clock: Clock) -> None:
    ds, _ = archive
    cookie = Browser(ds).login().headers["set-cookie"]
    assert "ds_actor=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Max-Age=43200" in cookie and "Secure" not in cookie
    secure = Browser(ds, address="192.0.2.11", scheme="https").login().headers["set-cookie"]
    assert "Secure" in secure and "HttpOnly" in secure and "SameSite=Strict" in secure
    csrf = Browser(ds).get("/-/login").headers["set-cookie"]  # Datasette's own cookies get the flags too
    assert "ds_csrftoken=" in csrf and "HttpOnly" in csrf and "SameSite=Strict" in csrf


def test_logout_revokes_the_session_and_the_old_cookie_opens_nothing(archive: Any, clock: Clock) -> None:
    ds, _ = archive
    editor = Browser(ds)
    assert editor.login().status_code == 302
    stolen = editor.client.cookies["ds_actor"]
    assert editor.get("/-/newsletter").status_code == 200
    assert editor.post("/-/logout", {}).status_code == 302
    thief = Browser(ds, address="192.0.2.66")
    thief.client.cookies.set("ds_actor", stolen)
    assert thief.get("/-/newsletter").status_code == 403
    assert thief.get("/watcher/newsletter_subscribers").status_code == 403


def test_a_session_expires_after_idle_time_and_after_its_lifetime(archive: Any, clock: Clock) -> None:
    ds, _ = archive
    editor = Browser(ds)
    editor.login()
    clock.now += door.SESSION_IDLE - 60
    assert editor.get("/-/newsletter").status_code == 200
    clock.now += door.SESSION_IDLE + 1
    assert editor.get("/-/newsletter").status_code == 403
    busy = Browser(ds, address="192.0.2.12")
    busy.login()
    for _ in range(int(door.SESSION_LIFETIME // 3600)):  # a request every hour, for twelve hours
        assert busy.get("/-/newsletter").status_code == 200
        clock.now += 3600
    assert busy.get("/-/newsletter").status_code == 403


def test_a_cookie_signed_by_datasette_itself_is_not_a_session(archive: Any) -> None:
    ds, _ = archive
    forged = ds.sign({"a": {"id": "alice", "role": "editor"}}, "actor")  # what datasette-auth-passwords set
    visitor = Browser(ds)
    visitor.client.cookies.set("ds_actor", forged)
    assert visitor.get("/-/newsletter").status_code == 403


@pytest.mark.parametrize("path", ["/watcher/items", "/-/login", "/-/watcher-static/watcher.css", "/-/nothing-here",
                                  "/-/newsletter/issues", "/-/atom/theme/ai.atom", "/watcher/items.json"])
def test_every_answer_forbids_framing_and_carries_the_content_security_policy(archive: Any, path: str) -> None:
    response = Browser(archive[0]).get(path)
    policy = response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in policy
    assert "script-src 'self' 'sha256-" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_published_metadata_names_no_editor(archive: Any) -> None:
    body = Browser(archive[0]).get("/-/metadata.json").text
    assert "alice" not in body and "password" not in body and "WATCHER_PASSWORD" not in body


def test_feeds_ignore_the_host_header_without_public_url(archive: Any) -> None:
    response = Browser(archive[0]).get("/-/atom/theme/personal-data.atom", headers={"Host": "evil.example"})
    assert response.status_code == 200 and b"<entry>" in response.content and b"evil.example" not in response.content


ODD_PATHS = ["/-/newsletter/issues/99999999999999999999", "/watcher/items?_sort=bogus",
             "/watcher/items.atom?_sort=nope", "/watcher/items?_through=zz", "/watcher/items?_timelimit=abc",
             "/watcher/items/x.atom", "/watcher/items?_facet=nope", "/-/password-tool", "/watcher/items/%00",
             "/watcher/items?_size=-5", "/-/newsletter/draft/1/preview/x", "/watcher/items.json?_shape=bogus"]


def test_odd_paths_are_answered_without_a_500_or_a_traceback(archive: Any, capfd: pytest.CaptureFixture[str]) -> None:
    visitor = Browser(archive[0])
    statuses = {path: visitor.get(path).status_code for path in ODD_PATHS}
    assert all(s < 500 for s in statuses.values()), statuses
    output = capfd.readouterr()
    assert "Traceback" not in output.err + output.out and "locals" not in output.err


def test_a_new_archive_and_its_lock_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "new" / "watcher.db"
    store = Store(database)
    try:
        files = [database, Path(f"{database}.lock"), *tmp_path.joinpath("new").glob("watcher.db-*")]
        modes = {f.name: stat.S_IMODE(os.stat(f).st_mode) for f in files}
    finally:
        store.close()
    assert modes and all(mode == 0o600 for mode in modes.values()), modes


# -- clean exports ----------------------------------------------------------------------------------------------
class Elements(HTMLParser):
    """Every element of an HTML text with its attributes."""

    def __init__(self, html: str):
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {k: v or "" for k, v in attrs}))

    def tags(self, name: str) -> list[dict[str, str]]:
        return [attrs for tag, attrs in self.found if tag == name]


def _hostile_issue(database: Path) -> tuple[Newsletter, int, str]:
    """A week's draft whose first item has a hostile link and title, with an editor's hostile introduction and
    abstract, published; returns the newsletter, the issue id and the hostile item's id."""
    config = load_config(write_config(database.parent.parent, database, public_url="https://veille.example"))
    store = Store(database)
    letter = Newsletter(store, config)
    week, now = busiest_week(database), datetime(2026, 8, 20, 8, tzinfo=UTC)
    candidates = store.week_candidates(*_week_bounds(letter, week, now), letter.settings.min_score)
    item_id = candidates[0]["id"]
    store.db.execute("update items set url = ?, title = ? where id = ?", [HOSTILE_URL, HOSTILE_TITLE, item_id])
    draft, _ = letter.build_draft(week, now)
    letter.keep(draft["id"], draft["version"], item_id, True, editor="alice", now=now)
    letter.edit(draft["id"], draft["version"] + 1, editor="alice", now=now, introduction=EDITOR_SCRIPT,
                abstracts={item_id: EDITOR_SCRIPT})
    letter.publish(draft["id"], draft["version"] + 2, editor="alice", now=now)
    return letter, draft["id"], item_id  # an issue has its draft's id


def _week_bounds(letter: Newsletter, week: str, now: datetime) -> tuple[str, str]:
    from watcher.newsletter.build import Week

    span = Week.of(week, now, letter.config.settings.timezone)
    return span.start, span.end


def _allowed_links(letter: Newsletter, issue: int) -> set[str]:
    rows = letter.store.db.execute("select i.url, i.id from newsletter_issue_items n join items i on i.id = n.item_id "
                                   "where n.issue_id = ?", [issue]).fetchall()
    from datasette.utils import tilde_encode

    from watcher.newsletter.render import safe_url

    return ({safe_url(url) for url, _ in rows if safe_url(url)}
            | {f"https://veille.example/watcher/items/{tilde_encode(item_id)}" for _, item_id in rows})


def test_exported_markdown_carries_no_link_image_or_html_that_the_items_did_not(archive: Any) -> None:
    ds, database = archive
    letter, issue, item_id = _hostile_issue(database)
    exported = Browser(ds).get(f"/-/newsletter/issues/{issue}.md")
    assert exported.status_code == 200
    allowed = _allowed_links(letter, issue)
    renderers = {"python-markdown": markdown.markdown(exported.text),
                 "markdown-it commonmark": MarkdownIt("commonmark").render(exported.text),
                 "markdown-it gfm-like": MarkdownIt("gfm-like").render(exported.text)}
    for name, html in renderers.items():
        elements = Elements(html)
        links = {a.get("href", "") for a in elements.tags("a")}
        assert links <= allowed, (name, links - allowed)
        assert not elements.tags("img") and not elements.tags("script"), name
        assert not any(k.startswith("on") for _, attrs in elements.found for k in attrs), name
    hostile = next(a["href"] for a in Elements(renderers["python-markdown"]).tags("a") if "example.org" in a["href"])
    assert hostile.startswith("https://example.org/x%29%5Bcliquez") and "cliquez ici</a>" not in renderers["python-markdown"]
    assert "alert(1)" in renderers["python-markdown"]  # the editor's text is there, as text


def test_the_issue_page_the_preview_and_the_mail_hold_no_script_from_an_editor_or_a_source(archive: Any) -> None:
    ds, database = archive
    letter, issue, _ = _hostile_issue(database)
    rendered = letter.preview(issue)
    page = Browser(ds).get(f"/-/newsletter/issues/{issue}").text
    srcdoc = re.search(r'srcdoc="([^"]*)"', page)
    assert srcdoc is not None
    import html as html_module

    for name, html in {"mail": rendered.html, "issue page": html_module.unescape(srcdoc.group(1))}.items():
        elements = Elements(html)
        assert not elements.tags("script") and not elements.tags("img"), name
        assert not any(k.startswith("on") for _, attrs in elements.found for k in attrs), name
        assert all(a["href"].startswith("https://") for a in elements.tags("a")), name
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, name  # shown as the editor typed it


def test_slack_and_mail_alerts_escape_a_hostile_title_and_link() -> None:
    from watcher.notify.render import Renderer, mrkdwn

    assert "<" not in mrkdwn("<javascript:alert(1)|cliquez ici>") and "&lt;" in mrkdwn("<b>")
    renderer = Renderer(public_url="https://veille.example")
    view = renderer.item_view({"id": "x:1", "source": "cnil", "url": "javascript:alert(1)", "title": HOSTILE_TITLE,
                               "summary": EDITOR_SCRIPT, "published": "2026-08-20T08:00:00Z"}, [])
    assert not str(view.url).startswith("javascript")


def test_list_unsubscribe_carries_the_url_as_it_is_for_mail_clients() -> None:
    from email import message_from_bytes
    from email.policy import default
    from types import SimpleNamespace

    from watcher.notify.base import Message
    from watcher.notify.email import EmailChannel

    config = SimpleNamespace(name="mail", kind="email", file="sources.toml", table="channel.mail",
                             options={"host": "127.0.0.1", "from": "veille@cabinet-test.fr"})
    link = "https://veille.cabinet-exemple.fr/-/newsletter/unsubscribe?token=" + "Ab3_" * 11
    mail = EmailChannel(config, {}).build(Message(key="newsletter-1-x", subject="Lettre — semaine", text="t",  # type: ignore[arg-type]
                                                  html="<p>t</p>", slack={}, person="Alice", email="a@b.fr",
                                                  unsubscribe=link))
    parsed = message_from_bytes(mail, policy=default)
    assert b"=?utf-8?" not in mail.split(b"List-Unsubscribe:", 1)[1].split(b"\r\n\r\n", 1)[0]
    assert f"<{link}>" in str(parsed["List-Unsubscribe"])
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
