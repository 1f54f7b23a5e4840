"""Real local endpoints and seeding for the alert tests (imported by the test_notify_* / test_alerts_* modules).

``SmtpSink`` is an aiosmtpd server on 127.0.0.1 that keeps every message and can answer RCPT or DATA with a
chosen code; ``HookServer`` is an http.server that keeps every POSTed JSON body and answers from a script.
Items are real: the CNIL actualités feed recorded in tests/fixtures.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from aiosmtpd.controller import Controller

from store import Store

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CNIL_FEED = FIXTURES / "cnil" / "bmeret_cnil_feed_scraped-actualite_6items_2026-06-16.xml"
CNIL_BIG_FEED = FIXTURES / "cnil" / "bmeret_cnil_feed_scraped-actualite_500items_2026-08-19.xml"
NOW = "2026-06-16T18:00:00Z"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _Handler:
    messages: list[bytes] = field(default_factory=list)
    rcpt_codes: list[str] = field(default_factory=list)  # answers for the next RCPTs, then 250
    data_codes: list[str] = field(default_factory=list)  # answers for the next DATAs, then 250
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:
        with self.lock:
            code = self.rcpt_codes.pop(0) if self.rcpt_codes else ""
        if code:
            return code
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            code = self.data_codes.pop(0) if self.data_codes else ""
            if code:
                return code
            self.messages.append(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


class SignallingHandler(_Handler):
    """Keeps messages like the test sink, and sets ``arrived`` at each one, so that a test waits for an event, not
    a time."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        self.arrived.set()
        return answer


def signalling_sink() -> SmtpSink:
    """An SMTP sink whose handler signals each message (``sink.handler.arrived``)."""
    sink = SmtpSink()
    sink.handler = sink.controller.handler = SignallingHandler()
    return sink


class SmtpSink:
    def __init__(self) -> None:
        self.handler = _Handler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            raw = list(self.handler.messages)
        return [message_from_bytes(m, policy=policy.default) for m in raw]  # type: ignore[misc]

    def message_ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.messages]


@dataclass
class HookServer:
    """POST endpoint: ``replies`` are (status, headers, body) answered in order, then 200 'ok'."""

    replies: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    posts: list[Any] = field(default_factory=list)

    @contextmanager
    def running(self) -> Iterator[str]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                owner.posts.append(json.loads(body or b"null"))
                status, headers, text = owner.replies.pop(0) if owner.replies else (200, {}, "ok")
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(text.encode())))
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/services/T0LOCAL/B0LOCAL/secrettoken"
        finally:
            server.shutdown()
            server.server_close()


def cnil_items(path: Path = CNIL_FEED, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows for ``store.upsert_items`` from a recorded CNIL feed."""
    rows = []
    for n, node in enumerate(ElementTree.parse(path).getroot().iter("item")):
        if limit is not None and n >= limit:
            break
        link = node.findtext("link") or ""
        rows.append({"id": f"cnil:{link.rsplit('/', 1)[-1]}-{n}", "source": "cnil", "url": link,
                     "title": node.findtext("title") or "", "summary": node.findtext("description") or "",
                     "published": "2026-06-16T16:17:46Z", "lang": "fr", "nature": "article",
                     "content_hash": f"h{n}"})
    return rows


def seed(store: Store, rows: Sequence[dict[str, Any]], themes: dict[str, list[tuple[str, float]]],
         now: str = NOW) -> None:
    """Store items and give them themes the way the classifier does."""
    store.upsert_items(rows, now)
    by_id = {r["id"]: r for r in rows}
    for item_id, tags in themes.items():
        store.save_themes(item_id, by_id[item_id]["content_hash"],
                          [{"theme": t, "score": s, "reason": f"mots-clés du thème {t}", "origin": "model",
                            "model": "keyword", "model_version": "1"} for t, s in tags],
                          now=now, model="keyword", model_version="1")


def write_config(tmp_path: Path, body: str, *, settings: str = "") -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(f'[settings]\ndatabase = "watcher.db"\npublic_url = "https://archive.example.org"\n'
                    f'{settings}\n{body}', encoding="utf-8")
    return path


def email_channel(port: int, name: str = "mail") -> str:
    return (f'[channel.{name}]\nkind = "email"\nhost = "127.0.0.1"\nport = {port}\nsecurity = "plain"\n'
            f'from = "veille@cabinet-test.fr"\ntimeout = 5\n')


def subscription(name: str, *, channel: str = "mail", themes: Sequence[str] = ("health-data",), **extra: Any) -> str:
    lines = [f'[[subscription]]\nname = "{name}"\nperson = "{name.title()}"\nchannel = "{channel}"',
             f"themes = {json.dumps(list(themes))}"]
    if "email" not in extra and channel == "mail":
        extra["email"] = f"{name}@cabinet-test.fr"
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def text_part(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def html_part(mail: EmailMessage) -> str:
    part = mail.get_body(("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]
