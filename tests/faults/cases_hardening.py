"""Fault cases of issue 22: what operators and editors meet on a bad day, each against the real CLI or the real
``watcher serve``: a really full disk (a small tmpfs), a read-only folder, a missing, corrupt or locked archive, a
damaged full-text index, a config file that is not UTF-8 or cannot be read, hostile DILA tarballs, apprise to a
hung endpoint, one AUTH per refused login, kill -9 of ``deliver`` many times over thousands of mails, and the web
door (throttling, cookie flags, logout, framing, odd paths, Markdown injection, raw HTML).

Root ignores file permissions: the permission cases run the CLI without the capabilities that let it
(``harness.UNPRIVILEGED``); the full-disk case mounts a tmpfs, and says why it is skipped where it cannot.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from cases_delivery import COUNT, T0, _archive, _states
from cases_sources import BAD, GOOD, RSS, _config, _items
from harness import ROOT, Outcome, case, cli, describe, unprivileged_reason
from test_notify_support import CNIL_BIG_FEED, CNIL_FEED

from watcher.replay import ReplayServer

TRACEBACK = "Traceback (most recent call last)"
JORF_SMALL = ROOT / "tests/fixtures/jorf/jorfsimple_JORFTEXT000054246001_arrete_nomination_small.xml"


def _one_line(run: Any) -> bool:
    """The run's error is one line (``error: ...``) and no traceback."""
    errors = [line for line in run.stderr.splitlines() if line.strip()]
    return TRACEBACK not in run.output and len([e for e in errors if e.startswith("error:")]) == 1


@contextlib.contextmanager
def _fetched(folder: Path) -> Iterator[ReplayServer]:
    """A replay server with CNIL's real 6-item and 500-item feeds (the ``cnil`` and ``hostile`` sources)."""
    with ReplayServer() as server:
        server.add(GOOD, body=CNIL_FEED.read_bytes(), headers=RSS)
        server.add(BAD, body=CNIL_BIG_FEED.read_bytes(), headers=RSS)
        yield server


# -- storage ----------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _tmpfs(folder: Path, size: str) -> Iterator[str]:
    """A tmpfs of ``size`` mounted on ``folder`` (yields "" ) or the reason it cannot be (yields the reason)."""
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        yield "no mount command here"
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        yield f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}): needs root or CAP_SYS_ADMIN"
        return
    try:
        yield ""
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte; returns the filler (delete it to free the space)."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


@case("disk-full", "archive")
def disk_full(folder: Path) -> Outcome:
    """A really full disk (a 2.5 MB tmpfs, filled): fetch ends with one line and exit 3; once space returns, the
    next fetch stores every item (nothing lost)"""
    disk = folder / "disk"
    with _tmpfs(disk, "2500k") as reason:
        if reason:
            return Outcome.skip(reason)
        with _fetched(folder) as server:
            _config(disk, server)
            cli(disk, "migrate")
            filler = _fill(disk)
            full = cli(disk, "fetch", "--force")
            filler.unlink()
            again = cli(disk, "fetch", "--force")
        items = _items(disk)
    said = "the disk is full" in full.stderr
    return Outcome(full.returncode == 3 and _one_line(full) and again.clean(0), items == {"cnil": 6, "hostile": 500},
                   True, said, f"full: {describe(full)}; after: items {items}")


@case("read-only-folder", "archive")
def read_only_folder(folder: Path) -> Outcome:
    """The archive's folder is read-only (mode 555, not root): fetch says so in one line (exit 3); search still
    reads the archive"""
    reason = unprivileged_reason()
    if reason:
        return Outcome.skip(reason)
    with _fetched(folder) as server:
        _config(folder, server)
        cli(folder, "fetch", "--force")
        folder.chmod(0o555)
        try:
            fetch = cli(folder, "fetch", "--force", unprivileged=True)
            search = cli(folder, "search", "données", unprivileged=True)
        finally:
            folder.chmod(0o755)
    said = "read-only" in fetch.stderr or "not writable" in fetch.stderr
    return Outcome(fetch.returncode == 3 and _one_line(fetch) and search.clean(0), _items(folder)["hostile"] == 500,
                   True, said, f"fetch: {describe(fetch)}; search: exit {search.returncode}")


