"""The long-running daemon: APScheduler polls each source at its own interval, then classifies and alerts.

Jobs run one at a time (a single worker thread) so the one SQLite connection is never shared concurrently; a missed
run is coalesced, never stacked. Each job catches everything: a broken source is recorded, the daemon goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from watcher.app import App
from watcher.pipeline import classify_pending, ingest

log = logging.getLogger("watcher.daemon")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def build_scheduler(app: App, *, after_ingest: Callable[[datetime], None] | None = None,
                    scheduler: BlockingScheduler | None = None) -> BlockingScheduler:
    scheduler = scheduler or BlockingScheduler(executors={"default": ThreadPoolExecutor(1)}, timezone=UTC)
    start = _now()
    for source in app.config.sources:
        if not source.enabled:
            continue
        scheduler.add_job(_poll, IntervalTrigger(seconds=source.interval, timezone=UTC), args=[app, source.name],
                          id=f"source:{source.name}", next_run_time=start, coalesce=True, max_instances=1,
                          misfire_grace_time=source.interval // 2 or 1)
    scheduler.add_job(_classify_and_alert, IntervalTrigger(minutes=5, timezone=UTC), args=[app, after_ingest],
                      id="classify-and-alert", next_run_time=start, coalesce=True, max_instances=1)
    return scheduler


def _poll(app: App, name: str) -> None:
    try:
        (report,) = ingest(app.config, app.store, app.http, _now(), [app.config.source(name)])
        log.info("%s: %s, %d new, %d changed", name, report.outcome, report.new, report.changed)
    except Exception:  # the daemon must survive anything one job does
        log.exception("polling %s failed", name)


def _classify_and_alert(app: App, after_ingest: Callable[[datetime], None] | None) -> None:
    now = _now()
    try:
        report = classify_pending(app.store, app.classifier_factory(), now)
        if report.classified:
            log.info("classified %d item(s), %d tagged", report.classified, report.tagged)
    except Exception:  # alerts still go out for what was classified before
        log.exception("classify job failed")
    try:
        if after_ingest:
            after_ingest(now)
    except Exception:
        log.exception("alert job failed")
