"""The one call ``pipeline.run_once`` and the alert commands make: plan what is due, open the channels it needs,
send it. Also the alerts as the commands see them: the config's plus the stored subscriptions, checked against the
channel kinds and the taxonomy (``load_alerts``)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Protocol

from store import Store
from watcher.config import Config
from watcher.config.alerts import AlertsConfig, check_channel, check_themes
from watcher.legal.acts import ArchiveLookup
from watcher.legal.normalize import iso
from watcher.notify import CHANNELS, open_channels
from watcher.notify.base import Message
from watcher.notify.deliver import DeliveryReport, Hooks, OpsRender, send_due
from watcher.notify.plan import baseline, match, plan_deliveries, since_digests, theme_index
from watcher.notify.render import Renderer, SameEvent
from watcher.util.errors import ConfigError

CADENCES = ("instant", "daily", "weekly")


@dataclass
class Outcome:
    planned: int
    report: DeliveryReport
    unavailable: dict[str, str] = field(default_factory=dict)  # channel -> why it could not be opened
    since: int = 0  # digests asked for with ``deliver --since`` in this run (sent with the others)


class SubscriptionStore(Protocol):
    """What ``alerts_of`` reads: the subscriptions kept in the database (``Store`` is one)."""

    def stored_subscriptions(self) -> list[dict[str, Any]]: ...


def alerts_of(config: Config, store: SubscriptionStore) -> AlertsConfig:
    """The alerts of the config files plus the subscriptions stored with ``watcher subscribe``."""
    return load_alerts(config, store.stored_subscriptions())


def load_alerts(config: Config, stored: Sequence[Mapping[str, Any]] = ()) -> AlertsConfig:
    """``config.alerts`` plus the ``stored`` subscriptions, checked against the channel kinds and the taxonomy."""
    return checked_alerts(config.alerts.with_stored(stored), config.settings.themes)


def checked_alerts(alerts: AlertsConfig, themes_file: str) -> AlertsConfig:
    """Each channel checked against its kind, each subscription's themes against the taxonomy."""
    from classifiers.decide.themes import load_themes

    channels = {name: check_channel(channel, CHANNELS) for name, channel in alerts.channels.items()}
    if alerts.subscriptions:
        check_themes(alerts.subscriptions, load_themes(themes_file or None).ids)
    return replace(alerts, channels=channels)


def renderer_for(config: Config, alerts: AlertsConfig, same_event: SameEvent | None = None,
                 act_url: ArchiveLookup | None = None) -> Renderer:
    """The renderer of this config; with ``same_event`` (``watcher.search.similar.same_event_of``, given by the caller:
    notify does not know the classifiers' side), digests group the items on the same event."""
    from classifiers.decide.themes import load_themes

    labels = {s.name: s.label or s.publisher or s.name for s in config.sources}
    taxonomy = load_themes(config.settings.themes or None)
    return Renderer(public_url=alerts.public_url, timezone=alerts.timezone, source_labels=labels,
                    themes=[(t.id, t.label_fr, t.label_en) for t in taxonomy], same_event=same_event,
                    keywords={t.id: t.keywords for t in taxonomy}, act_url=act_url)


def deliver(store: Store, config: Config, now: datetime, *, cadences: Sequence[str] = CADENCES,
            hooks: Hooks | None = None, stop: threading.Event | None = None,
            same_event: SameEvent | None = None) -> Outcome:
    """Plan, then send every due delivery of these cadences; channels whose secrets are missing are reported.
    ``same_event``: how digests group items on the same event (None: one entry per item)."""
    alerts = alerts_of(config, store)
    planned = plan_deliveries(store, alerts, now, cadences)
    # what a person asked for (``deliver --since``), operations and "updated" messages go out with any delivery run
    kinds = (*cadences, "since", "ops", "updated")
    stamp = iso(now) or ""
    due = store.due_deliveries(stamp, kinds=kinds) + store.stale_sending(stamp)
    channels, problems = open_channels(alerts, {r["channel"] for r in due if r["channel"] in alerts.channels})
    report = send_due(store, alerts, now, channels, renderer=renderer_for(config, alerts, same_event, store.act_url), kinds=kinds,
                      hooks=hooks, ops=ops_renderer(store, config, alerts, now), stop=stop)
    return Outcome(planned, report, problems)


def ops_renderer(store: Store, config: Config, alerts: AlertsConfig, now: datetime) -> OpsRender:
    from watcher.notify.ops import load_admin, ops_message

    admin = load_admin(config)
    labels = {s.name: s.label or s.name for s in config.sources}

    def render(row: Mapping[str, Any]) -> Message | None:
        incident = store.incident_of_delivery(row["key"])
        return ops_message(row, incident, admin, labels, now, config.settings.timezone) if incident else None

    return render


def preview_digest(store: Store, config: Config, alerts: AlertsConfig, cadence: str, name: str | None,
                   now: datetime, since: date | None = None, same_event: SameEvent | None = None) -> Message:
    """The next ``cadence`` digest of one subscription (the first such one without ``name``), rendered from what
    is waiting for it; with ``since``, the digest ``deliver --since`` would send it instead. Nothing is written."""
    subs = [s for s in alerts.subscriptions if s.cadence.kind == cadence and (name is None or s.name == name)]
    if not subs:
        raise ConfigError(f"no {cadence} subscription" + (f" named {name!r}" if name else ""))
    sub = subs[0]
    if since is not None:
        found = since_digests(store, alerts, since, now, [sub.name])
        ids = [m["item_id"] for _, matches in found for m in matches]
        return renderer_for(config, alerts, same_event, store.act_url).message(
            key="preview", sub=sub, kind="since", period=since.isoformat(), items=store.alert_items(ids),
            themes=store.themes_of_items(ids), now=now)
    waiting = [m["item_id"] for m in store.unassigned_matches(sub.name, iso(now) or "")]
    _, rows = store.alert_candidates()
    held = baseline(store, alerts, now, record=False)  # what is not news will not be in the digest either
    queued = [m.item_id for m in match(rows, theme_index([sub]), store.matched_pairs([r["item_id"] for r in rows]),
                                       held) if not m.baseline]
    ids = list(dict.fromkeys(waiting + queued))
    return renderer_for(config, alerts, same_event, store.act_url).message(
        key="preview", sub=sub, kind=cadence, period=(iso(now) or "")[:10], items=store.alert_items(ids),
        themes=store.themes_of_items(ids), now=now)
