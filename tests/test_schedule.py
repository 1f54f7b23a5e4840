"""The daemon's schedule: one job per enabled source at its own interval, jobs that never let an error out."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher.app import App
from watcher.replay import DEMO_RECORDING, ReplayServer
from watcher.schedule import _classify_and_alert, _poll, build_scheduler

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def app(tmp_path: Path) -> App:
    return App(ROOT / "sources.toml", database=tmp_path / "watcher.db", host_delay=0.0)


def test_one_job_per_enabled_source_at_its_interval(app: App) -> None:
    scheduler = build_scheduler(app)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    enabled = [s for s in app.config.sources if s.enabled]
    assert set(jobs) == {f"source:{s.name}" for s in enabled} | {"classify-and-alert"}
    for source in enabled:
        trigger = jobs[f"source:{source.name}"].trigger
        assert trigger.interval.total_seconds() == source.interval
    assert all(job.max_instances == 1 and job.coalesce for job in jobs.values())


def test_a_poll_job_records_the_outcome_and_never_raises(tmp_path: Path) -> None:
    with ReplayServer(DEMO_RECORDING) as server:
        app = App(ROOT / "sources.toml", database=tmp_path / "w.db", url_map=server.url_map, host_delay=0.0)
        _poll(app, "edpb")
        _poll(app, "eurlex-oj")  # the recorded bot wall: recorded as a failure, not raised
        _poll(app, "no-such-source")  # a job whose source vanished from the config: logged, not raised
        health = {r["name"]: r for r in app.store.sources_health()}
        assert health["edpb"]["items_total"] == 10 and health["edpb"]["consecutive_failures"] == 0
        assert health["eurlex-oj"]["consecutive_failures"] == 1
        app.close()


def test_the_classify_job_is_a_run_without_ingest_that_plans_alerts(app: App) -> None:
    report = _classify_and_alert(app)
    assert report is not None and report.sources == [] and report.alerts is not None
    quiet = _classify_and_alert(app, deliver=False)
    assert quiet is not None and quiet.alerts is None
