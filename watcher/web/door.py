"""The editors' door: login with throttling, server-side sessions, logout that revokes, and what every answer of
the archive's server carries (security headers, cookie flags, an error page instead of a traceback).

- **Login** (``/-/login``): the password hash of editor NAME is read from ``$WATCHER_PASSWORD_HASH_<NAME>``
  (datasette-auth-passwords' PBKDF2 format, made with ``datasette hash-password``). An unknown name is checked
  against a dummy hash of the same cost, so both answers take the same time. Failed logins are counted per account
  and per client address (in the archive, ``web_login_failures``): after ``FREE_FAILURES`` the next attempt must
  wait a delay that doubles with each failure (1 s, 2 s, 4 s... up to ``MAX_DELAY``), during which even the right
  password is refused with 429, a ``Retry-After`` and a message saying how long. A success clears both counts.
- **Sessions**: the cookie holds a random token (``ds_actor``, so Datasette shows its logout button); the archive
  keeps only its SHA-256 (``web_sessions``). A session ends after ``SESSION_LIFETIME``, after ``SESSION_IDLE``
  without a request, or at logout (``POST /-/logout`` revokes it: the old cookie opens nothing). A ``ds_actor``
  that is not a live session (e.g. one signed by Datasette's own login) is removed from the request.
- **Every answer**: ``Content-Security-Policy`` (scripts from the server itself plus the SHA-256 of the inline
  scripts of Datasette's templates, nothing injected can run; ``frame-ancestors 'none'``), ``X-Frame-Options:
  DENY``, ``X-Content-Type-Options: nosniff``, ``Referrer-Policy``; every cookie set gets ``HttpOnly;
  SameSite=Strict``, and ``Secure`` when the request came over https or ``public_url`` is https.

Datasette 0.65 has no hook for response headers: ``asgi_wrapper`` (its hook for ASGI middleware) is the one that
sees every answer, static files and error pages included.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import math
import os
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import datasette
from datasette.utils.asgi import Response
from datasette_auth_passwords.utils import hash_password, verify_password

from watcher.web.context import EDITOR_ROLE, attached, context_of

COOKIE = "ds_actor"
SESSION_LIFETIME = 12 * 3600.0  # a working day, then log in again
SESSION_IDLE = 2 * 3600.0
FREE_FAILURES = 5  # failed logins per account and per address before the delay starts
MAX_DELAY = 900.0  # the delay doubles up to 15 minutes
FAILURES_FORGOTTEN = 24 * 3600.0  # a day without failure and the count starts again
# the cost of the dummy hash matches datasette-auth-passwords' default (480,000 PBKDF2 rounds)
_DUMMY_HASH = hash_password(secrets.token_hex(16))
_SCRIPT = re.compile(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script>", re.S)


def password_variable(editor: str) -> str:
    return "WATCHER_PASSWORD_HASH_" + re.sub(r"[^A-Z0-9]", "_", editor.upper())


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


# -- throttling -----------------------------------------------------------------------------------------------
def failure_keys(account: str, address: str) -> list[str]:
    return [f"account:{account[:100]}", f"address:{address[:100]}"]


def delay_after(failures: int) -> float:
    """Seconds to wait after ``failures`` failed logins (0 for the first ``FREE_FAILURES``)."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(2.0 ** (failures - FREE_FAILURES), MAX_DELAY)


def wait_left(counts: dict[str, tuple[int, float]], now: float) -> float:
    """How long the caller must still wait, the longest over its keys (account and address)."""
    left = 0.0
    for failures, last in counts.values():
        if now - last < FAILURES_FORGOTTEN:
            left = max(left, last + delay_after(failures) - now)
    return left


def _client_address(request: Any) -> str:
    client = request.scope.get("client")
    return str(client[0]) if client else "unknown"


# -- the views ------------------------------------------------------------------------------------------------
async def login(datasette_: Any, request: Any) -> Response:
    context = context_of(datasette_)
    if request.method != "POST":
        return await _login_page(datasette_, request, "")
    form = await request.post_vars()
    account, password = str(form.get("username") or ""), str(form.get("password") or "")
    keys = failure_keys(account, _client_address(request))
    now = time.time()
    left = wait_left(await context.run(lambda store: store.login_failures(keys)), now)
    if left > 0:
        seconds = max(1, math.ceil(left))
        return await _login_page(datasette_, request, (
            f"Too many failed logins for this account or from this address: wait {seconds} s and try again "
            "(the wait doubles with each further failure)."), status=429, headers={"Retry-After": str(seconds)})
    known = account in context.editors
    stored = os.environ.get(password_variable(account), "") if known else ""
    good = await asyncio.to_thread(_verify, password, stored)
    if not (known and stored and good):
        await context.run(lambda store: store.add_login_failure(keys, now=time.time(),
                                                                forget_after=FAILURES_FORGOTTEN))
        return await _login_page(datasette_, request, "Invalid username or password", status=401)
    token = secrets.token_urlsafe(32)

    def open_session(store: Any) -> None:
        store.clear_login_failures(keys)
        store.open_session(hash_token(token), account, now=time.time(), lifetime=SESSION_LIFETIME)

    await context.run(open_session)
    response = Response.redirect(datasette_.urls.path("/"))
    response.set_cookie(COOKIE, token, max_age=int(SESSION_LIFETIME), httponly=True, samesite="strict",
                        secure=_is_https(datasette_, request.scope))
    return response