@case("missing-archive", "archive")
def missing_archive(folder: Path) -> Outcome:
    """No archive where a reading command looks: one line saying so (exit 2), and no empty archive created"""
    (folder / "sources.toml").write_text('[settings]\ndatabase = "var/watcher.db"\n', encoding="utf-8")
    search = cli(folder, "search", "données")
    return Outcome(search.returncode == 2 and _one_line(search), not (folder / "var/watcher.db").exists(), True,
                   "no archive" in search.stderr, describe(search))


@case("corrupt-archive", "archive")
def corrupt_archive(folder: Path) -> Outcome:
    """The archive is not a SQLite file: fetch and search say so in one line (exit 3); the file is left as it was"""
    junk = folder / "watcher.db"
    junk.write_bytes(CNIL_FEED.read_bytes()[:4096])
    (folder / "sources.toml").write_text('[settings]\ndatabase = "watcher.db"\n', encoding="utf-8")
    runs = [cli(folder, "fetch", "--force"), cli(folder, "search", "x")]
    kept = junk.read_bytes() == CNIL_FEED.read_bytes()[:4096]
    return Outcome(all(r.returncode == 3 and _one_line(r) for r in runs), kept, True,
                   all("not a SQLite database" in r.stderr for r in runs), describe(runs[1]))


def _damage_fts(database: Path) -> None:
    """Garbage in the first page of the index's data table (as a bad sector or a partial write leaves it)."""
    with sqlite3.connect(database) as conn:
        conn.execute("pragma wal_checkpoint(truncate)")
        page = conn.execute("pragma page_size").fetchone()[0]
        root = conn.execute("select rootpage from sqlite_master where name = 'items_fts_data'").fetchone()[0]
    with open(database, "r+b") as file:
        file.seek((root - 1) * page)
        file.write(random.Random(22).randbytes(page))


@case("corrupt-fts", "archive")
def corrupt_fts(folder: Path) -> Outcome:
    """Garbage pages in the full-text index: search gives one line with the fix (exit 3), serve an error page
    (503, no traceback); `watcher migrate --rebuild-fts` repairs it and search finds again"""
    with _fetched(folder) as server:
        _config(folder, server)
        cli(folder, "fetch", "--force")
    _damage_fts(folder / "watcher.db")
    broken = cli(folder, "search", "données")
    status, served = _serve_get(folder, "/watcher/items?_search=donn%C3%A9es")
    repair = cli(folder, "migrate", "--rebuild-fts")
    found = cli(folder, "search", "données")
    said = "--rebuild-fts" in broken.stderr
    return Outcome(broken.returncode == 3 and _one_line(broken) and repair.clean() and found.clean()
                   and status == 503 and TRACEBACK not in served, _items(folder) == {"cnil": 6, "hostile": 500}, True,
                   said, f"search: {describe(broken)[:90]}; serve: HTTP {status}; after repair: "
                         f"{len(found.stdout.splitlines())} found")


