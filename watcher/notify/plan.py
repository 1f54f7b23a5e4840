"""Who gets what, and when: new theme rows are matched against subscriptions; due digests are opened.

Pure helpers (``match``, ``last_occurrence``, ``delivery_key``) do the thinking; ``plan_deliveries`` reads the
queue and writes the ledger through the store's verbs. Time is passed in.

A first run is a baseline, as in urlwatch and changedetection.io: a match is not news, and sends nothing, when its
item is older than ``[alerts] baseline_horizon`` (default 3 days; its ``published`` time, else when it was first
stored) or was stored before the subscription began; an undated item that came with its source's first fetch was
already there too (``Baseline``). Such items stay searchable and are sent on
request, in one digest per person and channel, by ``plan_since`` (``watcher deliver --since DATE``). Every item still
reaches a subscription at most once (``delivery_items``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from watcher.config.alerts import AlertsConfig, Subscription
from watcher.legal.normalize import iso


class PlanStore(Protocol):
    def alert_candidates(self, limit: int = ...) -> tuple[int, list[dict[str, Any]]]: ...
    def matched_pairs(self, item_ids: Sequence[str]) -> set[tuple[str, str]]: ...
    def record_matches(self, upto: int, matches: Sequence[Mapping[str, Any]],
                       deliveries: Sequence[Mapping[str, Any]]) -> int: ...
    def unassigned_matches(self, subscription: str, until: str) -> list[dict[str, Any]]: ...
    def open_digests(self, digests: Sequence[tuple[Mapping[str, Any], str, Sequence[str], float]]) -> int: ...
    def digest_exists(self, key: str) -> bool: ...
    def themes_of_items(self, item_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]: ...
    def subscription_starts(self, names: Sequence[str], now: str, *, record: bool = ...) -> dict[str, str]: ...
    def first_fetches(self) -> dict[str, str]: ...
    def theme_rows_since(self, themes: Sequence[str], since: str, subscription: str) -> list[dict[str, Any]]: ...
    def items_naming(self, pairs: Sequence[tuple[str, str]], since: str = ...) -> list[dict[str, Any]]: ...
    def links_among(self, item_ids: Sequence[str]) -> list[tuple[str, str]]: ...
    def changed_deliveries(self, subscriptions: Sequence[str], since: str) -> list[dict[str, Any]]: ...


class DeliveryItems(Protocol):
    def delivery_item_ids(self, key: str, subscription: str) -> list[str]: ...


@dataclass(frozen=True)
class Match:
    subscription: Subscription
    item_id: str
    theme: str
    score: float
    baseline: bool = False  # already there: not alerted (see the module docstring)


@dataclass(frozen=True)
class Baseline:
    """What is not news: items dated before ``cutoff``, or stored before their subscription began; an undated item
    that came with its source's first fetch was already there too."""

    cutoff: str
    starts: Mapping[str, str]
    first_fetch: Mapping[str, str] = field(default_factory=dict)  # source -> its first successful fetch

    def holds(self, subscription: str, row: Mapping[str, Any]) -> bool:
        first_seen, published = row.get("first_seen") or "", row.get("published") or ""
        if published and published < self.cutoff:
            return True
        if first_seen and first_seen < self.starts.get(subscription, ""):
            return True
        first_fetch = self.first_fetch.get(row.get("source") or "", "")
        return not published and bool(first_seen) and (first_seen < self.cutoff or first_seen <= first_fetch)


def baseline(store: PlanStore, alerts: AlertsConfig, now: datetime, *, record: bool = True) -> Baseline:
    """The baseline of ``now``; records when each subscription was first seen (unless ``record`` is False)."""
    starts = store.subscription_starts([s.name for s in alerts.subscriptions], iso(now) or "", record=record)
    return Baseline(iso(now - timedelta(seconds=alerts.settings.baseline_horizon)) or "", starts,
                    store.first_fetches())


