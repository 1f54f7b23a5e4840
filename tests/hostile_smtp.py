"""SMTP servers that misbehave, on 127.0.0.1, for the fail-fast tests and the fault suite.

``SilentServer`` accepts TCP connections and counts them; it answers the first lines of a script (e.g. the
greeting and EHLO) and then nothing, ever, until it is stopped. ``refusing_login`` is a real aiosmtpd server whose
authenticator refuses every password and counts the attempts.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from test_notify_support import _Handler, free_port


class SilentServer:
    """Accepts connections; sends ``greeting`` lines, then answers one line of ``replies`` per line received, then
    goes silent (the connection stays open). ``connections`` counts the accepted connections."""

    def __init__(self, greeting: Sequence[str] = (), replies: Sequence[str] = ()):
        self.greeting, self.replies = list(greeting), list(replies)
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._open: list[socket.socket] = []
        self._stop = threading.Event()

    def __enter__(self) -> SilentServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()
        for conn in self._open:
            conn.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        try:
            for line in self.greeting:
                conn.sendall(line.encode() + b"\r\n")
            reader = conn.makefile("rb")
            for reply in self.replies:
                if not reader.readline():
                    return
                conn.sendall(reply.encode() + b"\r\n")
            self._stop.wait()  # silent from here on
        except OSError:
            return


class LoginCounter:
    """An aiosmtpd authenticator that refuses (or, once ``accept`` is set, accepts) every password. ``attempts``
    counts the logins: SMTP sessions that tried AUTH (smtplib tries each offered mechanism in one login)."""

    def __init__(self) -> None:
        self.sessions: list[Any] = []  # kept alive, so that no two sessions share an identity
        self.accept = False
        self.commands = 0  # AUTH commands received, all sessions together

    @property
    def attempts(self) -> int:
        return len(self.sessions)

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        self.commands += 1
        if not any(known is session for known in self.sessions):
            self.sessions.append(session)
        return AuthResult(success=self.accept, handled=False)


@contextmanager
def login_server() -> Iterator[tuple[int, _Handler, LoginCounter]]:
    """A plain SMTP server that wants AUTH (without TLS: a local test) and keeps every accepted message."""
    handler, counter, port = _Handler(), LoginCounter(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, authenticator=counter, auth_required=True,
                            auth_require_tls=False)
    controller.start()
    try:
        yield port, handler, counter
    finally:
        controller.stop()
