"""Who gets what and when: matching, filters, human corrections, digests' schedule; time is passed in."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from test_notify_support import cnil_items, email_channel, seed, subscription, write_config

from store import Store
from watcher.config import load_config
from watcher.config.alerts import AlertsConfig, Cadence, Subscription
from watcher.notify import plan_deliveries
from watcher.notify.plan import last_occurrence, plan_since, preview_plan
from watcher.notify.service import load_alerts

T0 = datetime(2026, 6, 16, 18, 0, tzinfo=UTC)
FIXTURES = Path(__file__).parent / "fixtures"
PARIS = ZoneInfo("Europe/Paris")


def _alerts(tmp_path: Path, subs: str) -> AlertsConfig:
    return load_alerts(load_config(write_config(tmp_path, email_channel(2525) + subs)))


@pytest.fixture
def store() -> Store:
    return Store(":memory:")


@pytest.fixture
def rows(store: Store) -> list[dict]:
    items = cnil_items()
    items[2]["nature"], items[3]["lang"], items[4]["source"] = "deliberation-sanction", "en", "jorf"
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
    assert len(preview_plan(store, alerts, T0).messages) == 5
    assert store.db.table("subscription_starts").count == 0  # not even the subscription's start
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


# --- a first run is a baseline --------------------------------------------------------------------------------

def _aged(store: Store, published: dict[str, str]) -> None:
    for item_id, when in published.items():
        store.db.execute("update items set published = ?, legal_date = substr(?, 1, 10) where id = ?",
                         [when, when, item_id])


def test_items_older_than_the_horizon_are_not_alerted_but_sent_on_request(tmp_path: Path, store: Store,
                                                                          rows: list[dict]) -> None:
    ids = [r["id"] for r in rows]
    _aged(store, {ids[0]: "2026-06-12T10:00:00Z", ids[1]: "2025-01-01T10:00:00Z", ids[2]: "2026-06-14T10:00:00Z"})
    alerts = _alerts(tmp_path, subscription("a", themes=["personal-data"]))
    preview = preview_plan(store, alerts, T0)
    assert preview.baseline == {"a": 2} and {m["items"][0] for m in preview.messages} == {ids[2], ids[3], ids[4]}
    assert plan_deliveries(store, alerts, T0) == 3  # ids[0] (4 days old) and ids[1] (2025) are the baseline
    assert _planned(store) == {"a": {ids[2], ids[3], ids[4]}}
    # on request: one digest with what matched since the date and was never sent; asking again sends nothing
    assert plan_since(store, alerts, date(2025, 1, 1), T0) == 1
    (digest,) = [d for d in store.deliveries(limit=None) if d["kind"] == "since"]
    assert set(store.delivery_item_ids(digest["key"], "a")) == {ids[0], ids[1]}
    assert plan_since(store, alerts, date(2025, 1, 1), T0) == 0 and plan_since(store, alerts, date(2024, 1, 1), T0) == 0
    assert plan_deliveries(store, alerts, T0) == 0


def test_the_horizon_is_configurable_and_since_respects_the_date(tmp_path: Path, store: Store,
                                                                 rows: list[dict]) -> None:
    ids = [r["id"] for r in rows]
    _aged(store, {ids[0]: "2026-06-12T10:00:00Z", ids[1]: "2025-01-01T10:00:00Z"})
    alerts = load_alerts(load_config(write_config(tmp_path, '[alerts]\nbaseline_horizon = "7d"\n'
                                                  + email_channel(2525) + subscription("a", themes=["personal-data"]))))
    assert alerts.settings.baseline_horizon == 7 * 86400
    assert plan_deliveries(store, alerts, T0) == 4  # only the 2025 item is the baseline now
    assert plan_since(store, alerts, date(2026, 1, 1), T0) == 0  # the 2025 item is before that date
    assert plan_since(store, alerts, date(2024, 12, 31), T0) == 1


def test_a_new_subscription_does_not_get_what_was_stored_before_it(tmp_path: Path, store: Store,
                                                                   rows: list[dict]) -> None:
    first = _alerts(tmp_path, subscription("a", themes=["personal-data"]))
    assert plan_deliveries(store, first, T0) == 5
    later = T0.replace(hour=19)
    more = cnil_items(FIXTURES / "cnil" / "bmeret_cnil_feed_scraped-actualite_500items_2026-08-19.xml", limit=8)[6:]
    seed(store, more, {r["id"]: [("personal-data", 0.9)] for r in more},
         now="2026-06-16T18:30:00Z")  # two items stored after "a" began, before "b" existed
    both = _alerts(tmp_path, subscription("a", themes=["personal-data"]) + subscription("b", themes=["personal-data"]))
    assert plan_deliveries(store, both, later) == 2
    assert _planned(store)["a"] >= {r["id"] for r in more} and "b" not in _planned(store)
    # "a" was there at the archive's first planning: as old as the archive; "b" began when first seen
    assert store.subscription_starts(["a", "b"], "2099-01-01T00:00:00Z") == {"a": "", "b": "2026-06-16T19:00:00Z"}


def test_undated_items_of_a_source_s_first_fetch_are_baseline(tmp_path: Path, store: Store) -> None:
    """Health Data Hub records have no date: those of the source's first fetch were already there; one that
    appears in a later fetch is news."""
    undated = [{**row, "published": None, "legal_date": ""} for row in cnil_items()[:3]]
    store.log_fetch({"source": "cnil", "started_at": "2026-06-16T18:00:00Z", "outcome": "ok"})
    seed(store, undated[:2], {r["id"]: [("personal-data", 0.9)] for r in undated[:2]}, now="2026-06-16T18:00:00Z")
    alerts = _alerts(tmp_path, subscription("a", themes=["personal-data"]))
    assert plan_deliveries(store, alerts, T0) == 0 and preview_plan(store, alerts, T0).baseline == {}
    store.log_fetch({"source": "cnil", "started_at": "2026-06-17T18:00:00Z", "outcome": "ok"})
    seed(store, undated[2:], {undated[2]["id"]: [("personal-data", 0.9)]}, now="2026-06-17T18:00:00Z")
    assert plan_deliveries(store, alerts, T0.replace(day=17)) == 1
    assert plan_since(store, alerts, date(2026, 6, 16), T0.replace(day=17)) == 1  # the first two, on request


def test_a_subscription_stored_with_subscribe_began_when_it_was_stored(tmp_path: Path, store: Store,
                                                                      rows: list[dict]) -> None:
    """Items stored at 18:00; 'late' was stored by `watcher subscribe` at 18:30: they are not news to it."""
    from watcher.config.alerts import subscription_spec

    config = _alerts(tmp_path, subscription("a", themes=["personal-data"]))
    assert plan_deliveries(store, config, T0) == 5  # the archive's first planning: only the items' age decides
    late = config.subscription("a").__class__(name="late", person="L", themes=frozenset({"personal-data"}),
                                               channel="mail", email="late@cabinet-test.fr", origin="database")
    store.save_subscription("late", subscription_spec(late), now="2026-06-16T18:30:00Z")
    both = load_alerts(load_config(write_config(tmp_path, email_channel(2525) + subscription(
        "a", themes=["personal-data"]))), store.stored_subscriptions())
    seed(store, rows, {r["id"]: [("personal-data", 0.95)] for r in rows})  # classified again: queued again
    assert plan_deliveries(store, both, T0.replace(hour=19)) == 1  # item 5 now has personal-data: news to "a" only
    assert "late" not in _planned(store)
    assert store.subscription_starts(["late"], "2099-01-01T00:00:00Z") == {"late": "2026-06-16T18:30:00Z"}
