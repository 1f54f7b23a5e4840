"""Web verbs of the Store: the editors' sessions and the failed logins of the web door (``watcher.web.door``).

Times are POSIX seconds (``time.time()``), given by the caller. A session is found by the SHA-256 of its token
(the token itself is only in the editor's cookie); it ends at ``expires_at``, after ``idle`` seconds without a
request, or when it is revoked (logout). Failed logins are counted per key (``account:NAME``, ``address:IP``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from sqlite_utils import Database

TOUCH_EVERY = 60.0  # a session's last_seen is written at most once a minute (not one write per page)


class WebMixin:
    """Session and login-throttle verbs of the ``Store`` (which provides ``self.db``)."""

    db: Database
    transaction: Callable[[], AbstractContextManager[None]]

    def open_session(self, token_hash: str, editor: str, *, now: float, lifetime: float) -> None:
        with self.transaction():
            self.db.execute("delete from web_sessions where expires_at < ? or revoked_at is not null", [now - 86400])
            self.db.execute("insert into web_sessions (token_hash, editor, created_at, last_seen, expires_at) "
                            "values (?, ?, ?, ?, ?)", [token_hash, editor, now, now, now + lifetime])

    def session_editor(self, token_hash: str, *, now: float, idle: float) -> str | None:
        """The editor of a live session (not expired, not idle too long, not revoked), else None."""
        row = self.db.execute("select editor, last_seen, expires_at, revoked_at from web_sessions "
                              "where token_hash = ?", [token_hash]).fetchone()
        if row is None or row[3] is not None or now >= row[2] or now - row[1] >= idle:
            return None
        if now - row[1] >= TOUCH_EVERY:
            with self.transaction():
                self.db.execute("update web_sessions set last_seen = ? where token_hash = ?", [now, token_hash])
        return str(row[0])

    def revoke_session(self, token_hash: str, *, now: float) -> bool:
        with self.transaction():
            cursor = self.db.execute("update web_sessions set revoked_at = ? where token_hash = ? "
                                     "and revoked_at is null", [now, token_hash])
        return cursor.rowcount > 0

    def login_failures(self, keys: Sequence[str]) -> dict[str, tuple[int, float]]:
        """(failures, time of the last one) of each key that has any."""
        marks = ",".join("?" * len(keys))
        return {row[0]: (int(row[1]), float(row[2])) for row in self.db.execute(
            f"select key, failures, last_failure from web_login_failures where key in ({marks})", list(keys))}

    def add_login_failure(self, keys: Sequence[str], *, now: float, forget_after: float = 86400.0) -> None:
        """One more failure for each key; counts quiet for ``forget_after`` seconds are dropped meanwhile."""
        with self.transaction():
            self.db.execute("delete from web_login_failures where last_failure < ?", [now - forget_after])
            self.db.conn.executemany(
                "insert into web_login_failures (key, failures, last_failure) values (?, 1, ?) on conflict(key) "
                "do update set failures = failures + 1, last_failure = excluded.last_failure",
                [(key, now) for key in keys])

    def clear_login_failures(self, keys: Sequence[str]) -> None:
        with self.transaction():
            self.db.conn.executemany("delete from web_login_failures where key = ?", [(key,) for key in keys])
