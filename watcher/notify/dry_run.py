"""``watcher deliver --dry-run``: each message that would go out (recipient, channel, item titles), then totals."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from watcher.notify.plan import Preview

_SHOWN_TITLES = 5


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
