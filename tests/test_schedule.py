"""The daemon's schedule: one job per enabled source at its own interval, jobs that never let an error out."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifiers.decide.keyword import KeywordClassifier
from watcher.daemon.model_holder import ModelHolder
from watcher.daemon.polling import PollTrigger
from watcher.daemon.schedule import Daemon, DaemonApp
from watcher.replay import DEMO_RECORDING, ReplayServer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def app(tmp_path: Path) -> DaemonApp:
    return DaemonApp(ROOT / "sources.toml", database=tmp_path / "watcher.db", host_delay=0.0)


def test_one_job_per_enabled_source_at_its_interval(app: DaemonApp) -> None:
    jobs = {job.id: job for job in Daemon(app).build().get_jobs()}
    enabled = [s for s in app.config.sources if s.enabled]
    assert set(jobs) == {f"source:{s.name}" for s in enabled} | {"alerts", "model"}
    for source in enabled:
        trigger = jobs[f"source:{source.name}"].trigger
        assert isinstance(trigger, PollTrigger) and trigger.interval == source.interval
        assert trigger.windows == source.windows and jobs[f"source:{source.name}"].misfire_grace_time == source.interval
    assert jobs["source:jorf"].trigger.windows  # the JORF deltas' publication windows (sources.toml)
    assert all(job.max_instances == 1 and job.coalesce for job in jobs.values())


def test_a_poll_job_records_the_outcome_and_never_raises(tmp_path: Path) -> None:
    with ReplayServer(DEMO_RECORDING) as server:
        app = DaemonApp(ROOT / "sources.toml", database=tmp_path / "w.db", url_map=server.url_map, host_delay=0.0)
        app.holder = ModelHolder(KeywordClassifier, idle=900)  # the baseline instead of the model
        daemon = Daemon(app, deliver=False)
        daemon.poll("edpb")
        daemon.poll("eurlex-oj")  # the recorded bot wall: recorded as a failure, not raised
        daemon.poll("no-such-source")  # a job whose source vanished from the config: logged, not raised
        health = {r["name"]: r for r in app.store.sources_health()}
        assert health["edpb"]["items_total"] == 10 and health["edpb"]["consecutive_failures"] == 0
        assert health["eurlex-oj"]["consecutive_failures"] == 1
        assert list(app.store.items_to_classify()) == [] and app.holder.loads == 1  # edpb's new items, classified
        app.close()


def test_the_alerts_job_never_raises(app: DaemonApp) -> None:
    app.holder = ModelHolder(KeywordClassifier, idle=900)
    Daemon(app).alerts()
    Daemon(app, deliver=False).alerts(cadences=("daily",))
    assert app.holder.loads == 0  # nothing pending: the classifier is not even built
