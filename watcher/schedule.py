"""The long-running daemon: APScheduler polls each source at its own interval, then classifies and alerts.

Both kinds of job are ``pipeline.run_once`` with some steps: a source's job ingests that one source; the
``classify-and-alert`` job (every five minutes) ingests nothing, classifies what is pending and, unless the daemon
was started without alerts, plans and sends what is due.

Jobs run one at a time (a single worker thread) so the one SQLite connection is never shared concurrently; a missed
run is coalesced, never stacked. Each job holds the archive's writer lock while it runs (``run_once`` takes it: a
cron ``watcher fetch`` waits for the job, and the job for it), not between jobs. Each job catches everything: a
broken source is recorded, the daemon goes on.
"""

from __future__ import annotations

import logging
from datetime import UTC

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from watcher.app import App
from watcher.clock import now_utc
from watcher.pipeline import RunReport, run_once

log = logging.getLogger("watcher.daemon")
CLASSIFY_EVERY_MINUTES = 5


def build_scheduler(app: App, *, deliver: bool = True, scheduler: BlockingScheduler | None = None) -> BlockingScheduler:
    """One job per enabled source at its interval, and the classify-and-alert job; every job starts now."""
    scheduler = scheduler or BlockingScheduler(executors={"default": ThreadPoolExecutor(1)}, timezone=UTC)
    start = now_utc()
    for source in app.config.sources:
        if not source.enabled:
            continue
        scheduler.add_job(_poll, IntervalTrigger(seconds=source.interval, timezone=UTC), args=[app, source.name],
                          id=f"source:{source.name}", next_run_time=start, coalesce=True, max_instances=1,
                          misfire_grace_time=source.interval // 2 or 1)
    scheduler.add_job(_classify_and_alert, IntervalTrigger(minutes=CLASSIFY_EVERY_MINUTES, timezone=UTC),
                      args=[app, deliver], id="classify-and-alert", next_run_time=start, coalesce=True,
                      max_instances=1)
    return scheduler


def _poll(app: App, name: str) -> RunReport | None:
    try:
        report = run_once(app, now_utc(), sources=[app.config.source(name)], classify=False, deliver=False)
    except Exception:  # the daemon must survive anything one job does
        log.exception("polling %s failed", name)
        return None
    (source,) = report.sources
    log.info("%s: %s, %d new, %d changed", name, source.outcome, source.new, source.changed)
    return report


def _classify_and_alert(app: App, deliver: bool = True) -> RunReport | None:
    try:
        report = run_once(app, now_utc(), sources=(), deliver=deliver)
    except Exception:
        log.exception("classify/alert job failed")
        return None
    if report.classified.classified:
        log.info("classified %d item(s), %d tagged", report.classified.classified, report.classified.tagged)
    return report
