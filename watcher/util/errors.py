"""The exception tree of watcher. Everything raised on purpose derives from ``WatcherError``.

    WatcherError
    ├── ConfigError          a configuration file is wrong (names the file, the table and the key)
    ├── SourceError          one source failed; carries the source name (the others go on)
    │   ├── FetchError       network, HTTP status, size cap, robots.txt, redirect policy
    │   │   └── BotWallError an empty 2xx or a challenge page (e.g. the EUR-Lex WAF)
    │   └── ParseError       the bytes are not what the kind expects (HTML on a feed URL, broken XML/tarball)
    ├── ClassifierError      the model cannot be converted, loaded or run
    └── NotifyError          a channel could not deliver (SMTP, Slack, apprise)

Storage faults are ``store.StoreError`` (and its ``ArchiveBusy``), defined by the store, which depends on nothing
of watcher; they are not WatcherErrors, and this module does not import them (the layers below the store stay
free of it): the places that meet them (the CLI edge, the pipeline's per-source recording) catch both.

Messages are one line a user can act on; the CLI prints ``error: <message>`` and exits non-zero.
"""

from __future__ import annotations


class WatcherError(Exception):
    """Root of every error watcher raises on purpose."""


class ConfigError(WatcherError):
    def __init__(self, message: str, *, file: str | None = None, table: str | None = None, key: str | None = None):
        where = ": ".join(p for p in (file, table, key) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.file, self.table, self.key = file, table, key


class SourceError(WatcherError):
    def __init__(self, source: str, message: str, *, url: str | None = None, status: int | None = None):
        super().__init__(f"[{source}] {message}")
        self.source, self.reason, self.url, self.status = source, message, url, status


class FetchError(SourceError):
    """The source could not be fetched (network, status, size, policy)."""


class BotWallError(FetchError):
    """The server answered with an empty 2xx or a challenge instead of content."""


class ParseError(SourceError):
    """The fetched bytes are not what this kind of source expects."""


class ClassifierError(WatcherError):
    pass


class NotifyError(WatcherError):
    """``down`` says the channel itself failed, not this message: ``"connection"`` (unreachable, hung, dropped,
    past the deadline) or ``"login"`` (credentials or the required TLS refused); the next messages of the run would fail the same way."""

    def __init__(self, channel: str, message: str, *, permanent: bool = False, retry_after: float | None = None,
                 down: str = ""):
        super().__init__(f"[{channel}] {message}")
        self.channel, self.reason, self.permanent, self.retry_after = channel, message, permanent, retry_after
        self.down = down