def delivery_key(*parts: str) -> str:
    """The unique, stable key of one delivery (and so of its Message-ID)."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def recipient(sub: Subscription, channel_kind: str) -> str:
    if channel_kind == "email":
        return sub.email.lower()
    return sub.slack or sub.email.lower() or sub.person


def theme_index(subs: Iterable[Subscription]) -> dict[str, list[Subscription]]:
    index: dict[str, list[Subscription]] = {}
    for sub in subs:
        for theme in sub.themes:
            index.setdefault(theme, []).append(sub)
    return index


def match(rows: Iterable[Mapping[str, Any]], index: Mapping[str, Sequence[Subscription]],
          known: set[tuple[str, str]], base: Baseline | None = None) -> list[Match]:
    """Candidate theme rows x subscriptions -> one match per (subscription, item), with its best theme, marked
    ``baseline`` when ``base`` holds it."""
    best: dict[tuple[str, str], Match] = {}
    for row in rows:
        for sub in index.get(row["theme"], ()):
            pair = (sub.name, row["item_id"])
            if pair in known or not sub.accepts(score=row["score"], source=row["source"],
                                                nature=row["nature"] or "", lang=row["lang"] or ""):
                continue
            previous = best.get(pair)
            if previous is None or row["score"] > previous.score:
                held = base is not None and base.holds(sub.name, row)
                best[pair] = Match(sub, row["item_id"], row["theme"], float(row["score"]), held)
    return list(best.values())


def still_matches(sub: Subscription, themes: Sequence[Mapping[str, Any]]) -> bool:
    """False once a person removed every theme that made this item match (an item sent for a followed act
    matched whatever its themes)."""
    return bool(sub.act_keys) or any(t["theme"] in sub.themes and t["score"] >= sub.min_score for t in themes)


ACT_THEME = "act:"  # delivery_items.theme of a match made by a followed act: "act:decret:2025-895"


def act_matches(store: PlanStore, alerts: AlertsConfig, base: Baseline | None) -> list[Match]:
    """Items naming (citing, applying, amending, rectifying) or linked to an act a subscription follows, whatever
    their theme; once per (subscription, item), the baseline held back as for themes."""
    found: list[Match] = []
    for sub in (s for s in alerts.subscriptions if s.act_keys):
        rows = store.items_naming(sorted(sub.act_keys))
        known = store.matched_pairs([r["item_id"] for r in rows])
        for row in rows:
            if (sub.name, row["item_id"]) in known or not sub.accepts(
                    score=1.0, source=row["source"], nature=row["nature"] or "", lang=row["lang"] or ""):
                continue
            held = base is not None and base.holds(sub.name, row)
            found.append(Match(sub, row["item_id"], f"{ACT_THEME}{row['scheme']}:{row['value']}", 1.0, held))
    return found


def last_occurrence(sub: Subscription, now: datetime, tz: ZoneInfo) -> tuple[datetime, str]:
    """The latest scheduled digest time at or before ``now`` (UTC) and its period label (local date)."""
    local = now.astimezone(tz)
    at = local.replace(hour=sub.cadence.at.hour, minute=sub.cadence.at.minute, second=0, microsecond=0)
    if sub.cadence.kind == "weekly":
        at -= timedelta(days=(at.weekday() - sub.cadence.day) % 7)
        step = timedelta(days=7)
    else:
        step = timedelta(days=1)
    if at > local:
        at -= step
    at = datetime.combine(at.date(), sub.cadence.at, tzinfo=tz)  # the wall-clock time, across DST changes
    return at.astimezone(UTC), at.date().isoformat()


def plan_deliveries(store: PlanStore, alerts: AlertsConfig, now: datetime,
                    cadences: Sequence[str] = ("instant", "daily", "weekly")) -> int:
    """Match what was classified since the last call, then open the digests that are due. Returns deliveries
    created. Called by ``notify.service.deliver`` (which ``pipeline.run_once`` calls after classification, and
    ``watcher deliver`` / ``watcher digest`` call alone) and by the demo, which plans without sending."""
    created = plan_matches(store, alerts, now)
    digests = [s for s in alerts.subscriptions if s.cadence.kind != "instant" and s.cadence.kind in cadences]
    return created + open_due_digests(store, alerts, digests, now)


def plan_matches(store: PlanStore, alerts: AlertsConfig, now: datetime, batch: int = 50_000) -> int:
    """Drain the alert queue, ``batch`` theme rows at a time (memory stays bounded after a bulk import)."""
    index, created, base = theme_index(alerts.subscriptions), 0, baseline(store, alerts, now)
    while True:
        upto, rows = store.alert_candidates(batch)
        if not upto:
            break
        created += _plan_batch(store, alerts, (index, base), upto, rows, iso(now) or "")
    if any(s.act_keys for s in alerts.subscriptions):
        created += _record(store, alerts, 0, act_matches(store, alerts, base), iso(now) or "")
    if any(s.updates for s in alerts.subscriptions):
        created += plan_updates(store, alerts, now)
    return created


def _plan_batch(store: PlanStore, alerts: AlertsConfig,
                how: tuple[Mapping[str, Sequence[Subscription]], Baseline], upto: int,
                rows: Sequence[Mapping[str, Any]], stamp: str) -> int:
    """Record the news of one batch; baseline matches are left unrecorded (``plan_since`` may send them)."""
    found = match(rows, how[0], store.matched_pairs([r["item_id"] for r in rows]), how[1])
    return _record(store, alerts, upto, found, stamp)


def _record(store: PlanStore, alerts: AlertsConfig, upto: int, found: Sequence[Match], stamp: str) -> int:
    """Record the news among ``found``. An instant subscription gets one message per group of linked items (an act
    and the commentary on it, ``watcher.legal.links``) matched together: the group's first item's delivery
    carries the others (``delivery_items``), so a lawyer is not told twice about one act."""
    news = [m for m in found if not m.baseline]
    lead = _linked_leads(store, [m.item_id for m in news if m.subscription.cadence.kind == "instant"])
    matches: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    keys: dict[tuple[str, str], str] = {}
    for m in sorted(news, key=lambda m: lead.get(m.item_id, m.item_id) != m.item_id):
        key = None
        if m.subscription.cadence.kind == "instant":
            head = lead.get(m.item_id, m.item_id)
            key = keys.get((m.subscription.name, head))
            if key is None:
                delivery = instant_delivery(m, alerts, stamp)
                key = keys[(m.subscription.name, m.item_id)] = delivery["key"]
                deliveries.append(delivery)
        matches.append({"subscription": m.subscription.name, "item_id": m.item_id, "theme": m.theme,
                        "score": m.score, "cadence": m.subscription.cadence.kind, "matched_at": stamp,
                        "delivery_key": key})
    return store.record_matches(upto, matches, deliveries)


def _linked_leads(store: PlanStore, item_ids: Sequence[str]) -> dict[str, str]:
    """item -> the item that leads its group of linked items (the act a commentary cites), among ``item_ids``."""
    if len(item_ids) < 2:
        return {}
    from watcher.legal.links import groups_of

    return {member: group[0] for group in groups_of(item_ids, store.links_among(item_ids)) for member in group}


def plan_updates(store: PlanStore, alerts: AlertsConfig, now: datetime) -> int:
    """An "updated" message for each item a subscription with ``updates = true`` was already sent and that changed
    since (a rectificatif, a re-delivered JO text with other content, an edited post): one per (item, version)."""
    subs = {s.name: s for s in alerts.subscriptions if s.updates}
    stamp, deliveries = iso(now) or "", []
    for row in store.changed_deliveries(sorted(subs), stamp):
        sub = subs[row["subscription"]]
        channel = alerts.channel(sub.channel)
        to = recipient(sub, channel.kind)
        deliveries.append({"key": delivery_key("updated", row["item_id"], str(row["version"]), to, channel.name),
                           "kind": "updated", "subscription": sub.name, "recipient": to, "channel": channel.name,
                           "period": "", "item_id": row["item_id"], "state": "pending", "attempts": 0,
                           "created_at": stamp, "updated_at": stamp})
    return store.record_matches(0, [], deliveries) if deliveries else 0


def instant_delivery(m: Match, alerts: AlertsConfig, stamp: str) -> dict[str, Any]:
    sub = m.subscription
    channel = alerts.channel(sub.channel)
    to = recipient(sub, channel.kind)
    return {"key": delivery_key("instant", m.item_id, to, channel.name), "kind": "instant",
            "subscription": sub.name, "recipient": to, "channel": channel.name, "period": "",
            "item_id": m.item_id, "state": "pending", "attempts": 0, "created_at": stamp, "updated_at": stamp}


def open_due_digests(store: PlanStore, alerts: AlertsConfig, subs: Sequence[Subscription], now: datetime) -> int:
    """One digest per (subscription, period) once its time has come, with what was matched up to that time."""
    tz, stamp = ZoneInfo(alerts.timezone), iso(now) or ""
    due: list[tuple[Mapping[str, Any], str, Sequence[str], float]] = []
    for sub in subs:
        scheduled, period = last_occurrence(sub, now, tz)
        channel = alerts.channel(sub.channel)
        key = delivery_key(sub.cadence.kind, sub.name, period, channel.name)
        if store.digest_exists(key):
            continue
        row = {"key": key, "kind": sub.cadence.kind, "subscription": sub.name,
               "recipient": recipient(sub, channel.kind), "channel": channel.name, "period": period,
               "item_id": "", "state": "pending", "attempts": 0, "created_at": stamp, "updated_at": stamp}
        due.append((row, iso(scheduled) or "", sorted(sub.themes), sub.min_score))
    return store.open_digests(due) if due else 0


def plan_since(store: PlanStore, alerts: AlertsConfig, since: date, now: datetime,
               names: Sequence[str] = ()) -> int:
    """One digest per person and channel (over their subscriptions of ``names``, default all) with every matching
    item whose legal date is ``since`` or later and that none of those subscriptions got: the baseline, sent on
    request. Returns digests created; asking twice for the same date creates nothing more. The digests are
    ordinary pending deliveries of kind ``since``: the same run sends them, or any later delivery run."""
    created = 0
    for delivery, matches in since_digests(store, alerts, since, now, names):
        created += store.record_matches(0, matches, [delivery])
    return created


def people(alerts: AlertsConfig, names: Sequence[str] = ()) -> dict[tuple[str, str], list[Subscription]]:
    """The subscriptions (of ``names``, default all) of each (recipient, channel): one person on one channel,
    whatever the number of their subscriptions, in the configuration's order."""
    out: dict[tuple[str, str], list[Subscription]] = {}
    for sub in alerts.subscriptions:
        if names and sub.name not in names:
            continue
        channel = alerts.channel(sub.channel)
        out.setdefault((recipient(sub, channel.kind), channel.name), []).append(sub)
    return out


