"""``watcher demo``: the whole pipeline once, offline, against the bundled recordings of the real sources.

A local HTTP server replays the recorded responses (``watcher/replay_data``); the real HTTP client fetches them
through a URL map, so everything past the socket is what runs in production.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlsplit

from watcher.app import App
from watcher.config import Config, SourceConfig
from watcher.config.alerts import AlertsConfig, parse_alerts
from watcher.notify.plan import plan_deliveries, preview_plan
from watcher.notify.service import checked_alerts, preview_digest
from watcher.pipeline import ClassifyReport, SourceReport, grouping, run_once
from watcher.replay import DEMO_RECORDING, ReplayServer, load_recording


@dataclass
class DemoReport:
    database: Path
    sources: list[SourceReport] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    classified: ClassifyReport = field(default_factory=ClassifyReport)
    classify_error: str = ""
    themes: Counter[str] = field(default_factory=Counter)
    items: int = 0
    alerts_planned: int = 0
    subscriptions: int = 0
    preview: Path | None = None
    since: date | None = None
    baseline: int = 0


def recorded_sources(sources: tuple[SourceConfig, ...], recorded_urls: Iterable[str]) -> tuple[list[SourceConfig],
                                                                                               list[str]]:
    """Sources whose host has a recording; the others are listed as skipped rather than shown as failures."""
    hosts = {urlsplit(url).netloc for url in recorded_urls}
    chosen = [s for s in sources if s.enabled and urlsplit(s.url).netloc in hosts]
    skipped = [s.name for s in sources if s.enabled and s not in chosen]
    return chosen, skipped


def run_demo(config_path: str | Path | None, workdir: Path, now: datetime,
             echo: Callable[[str], None] = print, recording: Path = DEMO_RECORDING,
             rules_only: bool = False) -> DemoReport:
    workdir.mkdir(parents=True, exist_ok=True)
    report = DemoReport(database=workdir / "watcher.db")
    with ReplayServer(recording) as server:
        app = App(config_path, database=report.database, url_map=server.url_map, host_delay=0.0,
                  rules_only=rules_only)
        try:
            recorded = load_recording(recording)
            sources, report.skipped = recorded_sources((*app.config.sources, *DEMO_SOURCES), recorded)
            echo(f"replaying {len(recorded)} recorded responses from {recording} on {server.base_url}; new items "
                 "are then classified (the model is converted on first use, ~5 s)")
            run = run_once(app, now, sources=sources, deliver=False, on_source=lambda r: echo(_line(r)))
            report.sources, report.classified, report.classify_error = run.sources, run.classified, run.classify_error
            report.themes = app.store.theme_counts()
            report.items = app.store.count_items()
            _alerts(app, report, now, workdir)
        finally:
            app.close()
    return report


EXAMPLE_SUBSCRIPTIONS = Path(__file__).with_name("subscriptions.example.toml")  # package data, one copy
# The seed's story needs the two JO texts of the DMUU call for applications, which no capture holds: the demo reads
# them from a reconstructed feed (tests/fixtures/reconstructed/reconstructed_jo_dmuu_feed.xml, demo only)
DEMO_SOURCES = (SourceConfig(name="jo-dmuu-reconstitue", kind="feed", url="https://jo-dmuu.reconstructed.example/feed.xml",
                             label="Journal officiel (DMUU, reconstitué pour la démo)", publisher="DILA", legal=True),)


def example_alerts(config: Config) -> AlertsConfig:
    """The alerts of ``config`` as if it referenced the example subscriptions file."""
    raw = {**config.raw, "alerts": {**config.raw.get("alerts", {}), "subscriptions": str(EXAMPLE_SUBSCRIPTIONS)}}
    alerts = parse_alerts(raw, config.path, config.settings.public_url, config.settings.timezone)
    return checked_alerts(alerts, config.settings.themes)


def _alerts(app: App, report: DemoReport, now: datetime, workdir: Path) -> None:
    """Plan the example subscriptions' alerts (nothing is sent: the demo has no mail server) and preview a digest."""
    alerts = example_alerts(app.config)
    report.subscriptions = len(alerts.subscriptions)
    report.baseline = sum(preview_plan(app.store, alerts, now).baseline.values())
    report.alerts_planned = plan_deliveries(app.store, alerts, now)
    # a first run is a baseline (nothing planned): preview what `deliver --since` would send for this year
    report.since = date(now.year, 1, 1)
    message = preview_digest(app.store, app.config, alerts, "weekly", None, now, since=report.since,
                             same_event=grouping(app.store))
    report.preview = workdir / "digest-preview.html"
    report.preview.write_text(message.html, encoding="utf-8")
    report.preview.with_suffix(".txt").write_text(message.text, encoding="utf-8")


def _line(r: SourceReport) -> str:
    if r.outcome == "failed":
        return f"  {r.name:<22} FAILED (recorded)  {r.error}"
    return f"  {r.name:<22} {r.outcome:<12} {r.seen:>5} seen {r.new:>5} new {r.changed:>3} changed"


def summary(report: DemoReport) -> list[str]:
    failed = [s for s in report.sources if s.outcome == "failed"]
    lines = [
        "",
        f"stored {report.items} items from {len(report.sources) - len(failed)} sources in {report.database}",
        f"classified {report.classified.classified}: {report.classified.tagged} tagged, "
        f"{report.classified.in_scope_untagged} in scope but untagged (see `watcher untagged`); "
        f"model consulted on {report.classified.model_consulted} [{report.classified.model}]",
        "themes: " + ", ".join(f"{t} {n}" for t, n in report.themes.most_common()),
    ]
    if report.classified.degraded:
        lines.append(f"model: DEGRADED, rules and identifiers only ({report.classified.degraded})")
    if report.classify_error:
        lines.append(f"classification stopped: {report.classify_error}")
    if failed:
        lines.append(f"{len(failed)} source(s) failed and were recorded (see `watcher sources`): "
                     + ", ".join(s.name for s in failed))
    if report.skipped:
        lines.append("no recording for: " + ", ".join(report.skipped))
    lines.append(f"alerts: {report.alerts_planned} planned for the {report.subscriptions} example subscriptions "
                 f"(watcher/subscriptions.example.toml; nothing sent: the demo has no mail server or webhook); "
                 f"{report.baseline} match(es) of what was already there held back as the baseline")
    if report.preview:
        lines.append(f"weekly digest preview: {report.preview} (and .txt): what `watcher deliver --since "
                     f"{report.since}` would send (a first run is a baseline: nothing older than 3 days is alerted)")
    lines += [
        "",
        "next:",
        f"  WATCHER_DATABASE={report.database} .venv/bin/watcher serve   # the archive in Datasette: search, facets, feeds",
        f"  WATCHER_DATABASE={report.database} .venv/bin/watcher search 'données de santé'",
        f"  WATCHER_DATABASE={report.database} .venv/bin/watcher sources",
        "  then, in the archive, /-/act/decret/2025-895: the décret, the arrêté du 4 février 2026 applying it and the "
        "firm's commentary on both, linked",
    ]
    return lines
