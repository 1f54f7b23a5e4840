"""``watcher status``: what an operator wants at a glance: is the daemon running, what ran last, what runs next,
what is failing, where the model is, what the delivery ledger holds. Read only.

``gather`` collects it (a JSON-able dict, also printed by ``watcher status --json``) from the store and from the
daemon's state file (``<archive>.daemon``, see ``watcher.daemon.instance``); ``render`` turns it into lines.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from watcher.config import Config
from watcher.daemon.instance import read_state, running, state_path
from watcher.legal.normalize import iso


def gather(store: Any, config: Config, now: datetime, database: Path | None = None) -> dict[str, Any]:
    database = database or config.database
    daemon = read_state(state_path(database))
    alive = running(database)
    next_runs: dict[str, str] = daemon.get("next_runs", {}) if alive else {}
    health = {row["name"]: row for row in store.sources_health()}
    incidents = store.open_incidents()
    sources = []
    for source in config.sources:
        row = health.get(source.name, {})
        last = store.recent_fetches(source.name, 1)
        sources.append({
            "name": source.name, "enabled": source.enabled, "interval": source.interval,
            "last_run": last[0]["started_at"] if last else None, "outcome": last[0]["outcome"] if last else None,
            "new": last[0]["items_new"] if last else None,
            "failures_in_a_row": int(row.get("consecutive_failures") or 0), "last_error": row.get("last_error"),
            "next_run": next_runs.get(f"source:{source.name}") or _due(row.get("last_attempt"), source.interval, now),
            "incidents": [i["kind"] for i in incidents if i["source"] == source.name],
        })
    return {"now": iso(now), "daemon": {"running": alive, **({k: daemon[k] for k in ("pid", "started")
                                                              if k in daemon} if alive else {}),
                                        "jobs": {k: v for k, v in next_runs.items() if not k.startswith("source:")},
                                        "model": daemon.get("model") if alive else None},
            "sources": sources, "deliveries": store.delivery_counts(), "incidents": incidents}


def _due(last_attempt: str | None, interval: int, now: datetime) -> str:
    """When a run would poll the source (no daemon: at the next `watcher run` after this time)."""
    if not last_attempt:
        return "now"
    due = datetime.fromisoformat(last_attempt.replace("Z", "+00:00")) + timedelta(seconds=interval)
    return "now" if due <= now else iso(due) or ""


def render(summary: dict[str, Any]) -> list[str]:
    daemon = summary["daemon"]
    if daemon["running"]:
        model = daemon.get("model") or {}
        state = (f"loaded since {model.get('loaded_at')}, released after {model.get('idle_release')} s idle"
                 if model.get("loaded") else f"not loaded (loaded {model.get('loads', 0)} time(s) so far)")
        lines = [f"daemon: running, pid {daemon.get('pid')}, since {daemon.get('started')}; model {state}"]
        lines += [f"  next {job}: {when}" for job, when in sorted(daemon["jobs"].items())]
    else:
        lines = ["daemon: not running (next runs below are when a `watcher run` would poll each source)"]
    lines.append(f"{'source':<22} {'last run':<21} {'outcome':<13} {'new':>5} {'fails':>5}  {'next run':<21} incidents")
    for s in summary["sources"]:
        if not s["enabled"]:
            lines.append(f"{s['name']:<22} (disabled)")
            continue
        lines.append(f"{s['name']:<22} {s['last_run'] or 'never':<21} {s['outcome'] or '-':<13} "
                     f"{'' if s['new'] is None else s['new']:>5} {s['failures_in_a_row']:>5}  {s['next_run']:<21} "
                     f"{', '.join(s['incidents']) or '-'}")
        if s["failures_in_a_row"] and s["last_error"]:
            lines.append(f"{'':<22} last error: {s['last_error'][:100]}")
    counts = summary["deliveries"]
    lines.append("deliveries: " + (", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"))
    for incident in summary["incidents"]:
        lines.append(f"INCIDENT {incident['source']} {incident['kind']} since {incident['opened_at']}: "
                     f"{incident['detail'][:100]}")
    return lines