def since_key(to: str, since: str, channel: str) -> str:
    """The key of a person's digest ``deliver --since`` (one per recipient, date and channel)."""
    return delivery_key("since", to, since, channel)


def since_digests(store: PlanStore, alerts: AlertsConfig, since: date, now: datetime,
                  names: Sequence[str] = ()) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(delivery row, its matches) of each digest ``plan_since`` would create; nothing is written. The row names
    the person's first subscription; the matches of all their subscriptions point at it (``delivery_key``)."""
    stamp, day, out = iso(now) or "", since.isoformat(), []
    for (to, channel), subs in people(alerts, names).items():
        key = since_key(to, day, channel)
        if store.digest_exists(key):
            continue
        found: list[Match] = []
        for sub in subs:
            found += match(store.theme_rows_since(sorted(sub.themes), day, sub.name), theme_index([sub]), set())
        mine = {s.name for s in subs}
        had = {item for name, item in store.matched_pairs([m.item_id for m in found]) if name in mine}
        found = [m for m in found if m.item_id not in had]
        if found:
            delivery = {"key": key, "kind": "since", "subscription": subs[0].name, "period": day,
                        "recipient": to, "channel": channel, "item_id": "",
                        "state": "pending", "attempts": 0, "created_at": stamp, "updated_at": stamp}
            out.append((delivery, [{"subscription": m.subscription.name, "item_id": m.item_id, "theme": m.theme,
                                    "score": m.score, "cadence": "since", "matched_at": stamp, "delivery_key": key}
                                   for m in found]))
    return out


