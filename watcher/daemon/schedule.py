"""The long-running daemon: each source polled at its own pace, classification and alerts after each fetch that
brought something, digests at their times, the model released when idle, one daemon per archive, a clean SIGTERM.

Jobs (APScheduler, one worker thread: jobs never overlap, so the daemon is one writer of the archive):

    source:NAME   ``PollTrigger``: the source's interval with jitter, more often inside its publication windows;
                  ``fetch_step`` ingests it and judges the operations incidents; if it brought new or changed
                  items they are classified and what is due is sent; an incident that opened or closed is sent too
    alerts        every ``alerts_every`` seconds: classify what is still pending, plan and send what is due
                  (retries, digests after a restart)
    digest:...    at each digest time of the subscriptions: plan and send the digests
    model         every minute: release the classifier once idle for ``model_idle`` seconds

Misfires: a job that cannot start within its grace time (a source: its interval; alerts: 5 min; a digest: 6 h)
skips that run; several missed runs of one job are coalesced into one. Every job catches everything: a broken
source or model is logged and recorded, the daemon goes on. SIGTERM / SIGINT: no new job starts, the running one
finishes (a delivery finishes the message in flight and leaves the rest pending), the lock is released.

Jobs run one at a time (one worker thread) and call the pipeline's steps (``fetch_step``, ``classify_step``,
``deliver_step``: the same as the commands), each of which holds the archive's writer lock while it runs: a cron
``watcher fetch`` waits for the job, and the job for it; nothing is held between jobs. The daemon's own lock (``watcher.daemon.instance``) only says that one daemon runs.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from classifiers.decide.base import Classifier
from watcher.app import App, model_settings, source_profiles
from watcher.config import SourceConfig
from watcher.daemon.instance import DaemonLock
from watcher.daemon.model_holder import ModelHolder, ProcessClassifier
from watcher.daemon.polling import PollTrigger
from watcher.pipeline import classify_step, deliver_step, fetch_step
from watcher.util.clock import now_utc

log = logging.getLogger("watcher.daemon")
ALERTS_GRACE, DIGEST_GRACE = 300, 6 * 3600
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class DaemonApp(App):
    """The App of the daemon: its classifier is the one the ``ModelHolder`` keeps while used, run in a child
    process (``ProcessClassifier``) so that releasing it gives the model's memory back."""

    holder: ModelHolder | None = None

    def classifier_factory(self) -> Callable[[], Classifier]:
        if self.holder is None:
            self.holder = ModelHolder(self._builder(), idle=self.config.settings.model_idle)
        return self.holder.factory(now_utc)

    def _builder(self) -> Callable[[], Classifier]:
        """Rules only (``--rules-only`` or ``model = "none"``): in this process, it is light. Else the model runs
        in a child process, built with the same arguments as the App's classifier."""
        from classifiers.decide.hybrid import RULES_ONLY, head_path

        config = self.config
        settings = model_settings(config.settings, self.rules_only)
        if settings.model == RULES_ONLY:
            return super().classifier_factory()
        args = (settings, head_path(config.database), source_profiles(config))
        return lambda: ProcessClassifier(*args)


