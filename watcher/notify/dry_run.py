"""``watcher deliver --dry-run``: each message that would go out (recipient, channel, item titles), then totals."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from store import Store
from watcher.config.alerts import AlertsConfig
from watcher.legal.normalize import iso
from watcher.notify.plan import Preview, carried_items, preview_plan, since_digests
from watcher.util.errors import WatcherError

_SHOWN_TITLES = 5


def dry_run(store: Store, alerts: AlertsConfig, now: datetime, since: date | None = None,
            names: Sequence[str] = ()) -> Iterator[str]:
    """What ``watcher deliver`` would do now (with ``--since``: the digests it would add, one per person and
    channel), without writing or sending anything: the messages, then the channels that could not carry them."""
    preview = preview_plan(store, alerts, now)
    if since is not None:
        preview.messages += [{**row, "items": list(dict.fromkeys(m["item_id"] for m in matches))}
                             for row, matches in since_digests(store, alerts, since, now, names)]
    due = [{**row, "items": carried_items(store, alerts, row)} for row in store.due_deliveries(iso(now) or "")]
    ids = [i for row in [*preview.messages, *due] for i in row["items"]]
    titles = {row["id"]: row["title"] for row in store.alert_items(list(dict.fromkeys(ids)))}
    yield from describe(preview, due, titles, alerts.settings.baseline_horizon / 86400)
    yield from unavailable(alerts, {row["channel"] for row in [*preview.messages, *due]})


def unavailable(alerts: AlertsConfig, names: set[str]) -> Iterator[str]:
    """A line for each channel whose secrets are missing: its messages would wait, not be sent."""
    for name in sorted(n for n in names if n in alerts.channels):
        try:
            alerts.channel(name).secrets()
        except WatcherError as exc:
            yield f"channel {name} unavailable, its messages would wait (exit 2): {exc}"


def describe(preview: Preview, due: Sequence[Mapping[str, Any]], titles: Mapping[str, str],
             horizon_days: float) -> Iterator[str]:
    """Lines for people: one block per message to plan, one per delivery already due (each with its items'
    titles; ``due`` rows carry their ``items``), then totals."""
    for row in preview.messages:
        yield (f"would plan  {row['kind']:<8} to {row['recipient']} via {row['channel']} "
               f"[{row['subscription']}]: {len(row['items'])} item(s)")
        yield from _titles(row["items"], titles)
    for waiting in due:
        yield (f"would send  {waiting['kind']:<8} to {waiting['recipient']} via {waiting['channel']} "
               f"[{waiting['subscription']}]: {len(waiting['items'])} item(s) ({waiting['state']})")
        yield from _titles(waiting["items"], titles)
    yield from totals(preview, due, horizon_days)


def _titles(items: Sequence[str], titles: Mapping[str, str]) -> Iterator[str]:
    for item_id in items[:_SHOWN_TITLES]:
        yield f"    - {titles.get(item_id, item_id)[:110]}"
    if len(items) > _SHOWN_TITLES:
        yield f"    ... and {len(items) - _SHOWN_TITLES} more"


def totals(preview: Preview, due: Sequence[Mapping[str, Any]], horizon_days: float) -> Iterator[str]:
    messages = [*preview.messages, *due]
    kinds: dict[str, int] = {}
    for row in messages:
        kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
    by_kind = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"
    items = len({i for row in messages for i in row["items"]})
    recipients = len({(row["recipient"], row["channel"]) for row in messages})
    yield (f"total: {len(messages)} message(s) ({len(preview.messages)} to plan, {len(due)} already due; "
           f"{by_kind}) carrying {items} item(s) to {recipients} recipient(s)")
    held = sum(preview.baseline.values())
    if held:
        per = ", ".join(f"{name} {n}" for name, n in sorted(preview.baseline.items()))
        yield (f"baseline: {held} match(es) not alerted, already there (older than {horizon_days:g} day(s), undated "
               f"in a source's first fetch, or stored before their subscription: {per}); send them with "
               "`watcher deliver --since YYYY-MM-DD`")