def carried_subscriptions(alerts: AlertsConfig, row: Mapping[str, Any]) -> list[Subscription]:
    """The subscriptions whose matches a delivery row carries: its own, and for a ``since`` digest every
    subscription of the same person on the same channel."""
    if row["kind"] != "since":
        return [s for s in alerts.subscriptions if s.name == row["subscription"]]
    return people(alerts).get((row["recipient"], row["channel"]), [])


def carried_items(store: DeliveryItems, alerts: AlertsConfig, row: Mapping[str, Any]) -> list[str]:
    """The ids of the items a delivery row carries, in the order they were matched, each once: an instant message
    its item and the items linked to it that were matched with it (an act and its commentary), an "updated" message
    its changed item."""
    if row["kind"] == "updated":
        return [row["item_id"]]
    if row["kind"] == "instant":
        return list(dict.fromkeys([row["item_id"], *store.delivery_item_ids(row["key"], row["subscription"])]))
    names = [s.name for s in carried_subscriptions(alerts, row)] or [row["subscription"]]
    return list(dict.fromkeys(i for name in names for i in store.delivery_item_ids(row["key"], name)))


def person_view(subs: Sequence[Subscription]) -> Subscription:
    """One subscription standing for several of one person (a ``since`` digest): the first one's language,
    introduction and address, every theme, the lowest threshold (each theme's items were matched at their own)."""
    first = subs[0]
    if len(subs) == 1:
        return first
    return replace(first, themes=frozenset().union(*(s.themes for s in subs)),
                   min_score=min(s.min_score for s in subs), sources=frozenset(), natures=frozenset(),
                   languages=frozenset())