@case("locked-archive", "archive")
def locked_archive(folder: Path) -> Outcome:
    """Another run holds the archive's writer lock: fetch --lock-wait 0 says who holds it, in one line (exit 3)"""
    with _fetched(folder) as server:
        _config(folder, server)
        cli(folder, "migrate")
        with open(folder / "watcher.db.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            busy = cli(folder, "--lock-wait", "0", "fetch", "--force")
        after = cli(folder, "fetch", "--force")
    return Outcome(busy.returncode == 3 and _one_line(busy) and after.clean(), _items(folder)["hostile"] == 500,
                   True, "another watcher run holds the archive" in busy.stderr, describe(busy))


# -- configuration ----------------------------------------------------------------------------------------------
@case("config-not-utf8", "config")
def config_not_utf8(folder: Path) -> Outcome:
    """sources.toml saved in windows-1252: one line naming the file, the byte and the line (exit 2)"""
    (folder / "sources.toml").write_bytes('[settings]\ndatabase = "watcher.db"\n# Veille santé\n'.encode("cp1252"))
    run = cli(folder, "sources")
    return Outcome(run.returncode == 2 and _one_line(run), True, True,
                   "not UTF-8" in run.stderr and "line 3" in run.stderr, describe(run))


@case("config-unreadable", "config")
def config_unreadable(folder: Path) -> Outcome:
    """The subscriptions file cannot be read (mode 000, not root): one line naming it (exit 2)"""
    reason = unprivileged_reason()
    if reason:
        return Outcome.skip(reason)
    (folder / "sources.toml").write_text('[settings]\ndatabase = "watcher.db"\n[alerts]\nsubscriptions = '
                                         '"subscriptions.toml"\n', encoding="utf-8")
    subs = folder / "subscriptions.toml"
    subs.write_text("", encoding="utf-8")
    subs.chmod(0)
    run = cli(folder, "deliver", "--dry-run", unprivileged=True)
    return Outcome(run.returncode == 2 and _one_line(run), True, True,
                   "subscriptions.toml" in run.stderr and "permission denied" in run.stderr, describe(run))


# -- DILA tarballs -------------------------------------------------------------------------------------------------
def _tarball(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple[tarfile.TarInfo,
                                                                                                 bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info, data


def _parse(path: Path) -> tuple[Any, float]:
    """``watcher parse --kind dila-jorf`` on ``path`` in a child; (run, that child's peak memory in MB, from its
    own rusage: it counts this process's memory at the fork too)."""
    from harness import Cli

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen([sys.executable, "-m", "watcher", "parse", "--kind", "dila-jorf", str(path)],
                                 stdout=out, stderr=err, env=env, cwd=path.parent)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        run = Cli(["parse"], child.returncode, out.read().decode(), err.read().decode())
    return run, usage.ru_maxrss / 1024


@case("dila-traversal", "fetch")
def dila_traversal(folder: Path) -> Outcome:
    """A DILA delta with a member '../../etc/cron.d/x': refused in one line, nothing written outside"""
    path = _tarball(folder / "reconstructed_traversal.tar.gz",
                    [_member("../../cron.d/JORFTEXT000054246001.xml", JORF_SMALL.read_bytes())])
    run, _ = _parse(path)
    outside = (folder.parent / "cron.d").exists()
    return Outcome(run.returncode == 1 and _one_line(run), not outside, True, "unsafe member path" in run.stderr,
                   describe(run))


@case("dila-symlinks", "fetch")
def dila_symlinks(folder: Path) -> Outcome:
    """A DILA delta whose texts are symlinks and hard links to /etc/passwd beside one real text: the links are
    skipped, the real text read"""
    path = _tarball(folder / "reconstructed_links.tar.gz", [
        _member("jorf/JORFTEXT000000000002.xml", kind=tarfile.SYMTYPE, link="/etc/passwd"),
        _member("jorf/JORFTEXT000000000003.xml", kind=tarfile.LNKTYPE, link="/etc/passwd"),
        _member("jorf/JORFTEXT000054246001.xml", JORF_SMALL.read_bytes())])
    run, _ = _parse(path)
    items = [line for line in run.stdout.splitlines() if line.startswith("{")]
    return Outcome(run.clean(0), len(items) == 1, True, "root:" not in run.output,
                   f"{len(items)} item(s); {describe(run)[:60]}")


HUGE = """
import io, sys, tarfile
small = open(sys.argv[1], "rb").read()
count, size = int(sys.argv[3]), int(sys.argv[4])
with tarfile.open(sys.argv[2], "w:gz", compresslevel=1) as tar:
    for n in range(count):
        data = small.replace(b"</TEXTE>", b"<!--" + b"x" * (size * 1024 * 1024) + b"--></TEXTE>")
        info = tarfile.TarInfo(f"jorf/JORFTEXT0000542460{n:02d}.xml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
"""


@case("dila-huge-members", "fetch")
def dila_huge(folder: Path) -> Outcome:
    """A DILA delta of 15 members of 60 MB (4 MB compressed; the test suite: 3 of 20 MB): refused member by member
    in one line, the child's memory stays far below what they would take (900 MB)"""
    count, size = (15, 60) if full_size() else (3, 20)
    path = folder / "reconstructed_huge.tar.gz"
    subprocess.run([sys.executable, "-c", HUGE, str(JORF_SMALL), str(path), str(count), str(size)],
                   check=True)  # built in a child: its memory is not counted in the parse's
    run, peak = _parse(path)
    return Outcome(run.returncode == 1 and _one_line(run), peak < 400, True, "cap" in run.stderr and "skipped" in
                   run.stderr, f"{count} x {size} MB: peak memory {peak:.0f} MB; {describe(run)[:60]}")


# -- channels -----------------------------------------------------------------------------------------------------
class HungServer:
    """Accepts connections and never answers (counts them)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.connections.append(self.sock.accept()[0])

    def close(self) -> None:
        for conn in self.connections:
            conn.close()
        self.sock.close()


@case("apprise-hung", "ops")
def apprise_hung(folder: Path) -> Outcome:
    """An apprise URL to an endpoint that accepts and never answers: the breaker stops after 2 connections for 10
    messages (apprise's 4 s timeout each), the rest waits in the ledger"""
    hung = HungServer()
    try:
        _archive(folder, '[channel.hook]\nkind = "apprise"\nurl_env = "WATCHER_FAULTS_APPRISE"\n', sub_channel="hook")
        run = cli(folder, "deliver", "--now", T0.isoformat(),
                  env={"WATCHER_FAULTS_APPRISE": f"json://127.0.0.1:{hung.port}/"})
        connections = len(hung.connections)
    finally:
        hung.close()
    states = _states(folder)
    waiting = states.get("pending", 0) + states.get("failed", 0)
    return Outcome(run.clean(0, 1), waiting == COUNT, True, connections <= 2 and "stopped for this run" in run.output,
                   f"{connections} connection(s) for {COUNT} messages; ledger {states}")


def full_size() -> bool:
    """``make faults`` (``run.py`` sets WATCHER_FAULTS_KILLS) runs the long cases at full size; the test suite
    runs them small."""
    return "WATCHER_FAULTS_KILLS" in os.environ


def kill_count() -> tuple[int, int]:
    """(kills, e-mails): ``make faults`` 60 (``--kills``) over 2,000; the test suite 3 over 200."""
    kills = int(os.environ.get("WATCHER_FAULTS_KILLS", "3"))
    return kills, 2000 if kills >= 50 else 200


@case("deliver-kill9-many", "ops")
def deliver_kill9_many(folder: Path) -> Outcome:
    """``deliver`` killed -9 at random moments, many times over thousands of mails, then a recovery run: 0 lost;
    duplicates (same Message-ID) at most 1 per 20 kills"""
    sys.path.insert(0, str(ROOT))
    from benchmarks import bench_kill9 as bench

    kills_wanted, mails = kill_count()
    rng = random.Random(22)
    port = bench.free_port()
    log, path = folder / "arrived.txt", bench.write_config(folder, port, 4)
    planned = bench.seed_and_plan(path, mails // 4)
    db = folder / "watcher.db"
    kills, window = 0, 0
    with bench.smtp_server(port, log):
        stuck_before: set[str] = set()
        for _ in range(kills_wanted):
            if not bench.kill_once(path, log, ROOT, rng, 0.5):
                break
            kills += 1
            got, stuck = set(bench.arrived(log)), set(bench.left_sending(db))
            window += len((stuck - stuck_before) & got)
            stuck_before = stuck
        last = bench.deliver(path, T0 + timedelta(hours=1), ROOT)
        last.wait()
        counts = Counter(bench.arrived(log))
    with sqlite3.connect(db) as conn:
        expected = {r[0] for r in conn.execute("select message_id from deliveries")}
    duplicates = sum(c - 1 for c in counts.values())
    lost = len(expected - set(counts))
    # every duplicate must be a kill that fell between the final dot and the ledger's record; under make faults
    # (50 kills and more) the target is also at most one per 20 kills
    explained = duplicates <= window
    return Outcome(last.returncode == 0, lost == 0 and len(expected) == planned,
                   explained and (kills < 50 or duplicates * 20 <= kills), kills >= min(kills_wanted, 3),
                   f"{kills} kills over {planned} mails: {lost} lost, {duplicates} duplicate(s) "
                   f"({window} kill(s) fell between the final dot and the ledger's record)")


# -- the web door -------------------------------------------------------------------------------------------------
_BUILT: dict[str, Path] = {}


def _built_archive() -> Path:
    """The archive of the demo recordings, built once per process (archive_support.build_archive)."""
    from archive_support import build_archive

    if "path" not in _BUILT:
        _BUILT["path"] = build_archive(Path(tempfile.mkdtemp(prefix="watcher-faults-archive-")))
    return _BUILT["path"]


@contextlib.contextmanager
def _server(folder: Path, database: Path | None = None) -> Iterator[Any]:
    from archive_support import EDITOR_PASSWORD, LiveServer, copy_archive, write_config
    from datasette_auth_passwords.utils import hash_password

    database = database or copy_archive(_built_archive(), folder / "db")
    config = write_config(folder, database)
    server = LiveServer(config, env={"WATCHER_PASSWORD_HASH_ALICE": hash_password(EDITOR_PASSWORD)})
    try:
        yield server
    finally:
        server.stop()


def _serve_get(folder: Path, path: str) -> tuple[int, str]:
    """(status, the server's own output) of one GET to ``watcher serve`` on the archive of ``folder``."""
    import httpx

    (folder / "web").mkdir(exist_ok=True)
    with _server(folder / "web", folder / "watcher.db") as server:
        status = httpx.get(server.url + path, timeout=60).status_code
    return status, "".join(server.output)


class _Browser:
    def __init__(self, url: str):
        import httpx

        self.http = httpx.Client(base_url=url, timeout=60)
        self.token = ""

    def get(self, path: str) -> Any:
        response = self.http.get(path)
        found = re.search(r'name="csrftoken" value="([^"]+)"', response.text)
        self.token = found.group(1) if found else self.token
        return response

    def post(self, path: str, data: dict[str, str]) -> Any:
        return self.http.post(path, data={**data, "csrftoken": self.token})

    def login(self, password: str) -> Any:
        self.get("/-/login")
        return self.post("/-/login", {"username": "alice", "password": password})


def _web(folder: Path, check: Any) -> Outcome:
    with _server(folder) as server:
        ok, detail = check(server)
    output = "".join(server.output)
    return Outcome(TRACEBACK not in output, True, True, ok, detail)


@case("web-throttle", "web")
def web_throttle(folder: Path) -> Outcome:
    """Five wrong passwords, then the right one at once: refused (429) with the wait; the sixth try never hashed"""
    from archive_support import EDITOR_PASSWORD

    def check(server: Any) -> tuple[bool, str]:
        browser = _Browser(server.url)
        wrong = [browser.login("wrong").status_code for _ in range(5)]
        right = browser.login(EDITOR_PASSWORD)
        said = "Too many failed logins" in right.text and right.headers.get("retry-after") == "1"
        return wrong == [401] * 5 and right.status_code == 429 and said, f"wrong: {wrong}; then {right.status_code}"

    return _web(folder, check)


@case("web-cookie-flags", "web")
def web_cookie_flags(folder: Path) -> Outcome:
    """The session cookie is HttpOnly, SameSite=Strict, with an expiry (Secure behind https: see the tests)"""
    from archive_support import EDITOR_PASSWORD

    def check(server: Any) -> tuple[bool, str]:
        cookie = _Browser(server.url).login(EDITOR_PASSWORD).headers.get("set-cookie", "")
        flags = [f for f in ("HttpOnly", "SameSite=Strict", "Max-Age=43200") if f in cookie]
        return len(flags) == 3, f"ds_actor: {', '.join(flags)}"

    return _web(folder, check)


@case("web-logout", "web")
def web_logout(folder: Path) -> Outcome:
    """After POST /-/logout the old cookie opens nothing (the session is revoked in the archive)"""
    from archive_support import EDITOR_PASSWORD

    def check(server: Any) -> tuple[bool, str]:
        editor = _Browser(server.url)
        editor.login(EDITOR_PASSWORD)
        cookie = editor.http.cookies["ds_actor"]
        before = editor.get("/-/newsletter").status_code
        editor.post("/-/logout", {})
        thief = _Browser(server.url)
        thief.http.cookies.set("ds_actor", cookie)
        after = thief.get("/-/newsletter").status_code
        return before == 200 and after == 403, f"draft pages: {before} logged in, {after} with the old cookie"

    return _web(folder, check)


@case("web-framing", "web")
def web_framing(folder: Path) -> Outcome:
    """Every page forbids framing (X-Frame-Options DENY, frame-ancestors 'none') and carries the CSP"""

    def check(server: Any) -> tuple[bool, str]:
        paths = ["/watcher/items", "/-/login", "/-/newsletter", "/-/newsletter/issues", "/nothing", "/-/metadata.json"]
        bad = [p for p in paths if (lambda r: r.headers.get("x-frame-options") != "DENY" or "frame-ancestors 'none'"
                                    not in r.headers.get("content-security-policy", ""))(_Browser(server.url).get(p))]
        return not bad, f"{len(paths) - len(bad)}/{len(paths)} pages protected"

    return _web(folder, check)


@case("web-odd-paths", "web")
def web_odd_paths(folder: Path) -> Outcome:
    """Odd paths and parameters: answered 4xx, never 500, no traceback in the server's log"""
    from test_web_security import ODD_PATHS

    def check(server: Any) -> tuple[bool, str]:
        statuses = Counter(_Browser(server.url).get(p).status_code for p in ODD_PATHS)
        return all(s < 500 for s in statuses), f"statuses {dict(statuses)}"

    return _web(folder, check)


def _hostile(folder: Path) -> tuple[Path, Any]:
    from archive_support import copy_archive
    from test_web_security import _hostile_issue

    database = copy_archive(_built_archive(), folder / "db")
    letter, issue, _ = _hostile_issue(database)
    return database, (letter, issue)


@case("web-markdown-injection", "web")
def web_markdown_injection(folder: Path) -> Outcome:
    """An item linked 'https://example.org/x)[cliquez ici](javascript:...)' with an <img> in its title, published:
    the public .md, rendered by python-markdown, has no javascript: link, no image, no HTML"""
    import markdown
    from test_web_security import Elements, _allowed_links

    database, (letter, issue) = _hostile(folder)

    def check(server: Any) -> tuple[bool, str]:
        html = markdown.markdown(_Browser(server.url).get(f"/-/newsletter/issues/{issue}.md").text)
        elements = Elements(html)
        links = {a.get("href", "") for a in elements.tags("a")}
        foreign = links - _allowed_links(letter, issue)
        return not foreign and not elements.tags("img") and not elements.tags("script"), (
            f"{len(links)} links, {len(foreign)} not the items', {len(elements.tags('img'))} images")

    with _server(folder, database) as server:
        ok, detail = check(server)
    return Outcome(TRACEBACK not in "".join(server.output), True, True, ok, detail)


@case("web-raw-html", "web")
def web_raw_html(folder: Path) -> Outcome:
    """An editor's '<script>' and 'onerror' in the introduction and an abstract: text in the mail, the issue page
    and its .md, never HTML"""
    import html as html_module

    from test_web_security import Elements

    database, (letter, issue) = _hostile(folder)
    mail = letter.preview(issue).html
    with _server(folder, database) as server:
        page = _Browser(server.url).get(f"/-/newsletter/issues/{issue}").text
    srcdoc = re.search(r'srcdoc="([^"]*)"', page)
    shown = [mail, html_module.unescape(srcdoc.group(1)) if srcdoc else ""]
    live = [(t, a) for html in shown for t, a in Elements(html).found
            if t in ("script", "img") or any(k.startswith("on") for k in a)]
    return Outcome(TRACEBACK not in "".join(server.output), True, True,
                   bool(srcdoc) and not live and all("&lt;script&gt;" in h for h in shown),
                   f"{len(live)} live script/handler element(s) in the mail and the issue page")
