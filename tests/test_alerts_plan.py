"""Who gets what and when: matching, filters, human corrections, digests' schedule; time is passed in."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from test_notify_support import cnil_items, email_channel, seed, subscription, write_config

from store import Store
from watcher.config import load_config
from watcher.config.alerts import AlertsConfig, Cadence, Subscription
from watcher.notify import plan_deliveries
from watcher.notify.plan import last_occurrence, preview_plan
from watcher.notify.service import load_alerts

T0 = datetime(2026, 6, 16, 18, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")


def _alerts(tmp_path: Path, subs: str) -> AlertsConfig:
    return load_alerts(load_config(write_config(tmp_path, email_channel(2525) + subs)))


@pytest.fixture
def store() -> Store:
    return Store(":memory:")


@pytest.fixture
def rows(store: Store) -> list[dict]:
    items = cnil_items()
    items[2]["nature"], items[3]["lang"], items[4]["source"] = "DELIBERATION", "en", "jorf"
    seed(store, items, {items[0]["id"]: [("personal-data", 0.9)], items[1]["id"]: [("health-data", 0.55), ("personal-data", 0.8)],
                        items[2]["id"]: [("personal-data", 0.7)], items[3]["id"]: [("personal-data", 0.9)],
                        items[4]["id"]: [("personal-data", 0.9)], items[5]["id"]: [("health-data", 0.95)]})
    return items


def _planned(store: Store) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for row in store.deliveries(limit=None):
        out.setdefault(row["subscription"], set()).add(row["item_id"])
    return out


def test_filters_select_by_theme_score_source_nature_and_language(tmp_path: Path, store: Store,
                                                                  rows: list[dict]) -> None:
    alerts = _alerts(tmp_path, subscription("all", themes=["personal-data"])
                     + subscription("strict", themes=["personal-data"], min_score=0.85)
                     + subscription("jorf", themes=["personal-data"], sources=["jorf"])
                     + subscription("delib", themes=["personal-data"], natures=["deliberation"])
                     + subscription("english", themes=["personal-data"], languages=["en"])
                     + subscription("health", themes=["health-data"], min_score=0.6))
    assert plan_deliveries(store, alerts, T0) == 5 + 3 + 1 + 1 + 1 + 1
    ids = [r["id"] for r in rows]
    assert _planned(store) == {"all": set(ids[:5]), "strict": {ids[0], ids[3], ids[4]}, "jorf": {ids[4]},
                               "delib": {ids[2]}, "english": {ids[3]}, "health": {ids[5]}}


def test_planning_twice_or_after_reclassification_plans_nothing_new(tmp_path: Path, store: Store,
                                                                   rows: list[dict]) -> None:
    alerts = _alerts(tmp_path, subscription("all", themes=["personal-data", "health-data"]))
    assert plan_deliveries(store, alerts, T0) == 6
    assert plan_deliveries(store, alerts, T0) == 0
    seed(store, rows, {r["id"]: [("personal-data", 0.99), ("health-data", 0.99)] for r in rows})  # classified again
    assert plan_deliveries(store, alerts, T0) == 0 and len(store.deliveries(limit=None)) == 6


def test_a_theme_removed_by_a_person_does_not_alert_and_one_added_does(tmp_path: Path, store: Store,
                                                                       rows: list[dict]) -> None:
    alerts = _alerts(tmp_path, subscription("a", themes=["personal-data", "ai"]))
    store.add_label(rows[0]["id"], "personal-data", "remove", now="2026-06-16T17:00:00Z", author="juriste")
    store.add_label(rows[5]["id"], "ai", "add", now="2026-06-16T17:00:00Z", author="juriste")
    plan_deliveries(store, alerts, T0)
    planned = _planned(store)["a"]
    assert rows[0]["id"] not in planned and rows[5]["id"] in planned and len(planned) == 5
    seed(store, rows[:1], {rows[0]["id"]: [("personal-data", 0.99)]})  # the model insists: the person still wins
    assert plan_deliveries(store, alerts, T0) == 0


def test_two_subscriptions_of_one_person_give_one_alert_per_item(tmp_path: Path, store: Store,
                                                                rows: list[dict]) -> None:
    alerts = _alerts(tmp_path, subscription("a1", themes=["personal-data"], email="a@x.fr")
                     + subscription("a2", themes=["personal-data", "health-data"], email="a@x.fr"))
    plan_deliveries(store, alerts, T0)
    assert len(store.deliveries(limit=None)) == 6  # 5 rgpd + 1 sante-only, not 5 + 6


def test_digests_open_at_their_time_with_what_was_matched_before_it(tmp_path: Path, store: Store,
                                                                   rows: list[dict]) -> None:
    alerts = _alerts(tmp_path, subscription("d", themes=["personal-data"], cadence="daily", at="08:00")
                     + subscription("w", themes=["health-data"], cadence="weekly", day="friday", at="09:30"))
    assert plan_deliveries(store, alerts, T0) == 0  # matched at 20:00 Paris, after today's 08:00
    assert plan_deliveries(store, alerts, datetime(2026, 6, 17, 5, 59, tzinfo=UTC)) == 0  # 07:59 Paris
    assert plan_deliveries(store, alerts, datetime(2026, 6, 17, 6, 0, tzinfo=UTC)) == 1
    daily = store.deliveries()[0]
    assert daily["period"] == "2026-06-17" and len(store.delivery_item_ids(daily["key"], "d")) == 5
    late = cnil_items(limit=1)[0] | {"id": "cnil:late"}
    seed(store, [late], {"cnil:late": [("personal-data", 0.9)]}, now="2026-06-17T07:00:00Z")
    assert plan_deliveries(store, alerts, datetime(2026, 6, 17, 7, 0, tzinfo=UTC)) == 0  # waits for tomorrow
    assert plan_deliveries(store, alerts, datetime(2026, 6, 18, 6, 0, tzinfo=UTC)) == 1
    assert plan_deliveries(store, alerts, datetime(2026, 6, 19, 7, 29, tzinfo=UTC)) == 0  # Fri 09:29 Paris
    assert plan_deliveries(store, alerts, datetime(2026, 6, 19, 7, 30, tzinfo=UTC)) == 1
    assert {r["kind"]: r["period"] for r in store.deliveries(limit=None) if r["kind"] == "weekly"} == {
        "weekly": "2026-06-19"}


def test_a_digest_match_withdrawn_by_a_person_is_not_sent(tmp_path: Path, store: Store, rows: list[dict]) -> None:
    alerts = _alerts(tmp_path, subscription("d", themes=["personal-data"], cadence="daily"))
    plan_deliveries(store, alerts, T0)
    store.add_label(rows[0]["id"], "personal-data", "remove", now="2026-06-16T19:00:00Z", author="juriste")
    plan_deliveries(store, alerts, datetime(2026, 6, 17, 6, 0, tzinfo=UTC))
    key = store.deliveries()[0]["key"]
    assert rows[0]["id"] not in store.delivery_item_ids(key, "d") and len(store.delivery_item_ids(key, "d")) == 4


def test_preview_writes_nothing(tmp_path: Path, store: Store, rows: list[dict]) -> None:
    alerts = _alerts(tmp_path, subscription("a", themes=["personal-data"]))
    assert len(preview_plan(store, alerts, T0)) == 5
    assert store.deliveries() == [] and plan_deliveries(store, alerts, T0) == 5


@pytest.mark.parametrize(
    ("now", "kind", "expected"),
    [
        (datetime(2026, 3, 29, 6, 30, tzinfo=UTC), "daily", datetime(2026, 3, 29, 6, 0, tzinfo=UTC)),  # DST day
        (datetime(2026, 3, 29, 5, 59, tzinfo=UTC), "daily", datetime(2026, 3, 28, 7, 0, tzinfo=UTC)),
        (datetime(2026, 10, 25, 7, 0, tzinfo=UTC), "daily", datetime(2026, 10, 25, 7, 0, tzinfo=UTC)),
        (datetime(2026, 6, 17, 12, 0, tzinfo=UTC), "weekly", datetime(2026, 6, 15, 6, 0, tzinfo=UTC)),  # Monday
        (datetime(2026, 6, 15, 5, 0, tzinfo=UTC), "weekly", datetime(2026, 6, 8, 6, 0, tzinfo=UTC)),
    ],
)
def test_last_occurrence_is_wall_clock_time_across_dst(now: datetime, kind: str, expected: datetime) -> None:
    sub = Subscription(name="s", person="p", themes=frozenset({"t"}), channel="c",
                       cadence=Cadence(kind=kind, at=time(8, 0), day=0))
    assert last_occurrence(sub, now, PARIS)[0] == expected


def test_the_queue_is_drained_in_batches_with_the_same_result(tmp_path: Path, store: Store,
                                                              rows: list[dict]) -> None:
    from watcher.notify.plan import plan_matches

    alerts = _alerts(tmp_path, subscription("all", themes=["personal-data", "health-data"]))
    assert plan_matches(store, alerts, T0, batch=2) == 6
    assert store.alert_candidates() == (0, []) and plan_matches(store, alerts, T0) == 0