def _verify(password: str, stored: str) -> bool:
    """The password against ``stored``; against a dummy hash of the same cost when there is none (or it is not a
    PBKDF2 hash), so an unknown account is answered in the same time as a wrong password."""
    try:
        if stored.count("$") == 3:
            return bool(verify_password(password, stored))
    except (AssertionError, ValueError):
        pass
    verify_password(password, _DUMMY_HASH)
    return False


async def _login_page(datasette_: Any, request: Any, error: str, *, status: int = 200,
                      headers: dict[str, str] | None = None) -> Response:
    html = await datasette_.render_template("password_login.html", {"error": error}, request=request)
    return Response.html(html, status=status, headers=headers)


async def logout(datasette_: Any, request: Any) -> Response:
    """GET: the confirmation form (Datasette's); POST: the session is revoked in the archive, the cookie cleared."""
    if request.method != "POST":
        if not request.actor:
            return Response.redirect(datasette_.urls.instance())
        html = await datasette_.render_template("logout.html", {"actor": request.actor}, request=request)
        return Response.html(html)
    token = request.cookies.get(COOKIE)
    if token:
        await context_of(datasette_).run(lambda store: store.revoke_session(hash_token(token), now=time.time()))
    response = Response.redirect(datasette_.urls.instance())
    response.set_cookie(COOKIE, "", expires=0, max_age=0, httponly=True, samesite="strict")
    datasette_.add_message(request, "You are now logged out", datasette_.WARNING)
    return response


ROUTES = [(r"^/-/login$", login), (r"^/-/logout$", logout)]


# -- every answer ---------------------------------------------------------------------------------------------
def _inline_script_hashes(folders: Iterable[Path]) -> list[str]:
    """The CSP sources ``'sha256-...'`` of the inline scripts of the templates in ``folders``. A script whose text
    holds a template expression is hashed for each value it can take (Datasette's only one:
    ``DATASETTE_ALLOW_FACET = true|false;``); any other is left out, so it would be refused, not trusted."""
    bodies: set[str] = set()
    for folder in folders:
        for template in sorted(folder.glob("*.html")):
            for found in _SCRIPT.finditer(template.read_text(encoding="utf-8")):
                if "src=" in found["attrs"]:
                    continue
                body = found["body"]
                if "{{ datasette_allow_facet }}" in body:
                    bodies.update(body.replace("{{ datasette_allow_facet }}", v) for v in ("true", "false"))
                elif "{{" not in body and "{%" not in body:
                    bodies.add(body)
    return sorted("'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'" for b in bodies)


def content_security_policy(templates: Sequence[Path]) -> str:
    scripts = " ".join(_inline_script_hashes([Path(datasette.__file__).with_name("templates"), *templates]))
    return "; ".join([
        "default-src 'self'", f"script-src 'self' {scripts}",
        # Datasette's pages and the e-mailed issue (shown in a sandboxed frame) style with attributes: styles
        # cannot run code, scripts are what the policy holds to the server's own files and known hashes
        "style-src 'self' 'unsafe-inline'", "img-src 'self' data:", "object-src 'none'", "base-uri 'none'",
        "form-action 'self'", "frame-ancestors 'none'"])


def _is_https(datasette_: Any, scope: dict[str, Any]) -> bool:
    public = context_of(datasette_).config.settings.public_url if attached(datasette_) else ""
    return scope.get("scheme") == "https" or public.startswith("https://")


def _cookies(scope: dict[str, Any]) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope.get("headers") or []:
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed Cookie header is a visitor's, not ours
                return SimpleCookie()
    return jar


def _without_cookie(scope: dict[str, Any], cookie: str) -> dict[str, Any]:
    jar = _cookies(scope)
    kept = "; ".join(f"{k}={m.coded_value}" for k, m in jar.items() if k != cookie)
    headers = [(k, v) for k, v in scope.get("headers") or [] if k != b"cookie"]
    if kept:
        headers.append((b"cookie", kept.encode("latin-1")))
    return {**scope, "headers": headers}


