"""A delivering process killed with SIGKILL mid-batch, then a recovery run: every due alert reaches the SMTP
server, and each Message-ID once -- except the one message in flight when the process died after the server
accepted it and before the ledger recorded it, which is re-sent with the same Message-ID (the documented
residual window; receivers drop the copy by Message-ID). Killed after a whole message was transferred but before
DATA's final dot, the server discards it: no copy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_notify_support import SmtpSink, cnil_items, email_channel, seed, subscription, write_config

from store import Store
from watcher.config import load_config
from watcher.notify.service import deliver

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 6, 16, 18, 0, tzinfo=UTC)
CHILD = """
import os, signal, sys
from datetime import datetime
from store import Store
from watcher.config import load_config
from watcher.notify.deliver import Hooks
from watcher.notify.service import deliver

path, point, limit, now = sys.argv[1], sys.argv[2], int(sys.argv[3]), datetime.fromisoformat(sys.argv[4])
seen = []

def die_after_n(key):
    seen.append(key)
    if len(seen) >= limit:
        os.kill(os.getpid(), signal.SIGKILL)

config = load_config(path)
hooks = Hooks(**{point: die_after_n})
deliver(Store(config.database), config, now, hooks=hooks)
print("not killed")
"""


def _run_child(path: Path, point: str, limit: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", CHILD, str(path), point, str(limit), T0.isoformat()],
                          cwd=path.parent, env=env, capture_output=True, text=True, timeout=120)


def _setup(tmp_path: Path, port: int) -> Path:
    subs = subscription("lea", themes=["health-data", "personal-data"]) + subscription("max", themes=["health-data"])
    path = write_config(tmp_path, email_channel(port) + subs)
    store = Store(load_config(path).database)
    rows = cnil_items()
    seed(store, rows, {r["id"]: [("health-data" if n % 2 else "personal-data", 0.9)] for n, r in enumerate(rows)})
    store.close()
    return path  # lea: 6 alerts, max: 3 alerts


@pytest.mark.parametrize("point", ["after_record", "after_send", "before_commit"])
def test_killed_mid_batch_then_recovered_sends_every_alert(tmp_path: Path, point: str) -> None:
    with SmtpSink() as sink:
        path = _setup(tmp_path, sink.port)
        child = _run_child(path, point, limit=2)
        assert child.returncode == -signal.SIGKILL, child.stderr
        # before_commit: the second message was transferred whole, but not its final dot: the server dropped it
        assert len(sink.messages) == (1 if point == "before_commit" else 2)
        store = Store(load_config(path).database)
        counts = store.delivery_counts()
        assert counts == {"after_record": {"sent": 2, "pending": 7}, "after_send": {"sent": 1, "sending": 1, "pending": 7},
                          "before_commit": {"sent": 1, "pending": 8}}[point]
        soon = deliver(store, load_config(path), T0 + timedelta(minutes=1))
        late = deliver(store, load_config(path), T0 + timedelta(minutes=30))
        final = deliver(store, load_config(path), T0 + timedelta(days=1))
        ids = Counter(sink.message_ids())
    assert len(soon.report.sent) == (8 if point == "before_commit" else 7) and final.report.sent == [] and store.delivery_counts() == {"sent": 9}
    expected = {r["message_id"] for r in store.deliveries(limit=None)}
    assert set(ids) == expected and len(expected) == 9
    if point in ("after_record", "before_commit"):  # between two messages, or before the dot: never twice
        assert late.report.recovered == 0 and set(ids.values()) == {1}
    else:  # crash inside the window: the in-flight message is re-sent once, with the same Message-ID
        assert late.report.recovered == 1 and sorted(ids.values()) == [1] * 8 + [2]