@dataclass
class Preview:
    """What ``watcher deliver --dry-run`` shows: each message that would be planned (with its items) and, per
    subscription, how many matches are held back as baseline."""

    messages: list[dict[str, Any]]
    baseline: Counter[str]


def preview_plan(store: PlanStore, alerts: AlertsConfig, now: datetime) -> Preview:
    """What ``plan_deliveries`` would create now, without writing anything (``watcher deliver --dry-run``).
    A digest subscription shows its next digest: what waits for it plus what would be added now."""
    _, rows = store.alert_candidates()
    found = match(rows, theme_index(alerts.subscriptions), store.matched_pairs([r["item_id"] for r in rows]),
                  baseline(store, alerts, now, record=False))
    stamp, tz = iso(now) or "", ZoneInfo(alerts.timezone)
    news = [m for m in found if not m.baseline]
    planned = [{**instant_delivery(m, alerts, stamp), "items": [m.item_id]} for m in news
               if m.subscription.cadence.kind == "instant"]
    for sub in alerts.subscriptions:
        if sub.cadence.kind == "instant":
            continue
        _, period = last_occurrence(sub, now, tz)
        waiting = [w["item_id"] for w in store.unassigned_matches(sub.name, "9999")]
        waiting += [m.item_id for m in news if m.subscription.name == sub.name]
        if waiting:
            planned.append({"key": delivery_key(sub.cadence.kind, sub.name, period, sub.channel),
                            "kind": sub.cadence.kind, "subscription": sub.name, "period": period,
                            "recipient": recipient(sub, alerts.channel(sub.channel).kind), "channel": sub.channel,
                            "items": waiting})
    return Preview(planned, Counter(m.subscription.name for m in found if m.baseline))
