"""End to end in a real browser: Debian's headless Chromium driven by Playwright against `watcher serve` started
by the test, with a real SMTP server (aiosmtpd) for the newsletter.

A researcher searches in French, opens an item, reads its themes and why, follows the Atom link and parses it; a
visitor is refused the private pages; an editor logs in, builds the week's draft, drops an item, reorders two,
writes an abstract, previews and publishes; the subscribers get it once and the issue is in the public archive.

Skipped, with the reason, only where Chromium cannot start (not installed: run ``.ci/install-browser``).
Set ``WATCHER_SCREENSHOTS=docs`` to refresh the README's screenshots (written nowhere else by default).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import pytest
from archive_support import EDITOR_PASSWORD, LiveServer, copy_archive, free_port, write_config
from test_notify_support import SmtpSink, email_channel, html_part, text_part

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WEEK = "2026-W30"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: run .ci/install-browser (apt-get install chromium)")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Error as exc:
            pytest.skip(f"Chromium cannot start here: {str(exc).splitlines()[0]}")
        yield chromium
        chromium.close()


@pytest.fixture
def site(tmp_path: Path, archive_built: Path) -> Iterator[tuple[LiveServer, SmtpSink]]:
    from datasette_auth_passwords.utils import hash_password

    port = free_port()
    database = copy_archive(archive_built, tmp_path / "db")
    with SmtpSink() as sink:
        newsletter = ('[newsletter]\ntitle = "Lettre santé & données"\nchannel = "mail"\n'
                      'subscribers = ["Alice Martin <alice@cabinet-test.fr>", "bruno@cabinet-test.fr"]\n')
        config = write_config(tmp_path, database, extra=email_channel(sink.port) + newsletter,
                              public_url=f"http://127.0.0.1:{port}")
        server = LiveServer(config, env={"WATCHER_PASSWORD_HASH_ALICE": hash_password(EDITOR_PASSWORD)}, port=port)
        try:
            yield server, sink
        finally:
            server.stop()


def _refusals(page: Any) -> list[str]:
    """The Content-Security-Policy refusals the page meets (Chromium reports each on the console), as they come."""
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    return refused


def _screenshot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    folder = os.environ.get("WATCHER_SCREENSHOTS")
    if folder:
        shutil.copyfile(path, Path(folder) / name)


def test_researcher_searches_in_french_reads_why_and_follows_the_feed(browser: Any, site: Any,
                                                                     tmp_path: Path) -> None:
    server, _ = site
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    refused = _refusals(page)
    page.goto(server.url + "/")
    assert page.url.endswith("/watcher/items")
    page.fill("#_search", "intelligence artificielle données")
    page.press("#_search", "Enter")
    page.wait_for_url("**_search=**")  # the results page, not the one the search was typed in
    results = page.locator("table.watcher-items td.col-title a")
    assert results.count() > 0
    title = results.first.inner_text()
    results.first.click()
    assert page.locator("h1.watcher-item-title").inner_text() == title
    themes = page.locator("table.watcher-themes")
    assert themes.locator("td.reason").first.inner_text().strip()
    assert themes.locator("td.origin").first.inner_text() in ("règles", "modèle", "juriste")  # French by default
    assert page.locator("p.watcher-meta").inner_text().split(" · ")[1].startswith("publié le ")
    _screenshot(page, tmp_path, "item-page.png")
    feed_url = page.locator("a.atom-link").first.get_attribute("href")
    response = page.request.get(server.url + feed_url)
    assert response.ok and response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.body())
    assert not feed.bozo and feed.entries and feed.feed.title.startswith("watcher — ")
    theme = feed_url.rsplit("/", 1)[-1].removesuffix(".atom")
    assert all(theme in [t.term for t in e.tags] for e in feed.entries)
    page.goto(server.url + "/watcher/items_fts")  # a table page with Datasette's own template and scripts
    assert refused == []  # Datasette's scripts and inline scripts all ran under the policy
    page.close()


def test_private_pages_refuse_a_visitor_in_the_browser(browser: Any, site: Any) -> None:
    server, _ = site
    page = browser.new_page()
    for path in ("/-/newsletter", "/-/newsletter/draft/1", "/watcher/newsletter_subscribers", "/watcher/deliveries",
                 "/watcher?sql=select+*+from+newsletter_subscribers"):
        assert page.goto(server.url + path).status == 403, path
    page.close()


def _entries(page: Any, theme_heading: str) -> Any:
    return page.locator(f"h2:has-text('{theme_heading}') + ol.watcher-entries > li")


def test_editor_builds_edits_previews_and_publishes_the_week(browser: Any, site: Any, tmp_path: Path) -> None:
    server, sink = site
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    refused = _refusals(page)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.goto(server.url + "/-/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", EDITOR_PASSWORD)
    page.click("input[type=submit], button[type=submit]")
    page.goto(server.url + "/-/newsletter")
    page.fill("#week", WEEK)
    page.click("text=Préparer ou ouvrir le brouillon de la semaine")
    assert urlsplit(page.url).path == "/-/newsletter/draft/1"

    entries = _entries(page, "Protection des données personnelles")
    ids = [entries.nth(n).get_attribute("data-item") for n in range(entries.count())]
    assert len(ids) >= 4
    dropped, first, second = ids[0], ids[1], ids[2]
    titles = [entries.nth(n).locator(".watcher-entry-head a").inner_text() for n in range(entries.count())]
    dropped_title, first_title, second_title = titles[0], titles[1], titles[2]
    with page.expect_navigation():  # each button posts the form: read the page the server sends back
        page.click(f"button[value='drop|{dropped}']")
    with page.expect_navigation():
        page.click(f"button[value='up|{second}']")  # second now comes before first
    entries = _entries(page, "Protection des données personnelles")
    order = [entries.nth(n).get_attribute("data-item") for n in range(entries.count())]
    assert order.index(second) < order.index(first) and "dropped" in (entries.nth(0).get_attribute("class") or "")
    page.fill("#introduction", "Cette semaine, l'IA et les données personnelles.")
    page.fill(f"textarea[name='abstract:{second}']", "À lire en priorité : ce que la CNIL attend des acteurs.")
    page.click("#save")
    assert page.input_value(f"textarea[name='abstract:{second}']").startswith("À lire en priorité")
    _screenshot(page, tmp_path, "newsletter-editor.png")

    page.click("#preview-link")
    preview = page.inner_text("body")
    assert "À lire en priorité" in preview and "Cette semaine, l'IA" in preview and dropped_title not in preview
    page.go_back()
    page.goto(server.url + "/watcher?sql=select+count(*)+from+newsletter_entries")  # the SQL box, for editors
    assert page.locator(".CodeMirror").count() == 1  # CodeMirror started by Datasette's inline script
    page.go_back()
    page.click("#publish")
    assert dialogs == ["Publier et envoyer cette lettre aux abonnés ?"]  # asked by editor.js, no inline handler
    assert urlsplit(page.url).path == "/-/newsletter/issues/1"
    issue = page.frame_locator("iframe.watcher-issue")
    assert "À lire en priorité" in issue.locator("body").inner_text()
    _screenshot(page, tmp_path, "newsletter-issue.png")

    mails = sink.messages
    assert sorted(m["To"].addresses[0].addr_spec for m in mails) == ["alice@cabinet-test.fr", "bruno@cabinet-test.fr"]
    html, text = html_part(mails[0]), text_part(mails[0])
    assert "À lire en priorité" in html and dropped_title not in html
    assert text.index(second_title[:40]) < text.index(first_title[:40])  # the order the editor chose
    assert f"http://127.0.0.1:{server.port}/-/newsletter/unsubscribe?token=" in html
    assert "Cette semaine, l'IA et les données personnelles." in text

    visitor = browser.new_page()  # the archive is public and read-only
    visitor.goto(server.url + "/watcher/newsletter_issues")
    assert "Lettre santé &amp; données — semaine du 20 juillet 2026" in visitor.content()
    visitor.goto(server.url + "/watcher/newsletter_issue_items?issue_id=1")
    assert second in visitor.content() and dropped not in visitor.content()
    assert refused == []
    page.goto(server.url + "/-/logout")
    page.click("input[type=submit]")
    assert page.goto(server.url + "/-/newsletter/draft/1").status == 403  # logged out: the session is revoked
    context.close()
    visitor.close()
