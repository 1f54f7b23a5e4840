"""``watcher demo``: the whole pipeline once, offline, against the bundled recordings of the real sources.

A local HTTP server replays the recorded responses (``watcher/replay_data``); the real HTTP client fetches them
through a URL map, so everything past the socket is what runs in production.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from watcher.app import App
from watcher.config import SourceConfig
from watcher.pipeline import ClassifyReport, SourceReport, classify_pending, ingest
from watcher.replay import DEMO_RECORDING, ReplayServer, load_recording


@dataclass
class DemoReport:
    database: Path
    sources: list[SourceReport] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    classified: ClassifyReport = field(default_factory=ClassifyReport)
    themes: Counter[str] = field(default_factory=Counter)
    items: int = 0


def recorded_sources(sources: tuple[SourceConfig, ...], recording: Path) -> tuple[list[SourceConfig], list[str]]:
    """Sources whose host has a recording; the others are listed as skipped rather than shown as failures."""
    hosts = {urlsplit(url).netloc for url in load_recording(recording)}
    chosen = [s for s in sources if s.enabled and urlsplit(s.url).netloc in hosts]
    skipped = [s.name for s in sources if s.enabled and s not in chosen]
    return chosen, skipped


def run_demo(config_path: str | Path | None, workdir: Path, now: datetime,
             echo: Callable[[str], None] = print, recording: Path = DEMO_RECORDING) -> DemoReport:
    workdir.mkdir(parents=True, exist_ok=True)
    report = DemoReport(database=workdir / "watcher.db")
    with ReplayServer(recording) as server:
        app = App(config_path, database=report.database, url_map=server.url_map, host_delay=0.0)
        try:
            sources, report.skipped = recorded_sources(app.config.sources, recording)
            echo(f"replaying {len(load_recording(recording))} recorded responses from {recording} on {server.base_url}")
            report.sources = ingest(app.config, app.store, app.http, now, sources, on_done=lambda r: echo(_line(r)))
            echo("classifying new items (the model is converted on first use, ~5 s)...")
            report.classified = classify_pending(app.store, app.classifier_factory(), now)
            report.themes = app.store.theme_counts()
            report.items = app.store.count_items()
        finally:
            app.close()
    return report


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
        f"{report.classified.in_scope_untagged} in scope but untagged (see `watcher untagged`)",
        "themes: " + ", ".join(f"{t} {n}" for t, n in report.themes.most_common()),
    ]
    if failed:
        lines.append(f"{len(failed)} source(s) failed and were recorded (see `watcher sources`): "
                     + ", ".join(s.name for s in failed))
    if report.skipped:
        lines.append("no recording for: " + ", ".join(report.skipped))
    lines += [
        "",
        "next:",
        f"  datasette {report.database} --metadata store/metadata.json   # search and facets",
        f"  WATCHER_DATABASE={report.database} watcher search 'données de santé'",
        f"  WATCHER_DATABASE={report.database} watcher sources",
    ]
    return lines