def _flag_cookie(value: bytes, secure: bool) -> bytes:
    """A Set-Cookie value with HttpOnly and SameSite=Strict (and Secure), whatever set it."""
    parts = [p.strip() for p in value.decode("latin-1").split(";")]
    kept = [p for p in parts[1:] if p.split("=", 1)[0].lower() not in ("httponly", "samesite", "secure")]
    flags = ["HttpOnly", "SameSite=Strict", *(["Secure"] if secure else [])]
    return "; ".join([parts[0], *kept, *flags]).encode("latin-1")


def guard(datasette_: Any, app: Any) -> Any:
    """The ASGI middleware of the archive's server: the session behind ``ds_actor`` (or none), then the headers
    and cookie flags on the answer."""
    headers: list[tuple[bytes, bytes]] | None = None

    def security_headers() -> list[tuple[bytes, bytes]]:
        nonlocal headers
        if headers is None:
            from watcher.web import TEMPLATES

            headers = [(b"content-security-policy", content_security_policy([TEMPLATES]).encode()),
                       (b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                       (b"referrer-policy", b"same-origin")]
        return headers

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or not attached(datasette_):
            await app(scope, receive, send)
            return
        scope = await _with_session(datasette_, scope)
        secure = _is_https(datasette_, scope)

        async def send_guarded(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                own = {name for name, _ in security_headers()}
                kept = [(k, _flag_cookie(v, secure) if k.lower() == b"set-cookie" else v)
                        for k, v in message.get("headers") or [] if k.lower() not in own]
                message = {**message, "headers": kept + security_headers()}
            await send(message)

        await app(scope, receive, send_guarded)

    return guarded


async def _with_session(datasette_: Any, scope: dict[str, Any]) -> dict[str, Any]:
    """The scope with ``watcher.actor`` (the editor of a live session) set, or without its ``ds_actor`` cookie."""
    morsel = _cookies(scope).get(COOKIE)
    if morsel is None:
        return scope
    context = context_of(datasette_)
    token_hash = hash_token(morsel.value)
    try:
        editor = await context.run(lambda store: store.session_editor(token_hash, now=time.time(), idle=SESSION_IDLE))
    except Exception:  # noqa: BLE001 - an archive that cannot be read: nobody is logged in, the page says the rest
        editor = None
    if editor is None or editor not in context.editors:
        return _without_cookie(scope, COOKIE)
    return {**scope, "watcher.actor": {"id": editor, "role": EDITOR_ROLE}}


# -- errors ---------------------------------------------------------------------------------------------------
_log = logging.getLogger("watcher.web")
DAMAGED = ("vtable constructor failed", "malformed", "file is not a database", "fts5: corrupt", "database disk image")


def error_answer(exception: BaseException) -> tuple[int, str]:
    """(status, message) for an error met while answering: what the visitor reads, never a traceback. A request
    the archive cannot make sense of (a parameter that is not a number, an id out of range) is a 404; a damaged
    archive or search index is a 503 that says how to repair it; the server's log gets one line."""
    from datasette.utils.asgi import Base400
    from datasette.views.base import DatasetteError

    if isinstance(exception, Base400):
        return exception.status, str(exception.args[0] if exception.args else "")
    if isinstance(exception, DatasetteError):
        # Datasette answers 500 for a bad sort column or a SQL error in a query someone typed: their request
        return (400 if exception.status >= 500 else exception.status), str(exception.message)
    # Datasette may run on pysqlite3 (a newer SQLite) whose errors are not sqlite3's classes: told by name
    database_error = any(k.__name__ == "DatabaseError" for k in type(exception).__mro__)
    if database_error and any(d in str(exception) for d in DAMAGED):
        _log.error("archive damaged: %s: %s", type(exception).__name__, exception)
        return 503, ("The archive or its full-text index is damaged; the operator can rebuild the index with "
                     "`watcher migrate --rebuild-fts` (or restore the archive from a backup).")
    if isinstance(exception, (ValueError, LookupError, OverflowError, UnicodeError)):
        return 404, "Not found: this address or one of its parameters means nothing to the archive."
    _log.error("error answering a request: %s: %s", type(exception).__name__, exception)
    return 500, "The server met an error; it is written in its log."


async def error_page(datasette_: Any, request: Any, exception: BaseException) -> Response:
    status, message = error_answer(exception)
    info = {"ok": False, "error": message, "status": status, "title": None}
    if request.path.split("?")[0].endswith(".json"):
        return Response.json(info, status=status)
    template = datasette_.jinja_env.select_template([f"{status}.html", "error.html"])
    html = await template.render_async(dict(info, urls=datasette_.urls, app_css_hash=datasette_.app_css_hash(),
                                            menu_links=lambda: []))
    return Response.html(html, status=status)