class Daemon:
    def __init__(self, app: DaemonApp, *, deliver: bool = True, scheduler: BlockingScheduler | None = None):
        self.app, self.deliver = app, deliver
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(1)
        self.scheduler = scheduler or BlockingScheduler(executors={"default": self.pool}, timezone=UTC)
        self.lock: DaemonLock | None = None
        app.classifier_factory()  # creates the holder (the model itself is loaded on first use)

    # -- jobs -------------------------------------------------------------------------------------------------
    def poll(self, name: str) -> None:
        """Fetch one source; classify and alert only if it brought something (or an incident changed)."""
        try:
            report = fetch_step(self.app, now_utc(), sources=[self.app.config.source(name)])
            (source,) = report.sources
            log.info("%s: %s, %d new, %d changed", name, source.outcome, source.new, source.changed)
            incidents = report.incidents is not None and bool(report.incidents.opened or report.incidents.closed)
            if source.new or source.changed or incidents:
                self.alerts(classify=bool(source.new or source.changed))
        except Exception:  # the daemon must survive anything one job does
            log.exception("polling %s failed", name)

    def alerts(self, classify: bool = True, cadences: tuple[str, ...] | None = None) -> None:
        """Classify what is pending (a failing model is logged, the alerts still go), then plan and send."""
        try:
            now = now_utc()
            if classify:
                result, _error = classify_step(self.app, now)
                if result.classified:
                    log.info("classified %d item(s), %d tagged", result.classified, result.tagged)
            if self.deliver and not self.stop.is_set():
                self._send(now, cadences)
        except Exception:
            log.exception("alerts job failed")

    def _send(self, now: datetime, cadences: tuple[str, ...] | None) -> None:
        outcome = deliver_step(self.app, now, cadences=cadences, stop=self.stop)
        sent = outcome.report
        if outcome.planned or sent.sent or sent.failed or sent.held or sent.deferred:
            log.info("alerts: %d planned, %d sent, %d to retry, %d held, %d deferred", outcome.planned,
                     len(sent.sent), len(sent.failed), len(sent.held), len(sent.deferred))

    def release_model(self) -> None:
        holder = self.app.holder
        if holder is not None and holder.release_if_idle(now_utc()):
            log.info("model released after %.0f s idle", holder.idle)

    # -- schedule ---------------------------------------------------------------------------------------------
    def build(self) -> BlockingScheduler:
        """Add the jobs (once); they are due at once: each source is polled when the daemon starts."""
        if self.scheduler.get_jobs():
            return self.scheduler
        settings, start = self.app.config.settings, now_utc()
        tz = ZoneInfo(settings.timezone)
        for source in self.app.config.sources:
            if source.enabled:
                self.scheduler.add_job(self.poll, _trigger(source, tz, settings.poll_jitter), args=[source.name],
                                       id=f"source:{source.name}", next_run_time=start, coalesce=True,
                                       max_instances=1, misfire_grace_time=source.interval)
        self.scheduler.add_job(self.alerts, IntervalTrigger(seconds=settings.alerts_every, timezone=UTC),
                               id="alerts", next_run_time=start, coalesce=True, max_instances=1,
                               misfire_grace_time=ALERTS_GRACE)
        if self.deliver:
            for job_id, trigger, cadence in _digest_triggers(self.app.config.alerts.subscriptions,
                                                             ZoneInfo(self.app.config.alerts.timezone)):
                self.scheduler.add_job(self.alerts, trigger, kwargs={"cadences": (cadence,)}, id=job_id,
                                       coalesce=True, max_instances=1, misfire_grace_time=DIGEST_GRACE)
        self.scheduler.add_job(self.release_model, IntervalTrigger(minutes=1, timezone=UTC), id="model",
                               coalesce=True, max_instances=1)
        self.scheduler.add_listener(self._record, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
        return self.scheduler

    def _record(self, event: JobExecutionEvent) -> None:
        """After each job: the next runs and the model's state into the lock file (read by ``watcher status``)."""
        if self.lock is None:
            return
        next_runs = {job.id: job.next_run_time.isoformat() for job in self.scheduler.get_jobs()
                     if job.next_run_time is not None}
        holder = self.app.holder
        self.lock.update(next_runs=next_runs, model=holder.describe() if holder else None,
                         last_job={"id": event.job_id, "at": now_utc().isoformat(),
                                   "missed": event.code == EVENT_JOB_MISSED})

    # -- life -------------------------------------------------------------------------------------------------
    def acquire(self) -> None:
        """Take the archive's daemon lock; ``AlreadyRunning`` names the daemon that holds it."""
        if self.lock is None:
            self.lock = DaemonLock(self.app.config.database).acquire(now_utc())

    @property
    def pid(self) -> int:
        return os.getpid()

    def run(self) -> int:
        """Hold the archive, run until SIGTERM/SIGINT, finish the running job, release. Exit status 0."""
        self.acquire()
        assert self.lock is not None
        self.build()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            log.info("watcher daemon: %d job(s), pid lock %s", len(self.scheduler.get_jobs()), self.lock.path)
            self.scheduler.start()  # returns once shut down
        finally:
            self.pool.shutdown(wait=True)
            if self.app.holder is not None:
                self.app.holder.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.lock.release()
            self.app.close()
        log.info("watcher daemon stopped")
        return 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("%s: finishing the running job, then stopping", signal.Signals(signum).name)
        self.stop.set()
        self.scheduler.shutdown(wait=False)


def _trigger(source: SourceConfig, tz: ZoneInfo, jitter: float) -> PollTrigger:
    return PollTrigger(source.interval, windows=source.windows, every=source.window_every, tz=tz, jitter=jitter)


def _digest_triggers(subscriptions: Any, tz: ZoneInfo) -> list[tuple[str, CronTrigger, str]]:
    """One cron trigger per distinct digest time: (job id, trigger, cadence)."""
    times: dict[str, tuple[CronTrigger, str]] = {}
    for sub in subscriptions:
        cadence = sub.cadence
        if cadence.kind == "daily":
            job = f"digest:daily:{cadence.at:%H:%M}"
            times[job] = (CronTrigger(hour=cadence.at.hour, minute=cadence.at.minute, timezone=tz), "daily")
        elif cadence.kind == "weekly":
            job = f"digest:weekly:{_DAYS[cadence.day]}:{cadence.at:%H:%M}"
            times[job] = (CronTrigger(day_of_week=_DAYS[cadence.day], hour=cadence.at.hour,
                                      minute=cadence.at.minute, timezone=tz), "weekly")
    return [(job, trigger, cadence) for job, (trigger, cadence) in sorted(times.items())]
